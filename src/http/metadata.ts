/**
 * Transmitter configuration metadata (SSF §7.1) and the JWKS. The well-known document is served at
 * `/.well-known/ssf-configuration` followed by the issuer's path, if it has one (SSF §7.2). Arrays with no
 * members are omitted.
 */
import { Hono } from 'hono'
import type { JwksDocument } from './jwks-document.js'
import { POLL_METHOD, PUSH_METHOD, type DefaultSubjects } from '../streams/model.js'
import { CONFIGURATION_PATH, STATUS_PATH } from '../streams/routes.js'
import { ADD_SUBJECT_PATH, REMOVE_SUBJECT_PATH, VERIFICATION_PATH } from '../streams/ssf-routes.js'

export const JWKS_PATH = '/jwks.json'

export interface MetadataOptions {
  defaultSubjects: DefaultSubjects
  /** Complex-subject members a receiver must understand or drop the event (SSF §3.6). */
  criticalSubjectMembers: readonly string[]
}

export function transmitterMetadata(issuer: string, options: MetadataOptions): Record<string, unknown> {
  const url = (path: string) => `${issuer}${path}`
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: url(JWKS_PATH),
    delivery_methods_supported: [PUSH_METHOD, POLL_METHOD],
    configuration_endpoint: url(CONFIGURATION_PATH),
    status_endpoint: url(STATUS_PATH),
    add_subject_endpoint: url(ADD_SUBJECT_PATH),
    remove_subject_endpoint: url(REMOVE_SUBJECT_PATH),
    verification_endpoint: url(VERIFICATION_PATH),
    ...(options.criticalSubjectMembers.length > 0 ? { critical_subject_members: [...options.criticalSubjectMembers] } : {}),
    // Bearer tokens: the broker's own client tokens, and JWT access tokens from a configured OAuth 2.0
    // authorization server.
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: options.defaultSubjects,
  }
}

/** The issuer URL's path ('' for a bare origin); every broker route is served under it. */
export function issuerPath(issuer: string): string {
  return new URL(issuer).pathname.replace(/\/+$/, '')
}

/** The well-known route, mounted at the server root. */
export function wellKnownRoutes(issuer: string, options: MetadataOptions): Hono {
  const app = new Hono()
  const metadata = transmitterMetadata(issuer, options)
  app.get(`/.well-known/ssf-configuration${issuerPath(issuer)}`, (c) => c.json(metadata))
  return app
}

/** Served from memory, refreshed in the background: answered while Redis is away (see JwksDocument). */
export function jwksRoutes(jwks: JwksDocument): Hono {
  const app = new Hono()
  app.get(JWKS_PATH, async (c) => {
    const document = await jwks.current()
    c.header('Cache-Control', 'public, max-age=60')
    return c.json(document)
  })
  return app
}
