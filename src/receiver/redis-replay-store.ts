/**
 * A Redis-backed {@link ReplayStore} for a fleet of receivers (RFC 8935 §4 / RFC 8936 de-duplication by
 * `jti`): `SET key 1 NX PX ttl` is one atomic check-and-record. ioredis is imported for its types only,
 * so applications without Redis never load it; pass your own connected client.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { ReplayStore } from './replay-store.js'

/** Options for {@link RedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** An ioredis client (`new Redis(url)`); the store never closes it. */
  redis: Redis
  /**
   * Key prefix.
   * @defaultValue 'ssf-receiver:replay:'
   */
  prefix?: string
}

/**
 * A replay store shared through Redis.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * const receiver = createReceiver({ issuer, audience, replayStore: new RedisReplayStore({ redis: new Redis(url) }) })
 * ```
 */
export class RedisReplayStore implements ReplayStore {
  readonly #redis: Redis
  readonly #prefix: string

  constructor(options: RedisReplayStoreOptions) {
    if (!options || typeof options.redis?.set !== 'function')
      throw new TypeError('redis: an ioredis client is required')
    this.#redis = options.redis
    this.#prefix = options.prefix ?? 'ssf-receiver:replay:'
  }

  #key(key: string): string {
    // Bounded key length whatever the jti looks like.
    return this.#prefix + createHash('sha256').update(key).digest('base64url')
  }

  async remember(key: string, ttlMs: number): Promise<boolean> {
    const result = await this.#redis.set(
      this.#key(key),
      '1',
      'PX',
      Math.max(1, Math.ceil(ttlMs)),
      'NX',
    )
    return result === 'OK'
  }

  async forget(key: string): Promise<void> {
    await this.#redis.del(this.#key(key))
  }
}
