/**
 * Replay protection for SETs (RFC 8417 §2.2 `jti`; RFC 8935 §4 and RFC 8936: receivers de-duplicate by
 * `jti`). A store remembers each `(iss, jti)` for a retention period. The in-memory store suits one
 * process; {@link RedisReplayStore} shares the memory across a fleet.
 *
 * @module
 */

/**
 * A replay store. Keys are opaque strings built by the receiver from `iss` and `jti`.
 *
 * @example
 * ```ts
 * const store: ReplayStore = new MemoryReplayStore({ maxEntries: 50_000 })
 * await store.remember('k', 60_000) // true: first time
 * await store.remember('k', 60_000) // false: replay
 * ```
 */
export interface ReplayStore {
  /** Records `key` for `ttlMs`; resolves true if it was not already recorded. Must be atomic. */
  remember(key: string, ttlMs: number): Promise<boolean>
  /** Forgets `key`, so the SET can be accepted again (used when processing it failed). */
  forget(key: string): Promise<void>
}

/** Options for {@link MemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /**
   * Most keys held; beyond it the oldest are dropped (and their replays no longer detected).
   * @defaultValue 100000
   */
  maxEntries?: number
}

/**
 * An in-memory replay store for one process. Entries expire after their TTL; the oldest are dropped
 * first when `maxEntries` is reached.
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #entries = new Map<string, number>() // key -> expiry (ms); Map keeps insertion order
  readonly #maxEntries: number

  constructor(options: MemoryReplayStoreOptions = {}) {
    const max = options.maxEntries ?? 100_000
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError('maxEntries: must be a positive integer')
    this.#maxEntries = max
  }

  async remember(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const expiry = this.#entries.get(key)
    if (expiry !== undefined && expiry > now) return false
    this.#entries.delete(key)
    this.#sweep(now)
    this.#entries.set(key, now + ttlMs)
    return true
  }

  async forget(key: string): Promise<void> {
    this.#entries.delete(key)
  }

  /** Number of keys held (expired ones included until swept). */
  get size(): number {
    return this.#entries.size
  }

  #sweep(now: number): void {
    // Oldest first: drop expired entries at the front, then enforce the cap.
    for (const [key, expiry] of this.#entries) {
      if (expiry > now && this.#entries.size < this.#maxEntries) break
      this.#entries.delete(key)
    }
  }
}
