/**
 * How the audit trail lies in Redis (keys from keyspace.ts, all under the `{audit}` hash tag, so every
 * script touches one Redis Cluster slot):
 *
 *   head         "<seq>:<hash>" of the newest record (the chain head)
 *   anchor       "<seq>:<hash>" of the last record removed by retention: where the chain resumes
 *   batches      hash batch id -> the records of one append, JSON Lines in chain order
 *   batch-meta   hash batch id -> {n, last, last_hash, max_at, ix}: what retention needs without reading
 *                the records (how many are held, the last one, the newest `at`, the index keys)
 *   order        zset batch id -> seq of its first record (the id is that seq): chain order
 *   ix:<t>:<h>   zset batch id -> first seq, per query key; a batch is filed once per key, however many of
 *                its records carry it. Expires after the retention when no longer written.
 *
 * One append is one script call writing a handful of keys, whatever the batch size, so a record costs a
 * fraction of a Redis command. Readers fetch whole batches and filter their records.
 */
import type { Redis } from 'ioredis'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import type { TermType } from './index-terms.js'
import type { AuditRecord } from './types.js'
import { storedLine } from './chain.js'

export interface BatchMeta {
  /** Records the batch still holds (retention may have removed an older prefix). */
  n: number
  /** seq and hash of its last record. */
  last: number
  last_hash: string
  /** The newest `at` among its records. */
  max_at: number
  /** Index keys the batch is filed under. */
  ix: string[]
}

/** A batch read back: its id (= score in `order` and the indexes) and its records' JSON, in chain order. */
export interface StoredBatch {
  id: string
  score: number
  /** null: listed, but its records are gone. */
  lines: string[] | null
}

type Scripted = Redis & {
  ssfAuditAppend(...args: (string | number)[]): Promise<[number, string?]>
  ssfAuditPrune(...args: (string | number)[]): Promise<[number, number]>
}

export const encodeBatch = (records: readonly AuditRecord[]): string =>
  records.map((r) => `${storedLine(r)}\n`).join('')

export function decodeBatch(text: string): string[] {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}

export class AuditStore {
  readonly redis: Scripted
  readonly keys: Keyspace['audit']

  constructor(redis: Redis, keyspace: Keyspace = createKeyspace('ssf')) {
    this.redis = defineScripts(redis, {
      ssfAuditAppend: { file: new URL('./scripts/append.lua', import.meta.url), numberOfKeys: 4 },
      ssfAuditPrune: { file: new URL('./scripts/prune.lua', import.meta.url), numberOfKeys: 4 },
    }) as unknown as Scripted
    this.keys = keyspace.audit
  }

  indexKey(type: TermType, value: string): string {
    return this.keys.index(type, value)
  }

  async headRaw(): Promise<string> {
    return (await this.redis.get(this.keys.head)) ?? ''
  }

  /** Head and anchor, read together. */
  async pointers(): Promise<{ head: string | null; anchor: string | null }> {
    const [head, anchor] = await this.redis.mget(this.keys.head, this.keys.anchor)
    return { head: head ?? null, anchor: anchor ?? null }
  }

  async anchorRaw(): Promise<string | null> {
    return this.redis.get(this.keys.anchor)
  }

  /**
   * Stores `records` (a contiguous run, chained onto `expectedHead`) as one batch. Returns null when
   * stored, else the head that is current now (another writer appended first).
   */
  async append(
    expectedHead: string,
    records: readonly AuditRecord[],
    indexKeys: readonly string[],
    refresh: readonly string[],
    ttlSeconds: number,
  ): Promise<string | null> {
    const first = records[0]!
    const last = records.at(-1)!
    const meta: BatchMeta = {
      n: records.length,
      last: last.seq,
      last_hash: last.hash,
      max_at: Math.max(...records.map((r) => r.at)),
      ix: [...indexKeys],
    }
    const k = this.keys
    const [ok, current] = await this.redis.ssfAuditAppend(
      k.head,
      k.batches,
      k.batchMeta,
      k.order,
      expectedHead,
      `${last.seq}:${last.hash}`,
      first.seq,
      encodeBatch(records),
      JSON.stringify(meta),
      ttlSeconds,
      indexKeys.length,
      ...indexKeys,
      ...refresh,
    )
    return ok === 1 ? null : (current ?? '')
  }

  /** Batches filed under `key` (the order zset or an index) with first seq below `below`, newest first. */
  async newestBatchIds(
    key: string,
    below: number | undefined,
    count: number,
  ): Promise<{ id: string; score: number }[]> {
    const page = await this.redis.zrevrangebyscore(
      key,
      below === undefined ? '+inf' : `(${below}`,
      '-inf',
      'WITHSCORES',
      'LIMIT',
      0,
      count,
    )
    return pairs(page)
  }

  /** Batches in chain order with first seq above `after` (exclusive) and at most `upTo`. */
  async batchIdsInOrder(
    after: number | undefined,
    upTo: number,
    count: number,
  ): Promise<{ id: string; score: number }[]> {
    const page = await this.redis.zrangebyscore(
      this.keys.order,
      after === undefined ? '-inf' : `(${after}`,
      upTo,
      'WITHSCORES',
      'LIMIT',
      0,
      count,
    )
    return pairs(page)
  }

  async readBatches(ids: readonly { id: string; score: number }[]): Promise<StoredBatch[]> {
    if (ids.length === 0) return []
    const texts = await this.redis.hmget(this.keys.batches, ...ids.map((b) => b.id))
    return ids.map((b, i) => ({
      id: b.id,
      score: b.score,
      lines: texts[i] ? decodeBatch(texts[i]!) : null,
    }))
  }

  async sizes(keys: readonly string[]): Promise<number[]> {
    const pipeline = this.redis.pipeline()
    for (const key of keys) pipeline.zcard(key)
    const results = (await pipeline.exec()) ?? []
    return results.map(([err, n]) => (err ? 0 : Number(n)))
  }

  /** One bounded retention step: {removed, more}. */
  async pruneStep(cutoff: number, budget: number): Promise<{ removed: number; more: boolean }> {
    const k = this.keys
    const [removed, more] = await this.redis.ssfAuditPrune(
      k.batches,
      k.batchMeta,
      k.order,
      k.anchor,
      cutoff,
      budget,
    )
    return { removed: Number(removed), more: Number(more) === 1 }
  }
}

function pairs(page: string[]): { id: string; score: number }[] {
  const out: { id: string; score: number }[] = []
  for (let i = 0; i < page.length; i += 2) out.push({ id: page[i]!, score: Number(page[i + 1]) })
  return out
}
