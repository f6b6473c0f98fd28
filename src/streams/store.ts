/**
 * Stream records in Redis, all under the `{streams}` hash tag so that a record change, its index
 * entries and the routing version move together in one transaction (one slot on Redis Cluster):
 *
 *   records   hash sid -> StreamRecord JSON
 *   version   counter, INCR'd with every change
 *   changes   Redis Stream of {v, sid}: which stream each version changed (capped)
 *   byClient  set of a client's stream ids
 *   activity  zset sid -> last activity (ms), for the inactivity timeout
 *
 * Every process routes events from an in-process copy of the records (routing-cache.ts) that it brings
 * up to date, from `changes`, whenever `version` moved: a change is in effect for every event
 * acknowledged after the change's response.
 */
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import type { StreamRecord } from './model.js'
import { defineScripts } from '../redis/scripts.js'

/** Changes kept in the change log; a process further behind reloads every record. */
const CHANGES_KEPT = 10_000

const SCRIPTS = {
  ssfStreamChange: {
    file: new URL('./scripts/stream-change.lua', import.meta.url),
    numberOfKeys: 5,
  },
}

export class StreamStore {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>

  constructor(
    redis: Redis,
    private readonly ks: Keyspace,
  ) {
    this.redis = defineScripts(redis, SCRIPTS)
  }

  async get(id: string): Promise<StreamRecord | undefined> {
    const raw = await this.redis.hget(this.ks.streams.records, id)
    return raw ? (JSON.parse(raw) as StreamRecord) : undefined
  }

  async getMany(ids: readonly string[]): Promise<(StreamRecord | undefined)[]> {
    if (ids.length === 0) return []
    const raws = await this.redis.hmget(this.ks.streams.records, ...ids)
    return raws.map((raw) => (raw ? (JSON.parse(raw) as StreamRecord) : undefined))
  }

  async listForClient(clientId: string): Promise<StreamRecord[]> {
    const ids = await this.redis.smembers(this.ks.streams.byClient(clientId))
    const streams = (await this.getMany(ids)).filter((s): s is StreamRecord => s !== undefined)
    return streams.sort((a, b) => a.created_at - b.created_at)
  }

  /**
   * Streams in stream-id order, a page at a time: `cursor` is the last stream id of the previous page.
   * Optionally only one status and/or one client's streams.
   */
  async list(options: {
    status?: string
    clientId?: string
    cursor?: string
    limit: number
  }): Promise<{ streams: StreamRecord[]; next_cursor?: string }> {
    let ids =
      options.clientId !== undefined
        ? await this.redis.smembers(this.ks.streams.byClient(options.clientId))
        : await this.redis.hkeys(this.ks.streams.records)
    ids = [...new Set(ids)].sort()
    if (options.cursor !== undefined) ids = ids.filter((id) => id > options.cursor!)
    const out: StreamRecord[] = []
    for (let i = 0; i < ids.length && out.length < options.limit; i += 500) {
      for (const stream of await this.getMany(ids.slice(i, i + 500))) {
        if (!stream || (options.status !== undefined && stream.status !== options.status)) continue
        if (out.length === options.limit)
          return { streams: out, next_cursor: out[out.length - 1]!.stream_id }
        out.push(stream)
      }
    }
    const last = out[out.length - 1]
    const more =
      last !== undefined && out.length === options.limit && ids[ids.length - 1] !== last.stream_id
    return more ? { streams: out, next_cursor: last.stream_id } : { streams: out }
  }

