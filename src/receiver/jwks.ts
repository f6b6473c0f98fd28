/**
 * The transmitter's signing keys (SSF §7.1 `jwks_uri`, RFC 7517), cached. An unknown `kid` triggers one
 * refetch (key rotation), at most once per cooldown, so a stream of SETs with made-up `kid`s cannot turn
 * the receiver into a JWKS-fetching loop. The cache is also refreshed in the background when older than
 * its maximum age; if that refresh fails the keys already held stay in use.
 *
 * Keys with private or symmetric material are ignored, as are keys whose `use` / `key_ops` exclude
 * verification and RSA keys under 2048 bits. A key is used only with an algorithm its type fits, and
 * only with the `alg` it declares, so no key can be confused into another algorithm.
 *
 * @module
 */
import { importJWK, type CryptoKey, type JWK } from 'jose'
import { ReceiverError } from './errors.js'
import { httpRequest, isObject, parseJson, safeUrl, type HttpSettings } from './http.js'

export interface JwksCacheOptions {
  http: HttpSettings
  /** Minimum time between refetches caused by an unknown `kid`. */
  cooldownMs: number
  /** Refetch when the cached set is older than this. */
  maxAgeMs: number
  /** Smallest RSA modulus accepted, in bits. */
  minRsaBits: number
}

interface Loaded {
  keys: JWK[]
  fetchedAt: number
  imported: Map<string, Promise<CryptoKey | undefined>>
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'] as const
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }

const isEdDsa = (alg: string) => alg === 'EdDSA' || alg === 'Ed25519'

function rsaBits(jwk: JWK): number {
  return typeof jwk.n === 'string' ? Buffer.from(jwk.n, 'base64url').length * 8 : 0
}

/** Whether a public JWK may verify a signature made with `alg`. */
function fits(jwk: JWK, alg: string, minRsaBits: number): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg && !(isEdDsa(alg) && isEdDsa(jwk.alg))) return false
  if (alg.startsWith('RS') || alg.startsWith('PS'))
    return jwk.kty === 'RSA' && rsaBits(jwk) >= minRsaBits
  if (alg in EC_CURVES) return jwk.kty === 'EC' && jwk.crv === EC_CURVES[alg]
  if (isEdDsa(alg)) return jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
  return false
}

/** Drops keys that must never verify anything (private, symmetric, not for signatures). */
function usable(value: unknown): value is JWK {
  if (!isObject(value) || typeof value.kty !== 'string') return false
  if (value.kty === 'oct') return false
  if (PRIVATE_MEMBERS.some((m) => value[m] !== undefined)) return false
  if (value.use !== undefined && value.use !== 'sig') return false
  if (
    value.key_ops !== undefined &&
    !(Array.isArray(value.key_ops) && value.key_ops.includes('verify'))
  )
    return false
  if (value.kid !== undefined && typeof value.kid !== 'string') return false
  return true
}

/** A JWKS cache with refetch-on-unknown-kid and a cooldown. */
export class JwksCache {
  #loaded: Loaded | undefined
  #fetching: Promise<Loaded> | undefined
  #lastUnknownKidRefetch = -Infinity

  constructor(
    private readonly jwksUri: () => Promise<string>,
    private readonly options: JwksCacheOptions,
  ) {}

  /** How many times the JWKS was fetched (for diagnostics and tests). */
  fetches = 0

