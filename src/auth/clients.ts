/**
 * Broker clients (receivers, emitters, admins) and their bearer tokens.
 *
 * A token is `ssf_<client_id>.<secret>`. Only SHA-256 of the secret is stored; a presented token is
 * checked by hashing its secret and comparing with `timingSafeEqual`, so neither the lookup nor the
 * comparison leaks how much of a guess was right. Deleting a client deletes its hash: its tokens stop
 * working on the next request, in every broker process.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import type { SigningAlg } from '../config/config.js'
import { randomId } from '../lib/ids.js'

export type Role = 'receiver' | 'emitter' | 'admin'
export const ROLES: readonly Role[] = ['receiver', 'emitter', 'admin']

export interface Client {
  client_id: string
  name: string
  roles: Role[]
  signing_alg: SigningAlg
  /** The `aud` of SETs minted for this client's streams. */
  audience: string
  created_at: number
}

// Keys (keyspace.ts `clients`, one slot): record(id) = hash {record, secret_hash}; all = zset client_id -> created_at (ms)

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest()

function parseToken(token: string): { clientId: string; secret: string } | undefined {
  const match = /^ssf_([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{32,128})$/.exec(token)
  return match ? { clientId: match[1]!, secret: match[2]! } : undefined
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

export class ClientRegistry {
  readonly #k: Keyspace['clients']

  constructor(
    private readonly redis: Redis,
    keyspace: Keyspace = createKeyspace(),
  ) {
    this.#k = keyspace.clients
  }

  async create(input: {
    name: string
    roles: Role[]
    signing_alg: SigningAlg
    audience?: string
  }): Promise<{ client: Client; token: string }> {
    const clientId = randomId(16)
    const secret = randomBytes(32).toString('base64url')
    const client: Client = {
      client_id: clientId,
      name: input.name,
      roles: [...new Set(input.roles)],
      signing_alg: input.signing_alg,
      audience: input.audience ?? clientId,
      created_at: Math.floor(Date.now() / 1000),
    }
    await this.redis
      .multi()
      .hset(this.#k.record(clientId), {
        record: JSON.stringify(client),
        secret_hash: hashSecret(secret).toString('hex'),
      })
      .zadd(this.#k.all, Date.now(), clientId)
      .exec()
    return { client, token: `ssf_${clientId}.${secret}` }
  }

  async get(clientId: string): Promise<Client | undefined> {
    const raw = await this.redis.hget(this.#k.record(clientId), 'record')
    return raw ? (JSON.parse(raw) as Client) : undefined
  }

  async list(): Promise<Client[]> {
    const ids = await this.redis.zrange(this.#k.all, 0, -1)
    if (ids.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const id of ids) pipeline.hget(this.#k.record(id), 'record')
    const results = (await pipeline.exec()) ?? []
    return results.flatMap(([, raw]) =>
      typeof raw === 'string' ? [JSON.parse(raw) as Client] : [],
    )
  }

  async delete(clientId: string): Promise<boolean> {
    const [[, removed] = []] =
      (await this.redis.multi().del(this.#k.record(clientId)).zrem(this.#k.all, clientId).exec()) ??
      []
    return removed === 1
  }

  /** The client a bearer token belongs to, or undefined. */
  async authenticate(token: string): Promise<Client | undefined> {
    const parsed = parseToken(token)
    if (!parsed) return undefined
    const [record, storedHash] = await this.redis.hmget(
      this.#k.record(parsed.clientId),
      'record',
      'secret_hash',
    )
    if (!record || !storedHash) return undefined
    return constantTimeEqual(hashSecret(parsed.secret), Buffer.from(storedHash, 'hex'))
      ? (JSON.parse(record) as Client)
      : undefined
  }
}

/**
 * The bootstrap admin token. Configured: compared against the configured value's hash. Not configured:
 * generated once per Redis (the first broker process to start wins), printed by the caller, and only its
 * hash kept.
 */
export class BootstrapAdmin {
  #configuredHash: Buffer | undefined
  readonly #k: Keyspace['clients']

  constructor(
    private readonly redis: Redis,
    configuredToken: string | undefined,
    keyspace: Keyspace = createKeyspace(),
  ) {
    this.#k = keyspace.clients
    this.#configuredHash = configuredToken === undefined ? undefined : hashSecret(configuredToken)
  }

  /** Returns the generated token when this call created it (to print once), otherwise undefined. */
  async init(): Promise<string | undefined> {
    if (this.#configuredHash) return undefined
    const token = `ssf_admin_${randomBytes(32).toString('base64url')}`
    const created = await this.redis.set(
      this.#k.bootstrapHash,
      hashSecret(token).toString('hex'),
      'NX',
    )
    return created === 'OK' ? token : undefined
  }

  async matches(token: string): Promise<boolean> {
    const presented = hashSecret(token)
    if (this.#configuredHash) return constantTimeEqual(presented, this.#configuredHash)
    const stored = await this.redis.get(this.#k.bootstrapHash)
    return stored !== null && constantTimeEqual(presented, Buffer.from(stored, 'hex'))
  }
}
