/**
 * OAuth 2.0 JWT access tokens (RFC 6749 / RFC 9068) from a configured authorization server, accepted for
 * the SSF receiver endpoints besides the broker's own client tokens (CAEP interop profile §2.6).
 *
 * Checked with jose: signature against the server's JWKS (asymmetric algorithms only), `iss`, `aud`,
 * `exp` (required). The receiver identity is the token's `client_id` (RFC 9068), else its `sub`; it owns
 * the streams it creates and is the `aud` of their SETs. Scopes: `ssf.read` for reads and polls,
 * `ssf.manage` for everything that changes state.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose'
import type { Client } from './clients.js'

export const READ_SCOPE = 'ssf.read'
export const MANAGE_SCOPE = 'ssf.manage'
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

export interface OAuthIdentity {
  client: Client
  scopes: Set<string>
}

export class OAuthVerifier {
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>

  constructor(private readonly options: { issuer: string; jwksUrl: string; audience: string }) {
    this.#jwks = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })
  }

  static looksLikeJwt(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
  }

  /** The identity behind a valid token; undefined for any invalid one (the caller answers 401). */
  async verify(token: string): Promise<OAuthIdentity | undefined> {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp'],
      }))
    } catch (err) {
      if (err instanceof errors.JOSEError) return undefined
      throw err
    }
    const subject = typeof payload.client_id === 'string' ? payload.client_id : payload.sub
    if (!subject) return undefined
    const scopes = new Set(typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [])
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
