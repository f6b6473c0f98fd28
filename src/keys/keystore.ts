/**
 * Signing keys (SSF §4.1, RFC 8417). One active key per algorithm, generated at first start and kept in
 * Redis so every broker process signs with the same keys. Rotation makes a new key active; the previous
 * one stays published in the JWKS for the configured overlap, so receivers can verify SETs already sent.
 *
 * Private key material stays inside this module: it is never logged, returned, or put in a job.
 */
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'
import type { Redis } from 'ioredis'
import { SIGNING_ALGS, type SigningAlg } from '../config/config.js'
import { randomId } from '../lib/ids.js'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'

// Keys (keyspace.ts `keys`): all = hash kid -> StoredKey JSON; active = hash alg -> kid;
// version = bumped on every change, so other processes reload.

interface StoredKey {
  kid: string
  alg: SigningAlg
  private_jwk: JWK
  public_jwk: JWK
  created_at: number
  /** Set when the key stopped being active; published until retired_at + overlap. */
  retired_at?: number
}

export interface SigningKey {
  kid: string
  alg: SigningAlg
  key: CryptoKey
}

export interface KeyInfo {
  kid: string
  alg: SigningAlg
  created_at: number
  retired_at?: number
  active: boolean
}

async function generate(alg: SigningAlg): Promise<StoredKey> {
  const options = alg === 'RS256' ? { modulusLength: 2048, extractable: true } : alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true }
  const { privateKey, publicKey } = await generateKeyPair(alg, options)
  const kid = randomId(12)
  const publicJwk = await exportJWK(publicKey)
  return {
    kid,
    alg,
    private_jwk: { ...(await exportJWK(privateKey)), kid, alg },
    public_jwk: { ...publicJwk, kid, alg, use: 'sig' },
    created_at: Math.floor(Date.now() / 1000),
  }
}

export class KeyStore {
  #signing = new Map<SigningAlg, SigningKey>()
  #version: string | null = null
  #loading: Promise<void> | null = null
  #changeListeners = new Set<() => void>()

  readonly #k: Keyspace['keys']

  constructor(private readonly redis: Redis, private readonly overlapSeconds: number, keyspace: Keyspace = createKeyspace()) {
    this.#k = keyspace.keys
  }

  /** Creates the active key for every algorithm that has none yet (first start), then loads them. */
  async init(): Promise<void> {
    const active = await this.redis.hgetall(this.#k.active)
    for (const alg of SIGNING_ALGS) {
      if (active[alg]) continue
      const key = await generate(alg)
      await this.redis.hset(this.#k.all, key.kid, JSON.stringify(key))
      // Another process starting at the same moment may win; then our key is discarded unused.
      const won = await this.redis.hsetnx(this.#k.active, alg, key.kid)
      if (won) await this.redis.incr(this.#k.version)
      else await this.redis.hdel(this.#k.all, key.kid)
    }
    await this.#reload()
  }

  /** Called after this process changed the keys (rotation), e.g. to republish the JWKS at once. */
  onChange(listener: () => void): void {
    this.#changeListeners.add(listener)
  }

  /** The cached key to sign with for `alg`. Callers `refresh()` once per batch, not per signature. */
  signingKey(alg: SigningAlg): SigningKey {
    const key = this.#signing.get(alg)
    if (!key) throw new Error(`no active signing key for ${alg}`)
    return key
  }

  #checkedAt = 0

  /**
   * Makes sure the cached keys are current: one GET, at most every 200 ms, so a rotation in another
   * process is picked up within that time without a read per signature batch.
   */
  async refresh(): Promise<void> {
    if (Date.now() - this.#checkedAt < 200) return
    const version = await this.redis.get(this.#k.version)
    this.#checkedAt = Date.now()
    if (version !== this.#version) await this.#reload()
  }

  #reload(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const [version, active, all] = await Promise.all([this.redis.get(this.#k.version), this.redis.hgetall(this.#k.active), this.redis.hgetall(this.#k.all)])
        const next = new Map<SigningAlg, SigningKey>()
        for (const alg of SIGNING_ALGS) {
          const kid = active[alg]
          const raw = kid ? all[kid] : undefined
          if (!kid || !raw) continue
          const stored = JSON.parse(raw) as StoredKey
          next.set(alg, { kid, alg, key: (await importJWK(stored.private_jwk, alg)) as CryptoKey })
        }
        this.#signing = next
        this.#version = version
      } finally {
        this.#loading = null
      }
    })()
    return this.#loading
  }

  async #stored(): Promise<{ keys: StoredKey[]; active: Record<string, string> }> {
    const [all, active] = await Promise.all([this.redis.hgetall(this.#k.all), this.redis.hgetall(this.#k.active)])
    return { keys: Object.values(all).map((raw) => JSON.parse(raw) as StoredKey), active }
  }

  /** Public keys still within their publication window. Never private members. */
  async publicJwks(): Promise<{ keys: JWK[] }> {
    const now = Math.floor(Date.now() / 1000)
    const { keys } = await this.#stored()
    const published = keys
      .filter((k) => k.retired_at === undefined || k.retired_at + this.overlapSeconds > now)
      .sort((a, b) => b.created_at - a.created_at)
    return { keys: published.map((k) => k.public_jwk) }
  }

  async list(): Promise<KeyInfo[]> {
    const { keys, active } = await this.#stored()
    return keys
      .sort((a, b) => b.created_at - a.created_at)
      .map((k) => ({ kid: k.kid, alg: k.alg, created_at: k.created_at, ...(k.retired_at !== undefined ? { retired_at: k.retired_at } : {}), active: active[k.alg] === k.kid }))
  }

  /**
   * Makes a fresh key active for each given algorithm. The old key is marked retired (still published
   * for the overlap); keys whose overlap has passed are deleted.
   */
  async rotate(algs: readonly SigningAlg[]): Promise<KeyInfo[]> {
    const now = Math.floor(Date.now() / 1000)
    const { keys, active } = await this.#stored()
    const multi = this.redis.multi()
    const created: StoredKey[] = []
    for (const alg of algs) {
      const fresh = await generate(alg)
      created.push(fresh)
      const oldKid = active[alg]
      const old = keys.find((k) => k.kid === oldKid)
      if (old) multi.hset(this.#k.all, old.kid, JSON.stringify({ ...old, retired_at: now }))
      multi.hset(this.#k.all, fresh.kid, JSON.stringify(fresh))
      multi.hset(this.#k.active, alg, fresh.kid)
    }
    for (const k of keys) {
      if (k.retired_at !== undefined && k.retired_at + this.overlapSeconds <= now) multi.hdel(this.#k.all, k.kid)
    }
    multi.incr(this.#k.version)
    await multi.exec()
    await this.#reload()
    for (const listener of this.#changeListeners) listener()
    return created.map((k) => ({ kid: k.kid, alg: k.alg, created_at: k.created_at, active: true }))
  }
}