  /** Every record, in pages (HSCAN): for a process building its routing cache. */
  async *all(): AsyncGenerator<StreamRecord[]> {
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.hscan(this.ks.streams.records, cursor, 'COUNT', 1000)
      cursor = next
      const page: StreamRecord[] = []
      for (let i = 1; i < flat.length; i += 2) page.push(JSON.parse(flat[i]!) as StreamRecord)
      if (page.length > 0) yield page
    } while (cursor !== '0')
  }

  /** The routing version: moves with every record change. */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.ks.streams.version)) ?? 0)
  }

  /**
   * Stream ids changed after `since`, with the current version; `complete` is false when the log no
   * longer reaches back that far (then reload everything).
   */
  async changesSince(
    since: number,
  ): Promise<{ version: number; sids: string[]; complete: boolean }> {
    const [version, entries] = await Promise.all([
      this.version(),
      this.redis.xrange(this.ks.streams.changes, '-', '+', 'COUNT', 1) as Promise<
        [string, string[]][]
      >,
    ])
    if (version <= since) return { version, sids: [], complete: true }
    const oldest = entries[0] ? Number(fieldOf(entries[0][1], 'v')) : Infinity
    if (oldest > since + 1) return { version, sids: [], complete: false }
    // Entry ids are "<version>-0", so the range starts right after what this process has seen.
    const changed = (await this.redis.xrange(this.ks.streams.changes, `${since + 1}-0`, '+')) as [
      string,
      string[],
    ][]
    return {
      version,
      sids: [...new Set(changed.map(([, fields]) => fieldOf(fields, 'sid')!))],
      complete: true,
    }
  }

  /** Records activity on the stream (resets its inactivity timeout), if it still exists. */
  async touch(id: string): Promise<void> {
    const k = this.ks.streams
    // KEYS[5] is unused by 'touch'; any key of the slot will do.
    await this.redis.ssfStreamChange(
      k.records,
      k.version,
      k.changes,
      k.activity,
      k.byClient(''),
      'touch',
      id,
      '',
      Date.now(),
      CHANGES_KEPT,
      '',
    )
  }

  async exists(id: string): Promise<boolean> {
    return (await this.redis.hexists(this.ks.streams.records, id)) === 1
  }

  /** Streams without activity since `before` (ms), oldest first. */
  inactiveSince(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.ks.streams.activity, '-inf', before, 'LIMIT', 0, limit)
  }

  /** Stops tracking a stream's activity until its next management call or poll. */
  async untrack(id: string): Promise<void> {
    await this.redis.zrem(this.ks.streams.activity, id)
  }

  /**
   * Writes a new stream, its index entries and the routing version in one script, unless its client
   * already holds `limit` streams (then 'limit_reached'; checked in the same script, so concurrent creates
   * cannot pass it together).
   */
  async create(
    stream: StreamRecord,
    limit: number,
  ): Promise<'created' | 'exists' | 'limit_reached'> {
    const result = await this.#change('create', stream, JSON.stringify(stream), limit)
    return result > 0 ? 'created' : result === -1 ? 'limit_reached' : 'exists'
  }

  /**
   * Replaces `from` (the record as read) by `next`, in one script: 'gone' when the stream was deleted
   * meanwhile (a stream is never brought back), 'changed' when another change came first (nothing written).
   */
  async update(next: StreamRecord, from: StreamRecord): Promise<'saved' | 'gone' | 'changed'> {
    const result = await this.#change('update', next, JSON.stringify(next), JSON.stringify(from))
    return result > 0 ? 'saved' : result === -2 ? 'changed' : 'gone'
  }

  /** Removes the record and its index entries; false if it was already gone. The caller purges delivery state. */
  async remove(stream: StreamRecord): Promise<boolean> {
    return (await this.#change('remove', stream, '', '')) > 0
  }

  async #change(
    mode: 'create' | 'update' | 'remove',
    stream: StreamRecord,
    json: string,
    condition: string | number,
  ): Promise<number> {
    const k = this.ks.streams
    const version = Number(
      await this.redis.ssfStreamChange(
        k.records,
        k.version,
        k.changes,
        k.activity,
        k.byClient(stream.client_id),
        mode,
        stream.stream_id,
        json,
        Date.now(),
        CHANGES_KEPT,
        condition,
      ),
    )
    if (version > 0) await this.redis.publish(this.ks.channels.routing, String(version))
    return version
  }
}

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}
