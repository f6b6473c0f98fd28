/**
 * The OpenAPI 3.1 document, generated from the zod schemas the routes are declared with (http/route.ts).
 * The route factories run with placeholder dependencies: declaring a route touches none of them.
 * `npm run openapi` writes it to openapi/openapi.json; a test fails when the committed file is stale.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import { streamRoutes } from '../streams/routes.js'
import { ssfRoutes } from '../streams/ssf-routes.js'
import { agentRoutes } from '../agents/routes.js'
import { auditRoutes } from '../audit/routes.js'
import { ingestRoutes } from '../ingest/routes.js'
import { adminRoutes } from '../admin/routes.js'
import { upstreamRoutes } from '../upstream/routes.js'
import { jwksRoutes, wellKnownRoutes } from './metadata.js'
import { docsRoutes } from './docs.js'
import { opsRoutes } from '../ops/health.js'
import { registerSharedComponents } from './openapi-components.js'
import { consoleApiRoutes } from '../console/routes.js'
import { consolePageRoutes } from '../console/page.js'

const ISSUER = 'http://localhost'

/** Every route of the broker, declared on one app (not served: only its OpenAPI registry is read). */
export function declaredRoutes(): OpenAPIHono {
  const none = undefined as never
  const root = new OpenAPIHono()
  const apps: OpenAPIHono<any>[] = [
    wellKnownRoutes(ISSUER, { defaultSubjects: 'ALL', criticalSubjectMembers: [] }),
    jwksRoutes(none),
    docsRoutes(ISSUER),
    opsRoutes({ ready: none, metrics: none }),
    streamRoutes({
      issuer: ISSUER,
      eventsSupported: [],
      requestOnlyEvents: [],
      allowPrivatePush: false,
      defaultSubjects: 'ALL',
      policy: none,
      streams: none,
      lifecycle: none,
      clients: none,
      admin: none,
    }),
    ssfRoutes({
      redis: none,
      keyspace: none,
      streams: none,
      subjects: none,
      poll: none,
      control: none,
      clients: none,
      admin: none,
      minVerificationIntervalSeconds: 0,
    }),
    ingestRoutes({ ingest: none, clients: none, admin: none, maxBodyBytes: 0 }),
    agentRoutes({ registry: none, clients: none, admin: none, onRetired: none, maxBodyBytes: 0 }),
    auditRoutes({ audit: none, clients: none, admin: none }),
    adminRoutes({
      clients: none,
      admin: none,
      keys: none,
      streams: none,
      outbox: none,
      lifecycle: none,
      schedule: none,
    }),
    upstreamRoutes({ service: none, leases: none, clients: none, admin: none }),
    consoleApiRoutes({ clients: none, admin: none, live: none, overview: none }),
    consolePageRoutes(ISSUER),
  ]
  for (const app of apps) root.route('/', app)
  return root
}

const TAGS = [
  { name: 'Discovery', description: 'Transmitter metadata, signing keys, this document.' },
  {
    name: 'Streams',
    description: 'SSF stream management, subjects, verification and poll delivery (receiver role).',
  },
  { name: 'Events', description: 'Event ingestion (emitter role).' },
  { name: 'Agents', description: 'The agent registry: which agents act for whom.' },
  { name: 'Admin', description: 'Operator API (admin role).' },
  { name: 'Audit', description: 'The tamper-evident audit trail (admin role).' },
  { name: 'Upstreams', description: 'Upstream transmitters this broker subscribes to.' },
  { name: 'Console', description: 'The web console for operators and SOC analysts.' },
  {
    name: 'Operations',
    description: 'Liveness, readiness and metrics, served at the server root.',
  },
]

export function openapiDocument(version: string): Record<string, unknown> {
  const root = declaredRoutes()
  registerSharedComponents(root.openAPIRegistry)
  const document = root.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'ssf-broker',
      version,
      description:
        'SSF 1.0 transmitter and CAEP/RISC event broker. Errors are `{error, error_description}` (codes: docs/errors.md).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } as { name: string },
    },
    servers: [
      { url: '/', description: 'The broker, at its issuer URL (GET /openapi.json names it).' },
    ],
    security: [{ bearer: [] }],
    tags: TAGS,
  })
  return JSON.parse(JSON.stringify(document)) as Record<string, unknown>
}
