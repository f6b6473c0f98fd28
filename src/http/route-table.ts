/**
 * The (method, path) pairs the application serves, read from the real route definitions without Redis,
 * so the OpenAPI document can be checked against them.
 */
import type { Hono } from 'hono'
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
import { consoleApiRoutes } from '../console/routes.js'
import { consolePageRoutes } from '../console/page.js'

function collect(app: Hono<any>): { method: string; path: string }[] {
  return app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({ method: r.method, path: r.path.replace(/:([A-Za-z_]+)/g, '{$1}') }))
}

export function routeTable(): { method: string; path: string }[] {
  const none = undefined as never
  const apps: Hono<any>[] = [
    wellKnownRoutes('http://localhost', { defaultSubjects: 'ALL', criticalSubjectMembers: [] }),
    jwksRoutes(none),
    docsRoutes('http://localhost'),
    opsRoutes({ ready: none, metrics: none }),
    streamRoutes({ issuer: 'http://localhost', eventsSupported: [], requestOnlyEvents: [], allowPrivatePush: false, defaultSubjects: 'ALL', policy: none, streams: none, lifecycle: none, clients: none, admin: none }),
    ssfRoutes({ redis: none, keyspace: none, streams: none, subjects: none, poll: none, control: none, clients: none, admin: none, minVerificationIntervalSeconds: 0 }),
    ingestRoutes({ ingest: none, clients: none, admin: none, maxBodyBytes: 0 }),
    agentRoutes({ registry: none, clients: none, admin: none, onRetired: none, maxBodyBytes: 0 }),
    auditRoutes({ audit: none, clients: none, admin: none }),
    adminRoutes({ clients: none, admin: none, keys: none, streams: none, outbox: none, lifecycle: none, schedule: none }),
    upstreamRoutes({ service: none, leases: none, clients: none, admin: none }),
    consoleApiRoutes({ clients: none, admin: none, live: none, overview: none }),
    consolePageRoutes('http://localhost'),
  ]
  const seen = new Map<string, { method: string; path: string }>()
  for (const route of apps.flatMap(collect)) seen.set(`${route.method} ${route.path}`, route)
  return [...seen.values()]
}