  /** Fetches the keys now (unless already held), so the first SET does not wait for them. */
  async prefetch(): Promise<void> {
    if (!this.#loaded) await this.#fetch()
  }

  /** Drops the cached keys; the next verification fetches them again. */
  clear(): void {
    this.#loaded = undefined
  }

  /**
   * The keys that may verify a JWS with this header: one for a known `kid`, or every fitting key when
   * the header has none. Throws `ERR_SET_KEY_NOT_FOUND`, `ERR_SET_KEY_INVALID` or `ERR_JWKS_UNAVAILABLE`.
   */
  async keysFor(alg: string, kid: string | undefined): Promise<CryptoKey[]> {
    let justFetched = false
    let loaded = this.#loaded
    if (!loaded) {
      loaded = await this.#fetch()
      justFetched = true
    } else if (Date.now() - loaded.fetchedAt > this.options.maxAgeMs && !this.#fetching) {
      // Refresh in the background; this SET is verified with the keys held (a failed refresh keeps them).
      this.#fetch().catch(() => {})
    }
    let match = this.#select(loaded, alg, kid)
    if (match.candidates.length === 0 && !justFetched && this.#fetching) {
      // A refresh is already under way: it may bring the key.
      loaded = await this.#fetching.catch(() => loaded!)
      match = this.#select(loaded, alg, kid)
      justFetched = true
    }
    if (
      match.candidates.length === 0 &&
      !justFetched &&
      Date.now() - this.#lastUnknownKidRefetch >= this.options.cooldownMs
    ) {
      this.#lastUnknownKidRefetch = Date.now()
      loaded = await this.#fetch()
      match = this.#select(loaded, alg, kid)
    }
    if (match.candidates.length === 0) {
      if (match.unfit > 0)
        throw new ReceiverError(
          'ERR_SET_KEY_INVALID',
          `the key ${kid === undefined ? '' : `"${kid.slice(0, 100)}" `}cannot verify ${alg} signatures`,
        )
      throw new ReceiverError(
        'ERR_SET_KEY_NOT_FOUND',
        kid === undefined
          ? `no ${alg} key in the transmitter's JWKS`
          : `kid "${kid.slice(0, 100)}" is not in the transmitter's JWKS`,
      )
    }
    const keys: CryptoKey[] = []
    for (const { jwk, index } of match.candidates) {
      const cacheKey = `${index}:${alg}`
      let imported = loaded.imported.get(cacheKey)
      if (!imported) {
        imported = importJWK(jwk, alg).then(
          (k) => (k instanceof Uint8Array ? undefined : k),
          () => undefined,
        )
        loaded.imported.set(cacheKey, imported)
      }
      const key = await imported
      if (key) keys.push(key)
    }
    if (keys.length === 0)
      throw new ReceiverError(
        'ERR_SET_KEY_INVALID',
        `the transmitter's key for ${alg} could not be imported`,
      )
    return keys
  }

  #select(
    loaded: Loaded,
    alg: string,
    kid: string | undefined,
  ): { candidates: { jwk: JWK; index: number }[]; unfit: number } {
    const candidates: { jwk: JWK; index: number }[] = []
    let unfit = 0
    loaded.keys.forEach((jwk, index) => {
      if (kid !== undefined && jwk.kid !== kid) return
      if (fits(jwk, alg, this.options.minRsaBits)) candidates.push({ jwk, index })
      else unfit++
    })
    // Without a kid, only keys that fit count; with one, a wrong-type key under that kid is "invalid".
    return { candidates, unfit: kid === undefined ? 0 : unfit }
  }

  #fetch(): Promise<Loaded> {
    if (!this.#fetching) {
      this.#fetching = this.#load().finally(() => {
        this.#fetching = undefined
      })
    }
    return this.#fetching
  }

  async #load(): Promise<Loaded> {
    let uri: string
    try {
      uri = await this.jwksUri()
    } catch (error) {
      throw new ReceiverError(
        'ERR_JWKS_UNAVAILABLE',
        'the transmitter could not be discovered, so its keys are unknown',
        { cause: error },
      )
    }
    this.fetches++
    let res
    try {
      res = await httpRequest(
        uri,
        { method: 'GET', headers: { accept: 'application/jwk-set+json, application/json' } },
        this.options.http,
      )
    } catch (error) {
      throw new ReceiverError(
        'ERR_JWKS_UNAVAILABLE',
        `fetching the JWKS at ${safeUrl(uri)} failed`,
        { cause: error },
      )
    }
    if (res.status !== 200)
      throw new ReceiverError(
        'ERR_JWKS_UNAVAILABLE',
        `fetching the JWKS at ${safeUrl(uri)}: HTTP ${res.status}`,
        { status: res.status },
      )
    const body = parseJson(res.text)
    if (!isObject(body) || !Array.isArray(body.keys))
      throw new ReceiverError(
        'ERR_JWKS_UNAVAILABLE',
        `the JWKS at ${safeUrl(uri)} is not a JWK Set`,
      )
    const loaded: Loaded = {
      keys: body.keys.filter(usable),
      fetchedAt: Date.now(),
      imported: new Map(),
    }
    this.#loaded = loaded
    return loaded
  }
}
