/**
 * OAuth 2.0 JWT access tokens (RFC 6749 / RFC 9068) from a configured authorization server, accepted for
 * the SSF receiver endpoints besides the broker's own client tokens (CAEP interop profile §2.6).
 *
 * Checked with jose: signature against the server's JWKS (asymmetric algorithms only), `iss`, `aud`,
 * `exp` (required). The receiver identity is the token's `client_id` claim (RFC 9068); its `sub` only when
 * `subjectFallback` is on, because a user's token whose `sub` equals a client id would otherwise act as that
 * receiver. The receiver owns the streams it creates and is the `aud` of their SETs. Scopes: `ssf.read` for
 * reads and polls, `ssf.manage` for everything that changes state.
 *
 * A token that cannot be valid whatever the server's JWKS holds (malformed, wrong algorithm, issuer or
 * audience, expired, no identity) is refused (401) before the JWKS is consulted. When the JWKS is needed
 * and cannot be fetched, the answer is 503 with `Retry-After`: the token may well be valid.
 */
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose'
import type { Client } from './clients.js'
import { BrokerError } from '../errors.js'

export const READ_SCOPE = 'ssf.read'
export const MANAGE_SCOPE = 'ssf.manage'
const ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]

export interface OAuthIdentity {
  client: Client
  scopes: Set<string>
}

const JWKS_TIMEOUT_MS = 3000
const RETRY_AFTER_SECONDS = 10

export class AuthorizationServerUnavailableError extends BrokerError {
  constructor(cause: unknown) {
    super(
      'temporarily_unavailable',
      "the authorization server's keys could not be fetched to check the access token; retry later",
      { retryAfterSeconds: RETRY_AFTER_SECONDS, cause },
    )
    this.name = 'AuthorizationServerUnavailableError'
  }
}

export interface OAuthOptions {
  issuer: string
  jwksUrl: string
  audience: string
  /** Take `sub` as the receiver when the token has no `client_id`. Default false. */
  subjectFallback?: boolean
}

export class OAuthVerifier {
  readonly #remote: ReturnType<typeof createRemoteJWKSet>
  readonly #keys: (...args: Parameters<ReturnType<typeof createRemoteJWKSet>>) => Promise<CryptoKey>

  constructor(private readonly options: OAuthOptions) {
    this.#remote = createRemoteJWKSet(new URL(options.jwksUrl), {
      timeoutDuration: JWKS_TIMEOUT_MS,
      cooldownDuration: 30_000,
    })
    // A key that is not in a JWKS we did fetch is a bad token; a JWKS we could not fetch is not.
    this.#keys = async (header, token) => {
      try {
        return await this.#remote(header, token)
      } catch (err) {
        if (
          err instanceof errors.JWKSNoMatchingKey ||
          err instanceof errors.JWKSMultipleMatchingKeys
        )
          throw err
        if (
          err instanceof errors.JOSEError &&
          !(err instanceof errors.JWKSTimeout) &&
          err.code !== 'ERR_JOSE_GENERIC' &&
          err.code !== 'ERR_JWKS_INVALID'
        )
          throw err
        throw new AuthorizationServerUnavailableError(err)
      }
    }
  }

  static looksLikeJwt(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
  }

  /** The receiver a token names, or undefined when it cannot be valid whatever the JWKS holds. */
  #precheck(token: string): string | undefined {
    let header: ReturnType<typeof decodeProtectedHeader>
    let claims: JWTPayload
    try {
      header = decodeProtectedHeader(token)
      claims = decodeJwt(token)
    } catch {
      return undefined
    }
    if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) return undefined
    if (claims.iss !== this.options.issuer) return undefined
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    if (!aud.includes(this.options.audience)) return undefined
    if (typeof claims.exp !== 'number' || claims.exp <= Math.floor(Date.now() / 1000))
      return undefined
    return this.#receiverOf(claims)
  }

  #receiverOf(claims: JWTPayload): string | undefined {
    if (typeof claims.client_id === 'string' && claims.client_id !== '') return claims.client_id
    if (
      this.options.subjectFallback === true &&
      typeof claims.sub === 'string' &&
      claims.sub !== ''
    )
      return claims.sub
    return undefined
  }

  /**
   * The identity behind a valid token; undefined for any invalid one (the caller answers 401). Throws
   * AuthorizationServerUnavailableError (503) when the server's JWKS is needed and cannot be fetched.
   */
  async verify(token: string): Promise<OAuthIdentity | undefined> {
    if (this.#precheck(token) === undefined) return undefined
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.#keys, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp'],
      }))
    } catch (err) {
      if (err instanceof AuthorizationServerUnavailableError) throw err
      if (err instanceof errors.JOSEError) return undefined
      throw err
    }
    const subject = this.#receiverOf(payload)
    if (!subject) return undefined
    const scopes = new Set(
      typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
    )
    return {
      scopes,
      client: {
        // Namespaced so an OAuth identity can never collide with a broker-issued client.
        client_id: `oauth:${this.options.issuer}:${subject}`,
        name: subject,
        roles: ['receiver'],
        signing_alg: 'RS256',
        audience: subject,
        created_at: 0,
      },
    }
  }
}
