/**
 * The revocation index: what was revoked (users, agents, clients, sessions, tokens; see revocation.ts)
 * and when, so a resource server refuses tokens issued at or before a revocation (CAEP §3.1
 * session-revoked; draft-klrc-aiagent-auth: revoked authorization is enforced without undue delay and
 * cached tokens are not used after the signal). Entries expire after a retention period, which should
 * be at least the lifetime of the longest-lived token the application accepts.
 *
 * {@link createRevocationIndex} keeps the index in memory (one process).
 * {@link createRedisRevocationIndex} (redis-revocation-index.ts) shares it across a fleet.
 *
 * @module
 */
import { ReceiverError } from './errors.js'
import { LiveWork, type LiveWatch } from './live-work.js'
import {
  anchorKey,
  checkRevocation,
  isRevokingEvent,
  refuses,
  revocationId,
  revocationsFromSet,
  tokenKeys,
  type Revocation,
  type RevocationRecord,
} from './revocation.js'
import type { TokenClaims, VerifiedSet } from './types.js'

/** Options shared by every revocation index. */
export interface RevocationIndexOptions {
  /**
   * How long a revocation is kept, in seconds. Keep it at least as long as your longest token lifetime.
   * @defaultValue 86400
   */
  retentionSeconds?: number
  /**
   * Which verified SETs revoke their subject.
   * @defaultValue {@link isRevokingEvent}
   */
  isRevocation?: (set: VerifiedSet) => boolean
}

/**
 * A revocation index.
 *
 * @example
 * ```ts
 * const index = createRevocationIndex({ retentionSeconds: 3600 })
 * app.post('/ssf/events', createHonoPushHandler({ receiver, authorization, onEvent: (set) => index.apply(set) }))
 * const hit = await index.check({ iss, sub: 'alice', iat: 1700000000 }) // a RevocationRecord, or undefined
 * ```
 */
export interface RevocationIndex {
  /** Records revocations (the same targets again keep the later event time) and stops matching live work. */
  revoke(revocations: Revocation | readonly Revocation[]): Promise<RevocationRecord[]>
  /** Records what a verified SET revokes (nothing when it does not revoke); use as the `onEvent` handler. */
  apply(set: VerifiedSet): Promise<RevocationRecord[]>
  /** The revocation that refuses this token (the one with the latest event time), or undefined. */
  check(claims: TokenClaims): Promise<RevocationRecord | undefined>
  /** Watches a token's live work: the signal aborts when a matching revocation is recorded. */
  watch(claims: TokenClaims): LiveWatch
  /** Called for every revocation recorded (here and, for a shared index, in other processes). */
  subscribe(listener: (record: RevocationRecord) => void): () => void
  /** Releases resources (timers, connections the index opened itself). */
  close(): Promise<void>
}

/** Shared mechanics: record building, live-work notification, listeners. Backends store and find. */
export abstract class BaseRevocationIndex implements RevocationIndex {
  protected readonly retentionMs: number
  readonly #isRevocation: (set: VerifiedSet) => boolean
  readonly #live = new LiveWork()
  readonly #listeners = new Set<(record: RevocationRecord) => void>()

  constructor(options: RevocationIndexOptions = {}) {
    const retention = options.retentionSeconds ?? 86_400
    if (typeof retention !== 'number' || !Number.isFinite(retention) || retention <= 0)
      throw new TypeError('retentionSeconds: must be a positive number')
    if (options.isRevocation !== undefined && typeof options.isRevocation !== 'function')
      throw new TypeError('isRevocation: must be a function')
    this.retentionMs = retention * 1000
    this.#isRevocation = options.isRevocation ?? isRevokingEvent
  }

  /** Stores records (merging with existing ones by id); returns what is now stored. */
  protected abstract store(records: RevocationRecord[]): Promise<RevocationRecord[]>
  /** Records stored under any of these keys (expired ones may be included; they are filtered). */
  protected abstract find(keys: ReadonlySet<string>): Promise<RevocationRecord[]>

