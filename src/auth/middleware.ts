/**
 * Bearer authentication for hono routes. Tokens come only from the `Authorization` header; a token in
 * the query string is refused outright (RFC 6750 §2.3 is not offered; CAEP interop forbids it).
 */
import type { MiddlewareHandler } from 'hono'
import { forbidden, unauthorized, badRequest } from '../http/errors.js'
import { BrokerError } from '../errors.js'
import type { BootstrapAdmin, Client, ClientRegistry, Role } from './clients.js'
import { MANAGE_SCOPE, OAuthVerifier, READ_SCOPE } from './oauth.js'

/** `scopes` is set for OAuth access tokens only; broker client tokens carry their role's full rights. */
export type Principal =
  { kind: 'bootstrap-admin' } | { kind: 'client'; client: Client; scopes?: Set<string> }

export type AuthEnv = { Variables: { principal: Principal } }

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header) : null
  return match?.[1]
}

export function hasRole(principal: Principal, role: Role): boolean {
  if (principal.kind === 'bootstrap-admin') return role === 'admin'
  return principal.client.roles.includes(role)
}

/** The OAuth scope an SSF request needs: reads and polls `ssf.read`, everything else `ssf.manage`. */
export function requiredScope(method: string, path: string): string {
  return method === 'GET' || path.includes('/ssf/poll/') ? READ_SCOPE : MANAGE_SCOPE
}

function insufficientScope(scope: string): BrokerError {
  return new BrokerError('insufficient_scope', `this request needs the "${scope}" scope`, { scope })
}

/**
 * Authenticates the bearer token and checks the role. OAuth access tokens (when an authorization server
 * is configured) are accepted for the receiver role only, and must carry the scope the request needs.
 */
export function requireRole(
  clients: ClientRegistry,
  admin: BootstrapAdmin,
  role: Role,
  oauth?: OAuthVerifier,
): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    if (new URL(c.req.url).searchParams.has('access_token'))
      throw badRequest('access tokens are accepted only in the Authorization header')
    const header = c.req.header('authorization')
    // Several Authorization headers arrive joined by ", "; a bearer token never contains a comma.
    if (header?.includes(','))
      throw badRequest('send exactly one Authorization header, with one bearer token')
    const token = bearer(header)
    if (!token) throw unauthorized()
    let principal: Principal | undefined
    if (role === 'admin' && (await admin.matches(token))) principal = { kind: 'bootstrap-admin' }
    else if (token.startsWith('ssf_')) {
      const client = await clients.authenticate(token)
      if (client) principal = { kind: 'client', client }
    } else if (oauth && role === 'receiver' && OAuthVerifier.looksLikeJwt(token)) {
      const identity = await oauth.verify(token)
      if (identity) principal = { kind: 'client', client: identity.client, scopes: identity.scopes }
    }
    if (!principal) {
      // The bootstrap admin token is valid, but only for the admin API: a wrong role, not a bad token.
      if (role !== 'admin' && (await admin.matches(token)))
        throw forbidden(
          `the admin token cannot be used here: this endpoint requires the "${role}" role`,
        )
      throw unauthorized('the bearer token is not valid')
    }
    if (!hasRole(principal, role)) throw forbidden(`this endpoint requires the "${role}" role`)
    if (principal.kind === 'client' && principal.scopes) {
      const scope = requiredScope(c.req.method, c.req.path)
      if (!principal.scopes.has(scope)) throw insufficientScope(scope)
    }
    c.set('principal', principal)
    await next()
  }
}
