/**
 * A revocation index shared through Redis, for a fleet of resource servers or agent runtimes (see
 * revocation-index.ts for what is recorded and revocation.ts for the matching rules).
 *
 * Layout: one hash per anchor key (a revocation's most selective target), field = revocation id, value =
 * the record as JSON; a Lua script merges atomically (the later event time wins) and extends the hash's
 * expiry. Every recorded revocation is also published, so each process stops its own live work (open
 * streams, tool calls) at once, not only at the next request. ioredis is imported for its types only.
 *
 * @module
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { isObject } from './http.js'
import { BaseRevocationIndex, type RevocationIndexOptions } from './revocation-index.js'
import { anchorKey, checkRevocation, type RevocationRecord } from './revocation.js'

/** Options of {@link createRedisRevocationIndex}. */
export interface RedisRevocationIndexOptions extends RevocationIndexOptions {
  /** An ioredis client; the index never closes it. */
  redis: Redis
  /**
   * Key and channel prefix.
   * @defaultValue 'ssf-receiver:revocations:'
   */
  prefix?: string
}

const MERGE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rec = ARGV[2]
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and tonumber(c.expiresAt) and tonumber(c.expiresAt) > tonumber(ARGV[4])
     and tonumber(c.revokedAt) and tonumber(c.revokedAt) > tonumber(ARGV[3]) then
    local n = cjson.decode(ARGV[2])
    n.revokedAt = c.revokedAt
    rec = cjson.encode(n)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], rec)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return rec
`

const hash = (value: string) => createHash('sha256').update(value).digest('base64url')

function parseRecord(raw: unknown): RevocationRecord | undefined {
  if (typeof raw !== 'string') return undefined
  try {
    const value = JSON.parse(raw) as unknown
    if (
      !isObject(value) ||
      typeof value.id !== 'string' ||
      typeof value.expiresAt !== 'number' ||
      typeof value.recordedAt !== 'number'
    )
      return undefined
    checkRevocation(value as unknown as RevocationRecord)
    return value as unknown as RevocationRecord
  } catch {
    return undefined
  }
}

/** A revocation index in Redis, with cross-process notification. */
export class RedisRevocationIndex extends BaseRevocationIndex {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #channel: string
  readonly #origin = randomUUID()
  #subscriber: Redis | undefined
  #subscribed: Promise<void> | undefined

  constructor(options: RedisRevocationIndexOptions) {
    super(options)
    if (!options || typeof options.redis?.hgetall !== 'function')
      throw new TypeError('redis: an ioredis client is required')
    this.#redis = options.redis
    this.#prefix = options.prefix ?? 'ssf-receiver:revocations:'
    this.#channel = `${this.#prefix}events`
  }

  #key(anchor: string): string {
    return `${this.#prefix}a:${hash(anchor)}`
  }

  protected async store(records: RevocationRecord[]): Promise<RevocationRecord[]> {
    const now = Date.now()
    const pipeline = this.#redis.pipeline()
    for (const record of records) {
      pipeline.eval(
        MERGE,
        1,
        this.#key(anchorKey(record.targets)),
        hash(record.id),
        JSON.stringify(record),
        String(record.revokedAt),
        String(now),
        String(this.retentionMs),
      )
    }
    const results = (await pipeline.exec()) ?? []
    const stored = results.map(([error, raw], i) => {
      if (error) throw error
      return parseRecord(raw) ?? records[i]!
    })
    await this.#redis.publish(this.#channel, JSON.stringify({ o: this.#origin, r: stored }))
    return stored
  }

  protected async find(keys: ReadonlySet<string>): Promise<RevocationRecord[]> {
    const pipeline = this.#redis.pipeline()
    const redisKeys = [...keys].map((k) => this.#key(k))
    for (const key of redisKeys) pipeline.hgetall(key)
    const results = (await pipeline.exec()) ?? []
    const now = Date.now()
    const found: RevocationRecord[] = []
    const expired: [string, string][] = []
    results.forEach(([error, value], i) => {
      if (error) throw error
      if (!isObject(value)) return
      for (const [field, raw] of Object.entries(value)) {
        const record = parseRecord(raw)
        if (record && record.expiresAt > now) found.push(record)
        else expired.push([redisKeys[i]!, field])
      }
    })
    if (expired.length > 0) {
      const cleanup = this.#redis.pipeline()
      for (const [key, field] of expired) cleanup.hdel(key, field)
      cleanup.exec().catch(() => {})
    }
    return found
  }

  /**
   * Subscribes to revocations recorded by other processes (done on the first `watch` or `subscribe`
   * anyway); resolves once the subscription is active.
   */
  ready(): Promise<void> {
    if (!this.#subscribed) {
      const sub = this.#redis.duplicate()
      this.#subscriber = sub
      sub.on('error', () => {
        // ioredis reconnects by itself; the next request still checks the index.
      })
      sub.on('message', (_channel: string, message: string) => {
        let parsed: unknown
        try {
          parsed = JSON.parse(message)
        } catch {
          return
        }
        if (!isObject(parsed) || parsed.o === this.#origin || !Array.isArray(parsed.r)) return
        for (const raw of parsed.r) {
          const record = parseRecord(JSON.stringify(raw))
          if (record) this.deliver(record)
        }
      })
      this.#subscribed = sub.subscribe(this.#channel).then(() => undefined)
      this.#subscribed.catch(() => {
        // Try again on the next call, with a fresh connection.
        if (this.#subscriber === sub) {
          this.#subscriber = undefined
          this.#subscribed = undefined
        }
        sub.disconnect()
      })
    }
    return this.#subscribed
  }

  override watch(claims: Parameters<BaseRevocationIndex['watch']>[0]) {
    void this.ready().catch(() => {})
    return super.watch(claims)
  }

  override subscribe(listener: (record: RevocationRecord) => void): () => void {
    void this.ready().catch(() => {})
    return super.subscribe(listener)
  }

  override async close(): Promise<void> {
    const sub = this.#subscriber
    this.#subscriber = undefined
    this.#subscribed = undefined
    sub?.disconnect()
  }
}

/**
 * Creates a revocation index shared through Redis.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * const index = createRedisRevocationIndex({ redis: new Redis(process.env.REDIS_URL!), retentionSeconds: 3600 })
 * await index.ready() // live work in this process now also stops on revocations recorded elsewhere
 * ```
 */
export function createRedisRevocationIndex(
  options: RedisRevocationIndexOptions,
): RedisRevocationIndex {
  return new RedisRevocationIndex(options)
}
