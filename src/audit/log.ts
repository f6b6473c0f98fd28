/**
 * The audit trail: every step from an ingested event to each receiver's confirmation, tamper-evident.
 *
 * Records form one global hash chain, whichever broker process wrote them (chain.ts). Writes are queued
 * and appended in batches, one script call per batch (writer.ts, store.ts); `submit()` is the
 * fire-and-forget form the hot path uses. Entries are sanitized first (sanitize.ts): no bearer token,
 * authorization header or key material is ever stored. Queries (query.ts), verification (verify.ts) and
 * retention (retention.ts) read the same batches.
 */
import type { Redis } from 'ioredis'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import { exportTrail, queryTrail } from './query.js'
import { pruneTrail } from './retention.js'
import { AuditStore } from './store.js'
import type { AuditEntryInput, AuditFilter, AuditRecord, VerifyResult } from './types.js'
import { verifyTrail } from './verify.js'
import { AuditWriter } from './writer.js'

export {
  AUDIT_KINDS,
  MAX_DROPPED_JTIS,
  type AuditEntryInput,
  type AuditFilter,
  type AuditKind,
  type AuditRecord,
  type VerifyResult,
} from './types.js'
export { GENESIS, canonicalJson, recordHash } from './chain.js'

export interface AuditLogOptions {
  retentionSeconds: number
  /** Where the audit keys live (default: prefix `ssf`). */
  keyspace?: Keyspace
  /** Where failures of fire-and-forget writes (submit) go. Default: ignored. */
  onError?: (err: unknown) => void
  /** Most entries queued in memory (Redis unreachable) before new ones are refused. Default 100000. */
  maxPending?: number
  /** Appends start at most this often (ms), so concurrent entries share one. Default 5; flush() skips it. */
  lingerMs?: number
}

export class AuditLog {
  private readonly store: AuditStore
  private readonly writer: AuditWriter
  private readonly retentionSeconds: number
  private readonly onError: (err: unknown) => void

  constructor(redis: Redis, options: AuditLogOptions) {
    if (!Number.isInteger(options.retentionSeconds) || options.retentionSeconds < 1)
      throw new TypeError('AuditLog: retentionSeconds must be a positive whole number')
    this.retentionSeconds = options.retentionSeconds
    this.onError = options.onError ?? (() => {})
    this.store = new AuditStore(redis, options.keyspace ?? createKeyspace('ssf'))
    this.writer = new AuditWriter(this.store, {
      retentionSeconds: options.retentionSeconds,
      maxPending: options.maxPending ?? 100_000,
      lingerMs: options.lingerMs ?? 5,
    })
  }

  /** Appends one entry; resolves once it is in Redis. */
  record(entry: AuditEntryInput): Promise<void> {
    return this.writer.enqueue([entry])
  }

  /** Appends entries, in order, as part of the next batch; resolves once they are in Redis. */
  recordMany(entries: readonly AuditEntryInput[]): Promise<void> {
    return this.writer.enqueue(entries)
  }

  /** Fire and forget: failures go to options.onError. */
  submit(entries: AuditEntryInput | readonly AuditEntryInput[]): void {
    this.writer
      .enqueue(Array.isArray(entries) ? entries : [entries as AuditEntryInput])
      .catch(this.onError)
  }

  /** Resolves when everything queued so far has been written (or failed). */
  flush(): Promise<void> {
    return this.writer.flush()
  }

  /**
   * Records matching every given key, newest first, `limit` per page (default 100, at most 1000).
   * `next_cursor` is set while older records may exist; pass it as `cursor` for the next page.
   */
  query(filter: AuditFilter): Promise<{ records: AuditRecord[]; next_cursor?: string }> {
    return queryTrail(this.store, filter)
  }

  /** Every matching record (newest first) as JSON Lines: one JSON object per line, each ending in "\n". */
  exportJsonl(filter: AuditFilter): AsyncIterable<string> {
    return exportTrail(this.store, filter)
  }

  /** Walks the chain from the retention anchor to the head; reports the first broken link. */
  verify(): Promise<VerifyResult> {
    return verifyTrail(this.store)
  }

  /** Retention: removes the records older than retentionSeconds at `now` (ms); returns how many. */
  prune(now: number = Date.now()): Promise<number> {
    return pruneTrail(this.store, this.retentionSeconds, now)
  }

  /** Runs prune() every `intervalMs` until the returned function is called. */
  startPruning(intervalMs = 60_000): () => void {
    const timer = setInterval(() => void this.prune().catch(this.onError), intervalMs)
    timer.unref()
    return () => clearInterval(timer)
  }
}
