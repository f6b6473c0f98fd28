/**
 * Transmitter configuration metadata (SSF §7.1) and the JWKS. The well-known document is served at
 * `/.well-known/ssf-configuration` followed by the issuer's path, if it has one (SSF §7.2). Arrays with no
 * members are omitted.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import { operation } from './route.js'
import { z } from './schema.js'
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

export function transmitterMetadata(
  issuer: string,
  options: MetadataOptions,
): Record<string, unknown> {
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
    ...(options.criticalSubjectMembers.length > 0
      ? { critical_subject_members: [...options.criticalSubjectMembers] }
      : {}),
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

const TransmitterMetadata = z
  .looseObject({
    spec_version: z.string(),
    issuer: z.string().openapi({ format: 'uri' }),
    jwks_uri: z.string().openapi({ format: 'uri' }),
    delivery_methods_supported: z.array(z.string()),
    configuration_endpoint: z.string().openapi({ format: 'uri' }),
    status_endpoint: z.string().openapi({ format: 'uri' }),
    add_subject_endpoint: z.string().openapi({ format: 'uri' }),
    remove_subject_endpoint: z.string().openapi({ format: 'uri' }),
    verification_endpoint: z.string().openapi({ format: 'uri' }),
    critical_subject_members: z.array(z.string()).optional(),
    authorization_schemes: z.array(z.object({ spec_urn: z.string() })),
    default_subjects: z.enum(['ALL', 'NONE']),
  })
  .openapi('TransmitterMetadata', { description: 'SSF §7.1 transmitter configuration metadata.' })

const Jwks = z
  .object({
    keys: z.array(
      z.looseObject({
        kty: z.string(),
        kid: z.string(),
        alg: z.string().optional(),
        use: z.string().optional(),
      }),
    ),
  })
  .openapi('JWKSet', {
    example: {
      keys: [
        {
          kty: 'EC',
          crv: 'P-256',
          x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
          y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
          kid: 'k_3c9e1a7b5d20',
          alg: 'ES256',
          use: 'sig',
        },
      ],
    },
  })

/** The well-known route, mounted at the server root. */
export function wellKnownRoutes(issuer: string, options: MetadataOptions): OpenAPIHono {
  const app = new OpenAPIHono()
  const metadata = transmitterMetadata(issuer, options)
  operation(
    app,
    {
      method: 'get',
      path: `/.well-known/ssf-configuration${issuerPath(issuer)}`,
      operationId: 'transmitterMetadata',
      tag: 'Discovery',
      summary: 'Transmitter configuration metadata (SSF §7.1)',
      description:
        "Served at the server root, followed by the issuer's path when it has one (SSF §7.2).",
      responses: {
        200: {
          description: 'Metadata',
          schema: TransmitterMetadata,
          example: transmitterMetadata('https://broker.example', {
            defaultSubjects: 'ALL',
            criticalSubjectMembers: [],
          }),
        },
      },
      errors: [],
    },
    (c) => c.json(metadata),
  )
  return app
}

/** Served from memory, refreshed in the background: answered while Redis is away (see JwksDocument). */
export function jwksRoutes(jwks: JwksDocument): OpenAPIHono {
  const app = new OpenAPIHono()
  operation(
    app,
    {
      method: 'get',
      path: JWKS_PATH,
      operationId: 'jwks',
      tag: 'Discovery',
      summary: 'Public signing keys (JWK Set)',
      responses: { 200: { description: 'JWK Set', schema: Jwks } },
      errors: [503],
    },
    async (c) => {
      const document = await jwks.current()
      c.header('Cache-Control', 'public, max-age=60')
      return c.json(document)
    },
  )
  return app
}
