/**
 * Signing keys (SSF §4.1, RFC 8417). One active key per algorithm, generated at first start and kept in
 * Redis so every broker process signs with the same keys.
 *
 * Rotation publishes ahead: the new key is in the JWKS at once but signs only from its `activates_at`,
 * SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS later (plus the second the other processes take to republish), so
 * a receiver whose cached JWKS is no older than that already holds it. Every process switches when that
 * time passes, from the state in Redis (no process needs to be told). An immediate rotation (a key
 * compromise) switches at once. A replaced key stays published for the overlap, so receivers can verify
 * SETs already sent.
 *
 * Private key material stays inside this module: it is never logged, returned, or put in a job.
 */
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'
import type { Redis } from 'ioredis'
import { SIGNING_ALGS, type SigningAlg } from '../config/config.js'
import { randomId } from '../lib/ids.js'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'

// Keys (keyspace.ts `keys`): all = hash kid -> StoredKey JSON; active = hash alg -> kid; pending = hash
// alg -> kid published ahead; version = bumped on every change, so other processes reload.

/** Other processes republish their JWKS within this long of a change (http/jwks-document.ts). */
const REPUBLISH_SECONDS = 1

interface StoredKey {
  kid: string
  alg: SigningAlg
  private_jwk: JWK
  public_jwk: JWK
  created_at: number
  /** When a key rotated in ahead starts signing (seconds). */
  activates_at?: number
  /** When the key stops (or stopped) being active; published until retired_at + overlap. */
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
  activates_at?: number
  retired_at?: number
  /** Signs now. */
  active: boolean
  /** Published, signing from activates_at. */
  pending?: true
}