  async revoke(revocations: Revocation | readonly Revocation[]): Promise<RevocationRecord[]> {
    const list: readonly Revocation[] = Array.isArray(revocations)
      ? revocations
      : [revocations as Revocation]
    if (list.length === 0) return []
    const now = Date.now()
    const records = list.map((r): RevocationRecord => {
      checkRevocation(r)
      return {
        ...r,
        targets: r.targets.map((t) => ({ ...t })),
        id: revocationId(r.targets),
        recordedAt: now,
        expiresAt: now + this.retentionMs,
      }
    })
    let stored: RevocationRecord[]
    try {
      stored = await this.store(records)
    } catch (error) {
      // Transient: push answers 503 and poll leaves the SET unacknowledged, so the transmitter redelivers.
      throw new ReceiverError('ERR_STORE_UNAVAILABLE', 'the revocation store is unavailable', {
        cause: error,
      })
    }
    for (const record of stored) this.deliver(record)
    return stored
  }

  apply(set: VerifiedSet): Promise<RevocationRecord[]> {
    return this.revoke(revocationsFromSet(set, this.#isRevocation))
  }

  async check(claims: TokenClaims): Promise<RevocationRecord | undefined> {
    const keys = tokenKeys(claims)
    if (keys.size === 0) return undefined
    const now = Date.now()
    let hit: RevocationRecord | undefined
    let found: RevocationRecord[]
    try {
      found = await this.find(keys)
    } catch (error) {
      throw new ReceiverError('ERR_STORE_UNAVAILABLE', 'the revocation store is unavailable', {
        cause: error,
      })
    }
    for (const record of found) {
      if (record.expiresAt <= now || !refuses(record, keys, claims.iat)) continue
      if (!hit || record.revokedAt > hit.revokedAt) hit = record
    }
    return hit
  }

  watch(claims: TokenClaims): LiveWatch {
    return this.#live.watch(claims)
  }

  subscribe(listener: (record: RevocationRecord) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener: must be a function')
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {}

  /** Stops matching live work and tells listeners (for records from this or another process). */
  protected deliver(record: RevocationRecord): void {
    this.#live.notify(record)
    for (const listener of this.#listeners) {
      try {
        listener(record)
      } catch {
        // A listener's failure must not stop the others, nor the revocation.
      }
    }
  }

  /** Newer event time wins; the later record's details are kept with it. */
  protected static merge(
    existing: RevocationRecord | undefined,
    incoming: RevocationRecord,
  ): RevocationRecord {
    if (!existing || existing.expiresAt <= Date.now()) return incoming
    return {
      ...incoming,
      revokedAt: Math.max(existing.revokedAt, incoming.revokedAt),
      expiresAt: Math.max(existing.expiresAt, incoming.expiresAt),
    }
  }
}

/** An in-memory revocation index (one process). */
export class MemoryRevocationIndex extends BaseRevocationIndex {
  readonly #byAnchor = new Map<string, Map<string, RevocationRecord>>()
  #lastSweep = Date.now()

  protected async store(records: RevocationRecord[]): Promise<RevocationRecord[]> {
    this.#sweep()
    return records.map((record) => {
      const anchor = anchorKey(record.targets)
      let bucket = this.#byAnchor.get(anchor)
      if (!bucket) this.#byAnchor.set(anchor, (bucket = new Map()))
      const merged = BaseRevocationIndex.merge(bucket.get(record.id), record)
      bucket.set(record.id, merged)
      return merged
    })
  }

  protected async find(keys: ReadonlySet<string>): Promise<RevocationRecord[]> {
    const found: RevocationRecord[] = []
    for (const key of keys) {
      const bucket = this.#byAnchor.get(key)
      if (bucket) found.push(...bucket.values())
    }
    return found
  }

  /** Number of revocations held (expired ones included until swept). */
  get size(): number {
    let n = 0
    for (const bucket of this.#byAnchor.values()) n += bucket.size
    return n
  }

  #sweep(): void {
    const now = Date.now()
    if (now - this.#lastSweep < 60_000) return
    this.#lastSweep = now
    for (const [anchor, bucket] of this.#byAnchor) {
      for (const [id, record] of bucket) if (record.expiresAt <= now) bucket.delete(id)
      if (bucket.size === 0) this.#byAnchor.delete(anchor)
    }
  }
}

/**
 * Creates an in-memory revocation index.
 *
 * @example
 * ```ts
 * const index = createRevocationIndex({ retentionSeconds: 24 * 3600 })
 * ```
 */
export function createRevocationIndex(options: RevocationIndexOptions = {}): RevocationIndex {
  return new MemoryRevocationIndex(options)
}
