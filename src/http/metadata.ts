/**
 * Transmitter configuration metadata (SSF §7.1) and the JWKS. The well-known document is served at
 * `/.well-known/ssf-configuration` followed by the issuer's path, if it has one (SSF §7.2). Arrays with no
 * members are omitted.
 */
import { Hono } from 'hono'
import type { KeyStore } from '../keys/keystore.js'
import { PUSH_METHOD } from '../streams/model.js'
import { CONFIGURATION_PATH, STATUS_PATH } from '../streams/routes.js'

export const JWKS_PATH = '/jwks.json'

export function transmitterMetadata(issuer: string): Record<string, unknown> {
  const url = (path: string) => `${issuer}${path}`
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: url(JWKS_PATH),
    delivery_methods_supported: [PUSH_METHOD],
    configuration_endpoint: url(CONFIGURATION_PATH),
    status_endpoint: url(STATUS_PATH),
    // The broker's own client tokens are OAuth 2.0 bearer tokens (RFC 6750).
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
  }
}

/** The issuer URL's path ('' for a bare origin); every broker route is served under it. */
export function issuerPath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '')
}

/** The well-known route, mounted at the server root. */
export function wellKnownRoutes(issuer: string): Hono {
  const app = new Hono()
  const metadata = transmitterMetadata(issuer)
  app.get(`/.well-known/ssf-configuration${issuerPath(issuer)}`, (c) => c.json(metadata))
  return app
}

export function jwksRoutes(keys: KeyStore): Hono {
  const app = new Hono()
  // Keys may rotate in another process: always read the published set from Redis.
  app.get(JWKS_PATH, async (c) => {
    c.header('Cache-Control', 'public, max-age=60')
    return c.json(await keys.publicJwks())
  })
  return app
}