async function generate(alg: SigningAlg): Promise<StoredKey> {
  const options =
    alg === 'RS256'
      ? { modulusLength: 2048, extractable: true }
      : alg === 'EdDSA'
        ? { crv: 'Ed25519', extractable: true }
        : { extractable: true }
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
  /** Keys published ahead, with the time (ms) they start signing. */
  #pending = new Map<SigningAlg, { key: SigningKey; activatesAt: number }>()
  #version: string | null = null
  #loading: Promise<void> | null = null
  #changeListeners = new Set<() => void>()

  readonly #k: Keyspace['keys']

  constructor(
    private readonly redis: Redis,
    private readonly overlapSeconds: number,
    keyspace: Keyspace = createKeyspace(),
    private readonly publishAheadSeconds = 0,
  ) {
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

  /**
   * The cached key to sign with for `alg`: a key published ahead from its activation time on. Callers
   * `refresh()` once per batch, not per signature.
   */
  signingKey(alg: SigningAlg): SigningKey {
    const next = this.#pending.get(alg)
    if (next && Date.now() >= next.activatesAt) return next.key
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
        const [version, active, pending, all] = await Promise.all([
          this.redis.get(this.#k.version),
          this.redis.hgetall(this.#k.active),
          this.redis.hgetall(this.#k.pending),
          this.redis.hgetall(this.#k.all),
        ])
        const load = async (kid: string | undefined, alg: SigningAlg) => {
          const raw = kid ? all[kid] : undefined
          if (!kid || !raw) return undefined
          const stored = JSON.parse(raw) as StoredKey
          return {
            stored,
            // Extractable: signing turns it into a node:crypto KeyObject, which Node 24 warns about
            // (DEP0204) for a non-extractable CryptoKey. The private JWK is in Redis already.
            key: {
              kid,
              alg,
              key: (await importJWK(stored.private_jwk, alg, { extractable: true })) as CryptoKey,
            },
          }
        }
        const signing = new Map<SigningAlg, SigningKey>()
        const ahead = new Map<SigningAlg, { key: SigningKey; activatesAt: number }>()
        for (const alg of SIGNING_ALGS) {
          const current = await load(active[alg], alg)
          if (current) signing.set(alg, current.key)
          const next = await load(pending[alg], alg)
          if (next)
            ahead.set(alg, { key: next.key, activatesAt: (next.stored.activates_at ?? 0) * 1000 })
        }
        this.#signing = signing
        this.#pending = ahead
        this.#version = version
      } finally {
        this.#loading = null
      }
    })()
    return this.#loading
  }

  async #stored(): Promise<{ keys: StoredKey[]; active: Record<string, string> }> {
    const [all, active, pending] = await Promise.all([
      this.redis.hgetall(this.#k.all),
      this.redis.hgetall(this.#k.active),
      this.redis.hgetall(this.#k.pending),
    ])
    const keys = Object.values(all).map((raw) => JSON.parse(raw) as StoredKey)
    return { keys, active: effectiveActive(keys, active, pending, Date.now() / 1000) }
  }

  /** Public keys still within their publication window, including keys published ahead. Never private members. */
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
      .map((k) => info(k, active[k.alg] === k.kid))
  }

  /**
   * Rotates in a fresh key for each given algorithm: published now, signing after the publish-ahead
   * time, or at once when `immediate`. The key it replaces is marked retired from then (still published
   * for the overlap); a key published ahead that never signed is dropped; keys whose overlap has passed
   * are deleted.
   */
  async rotate(
    algs: readonly SigningAlg[],
    options: { immediate?: boolean } = {},
  ): Promise<KeyInfo[]> {
    const generated = await Promise.all(algs.map((alg) => generate(alg)))
    // Timed from the write that publishes the keys, not from the (slow) key generation.
    const now = Date.now() / 1000
    const ahead =
      options.immediate || this.publishAheadSeconds === 0
        ? 0
        : this.publishAheadSeconds + REPUBLISH_SECONDS
    const switchAt = Math.ceil(now + ahead)
    const { keys, active } = await this.#stored()
    const pending = await this.redis.hgetall(this.#k.pending)
    const multi = this.redis.multi()
    const created: StoredKey[] = []
    for (const [i, alg] of algs.entries()) {
      const fresh: StoredKey = {
        ...generated[i]!,
        ...(ahead > 0 ? { activates_at: switchAt } : {}),
      }
      created.push(fresh)
      const old = keys.find((k) => k.kid === active[alg])
      if (old)
        multi.hset(
          this.#k.all,
          old.kid,
          JSON.stringify({ ...old, retired_at: ahead > 0 ? switchAt : Math.floor(now) }),
        )
      // A key published ahead and replaced before it signed anything is dropped.
      if (pending[alg] !== undefined && pending[alg] !== old?.kid)
        multi.hdel(this.#k.all, pending[alg]!)
      multi.hset(this.#k.all, fresh.kid, JSON.stringify(fresh))
      if (ahead > 0) {
        if (old) multi.hset(this.#k.active, alg, old.kid)
        multi.hset(this.#k.pending, alg, fresh.kid)
      } else {
        multi.hset(this.#k.active, alg, fresh.kid)
        multi.hdel(this.#k.pending, alg)
      }
    }
    for (const k of keys) {
      if (k.retired_at !== undefined && k.retired_at + this.overlapSeconds <= now)
        multi.hdel(this.#k.all, k.kid)
    }
    multi.incr(this.#k.version)
    await multi.exec()
    await this.#reload()
    for (const listener of this.#changeListeners) listener()
    return created.map((k) => info(k, ahead === 0))
  }
}

/** The kid signing now per algorithm: the pending one once its activation time has passed. */
function effectiveActive(
  keys: readonly StoredKey[],
  active: Record<string, string>,
  pending: Record<string, string>,
  now: number,
): Record<string, string> {
  const out = { ...active }
  for (const [alg, kid] of Object.entries(pending)) {
    const key = keys.find((k) => k.kid === kid)
    if (key && (key.activates_at ?? 0) <= now) out[alg] = kid
  }
  return out
}

function info(k: StoredKey, active: boolean): KeyInfo {
  return {
    kid: k.kid,
    alg: k.alg,
    created_at: k.created_at,
    ...(k.activates_at !== undefined ? { activates_at: k.activates_at } : {}),
    ...(k.retired_at !== undefined ? { retired_at: k.retired_at } : {}),
    active,
    ...(!active && k.activates_at !== undefined && k.retired_at === undefined
      ? { pending: true as const }
      : {}),
  }
}
