/**
 * Bearer authentication for hono routes. Tokens come only from the `Authorization` header; a token in
 * the query string is refused outright (RFC 6750 §2.3 is not offered; CAEP interop forbids it).
 */
import type { MiddlewareHandler } from 'hono'
import { forbidden, unauthorized, badRequest } from '../http/errors.js'
import type { BootstrapAdmin, Client, ClientRegistry, Role } from './clients.js'

export type Principal = { kind: 'bootstrap-admin' } | { kind: 'client'; client: Client }

export type AuthEnv = { Variables: { principal: Principal } }

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header) : null
  return match?.[1]
}

export function hasRole(principal: Principal, role: Role): boolean {
  if (principal.kind === 'bootstrap-admin') return role === 'admin'
  return principal.client.roles.includes(role)
}

export function requireRole(clients: ClientRegistry, admin: BootstrapAdmin, role: Role): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    if (new URL(c.req.url).searchParams.has('access_token')) throw badRequest('access tokens are accepted only in the Authorization header')
    const token = bearer(c.req.header('authorization'))
    if (!token) throw unauthorized()
    let principal: Principal | undefined
    if (role === 'admin' && (await admin.matches(token))) principal = { kind: 'bootstrap-admin' }
    else {
      const client = await clients.authenticate(token)
      if (client) principal = { kind: 'client', client }
    }
    if (!principal) throw unauthorized('the bearer token is not valid')
    if (!hasRole(principal, role)) throw forbidden(`this endpoint requires the "${role}" role`)
    c.set('principal', principal)
    await next()
  }
}
