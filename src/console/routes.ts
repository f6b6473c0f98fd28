/**
 * The admin endpoints behind the console (admin role):
 *
 *   GET /admin/live      Server-Sent Events of this process's activity: `ingested`, `minted`, `delivered`,
 *                        `failed`, each `data:` the activity event as JSON (txn, stream_id, jti,
 *                        latency_ms where they apply); `?stream_id=` keeps one stream's.
 *   GET /admin/overview  the Overview figures (overview.ts).
 *
 * Browsers read the live feed with fetch() and a stream reader rather than EventSource, which cannot send
 * the Authorization header.
 */
import { Hono } from 'hono'
import { requireRole, type AuthEnv } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import type { ActivityFeed } from '../admin/activity-feed.js'
import type { ActivityName } from '../observe/activity.js'
import type { Overview } from './overview.js'

export const LIVE_EVENTS: readonly ActivityName[] = ['ingested', 'minted', 'delivered', 'failed']

export interface ConsoleApiDeps {
  clients: ClientRegistry
  admin: BootstrapAdmin
  /** An ActivityFeed of LIVE_EVENTS. */
  live: ActivityFeed
  overview(): Promise<Overview>
}

export function consoleApiRoutes(deps: ConsoleApiDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const admin = requireRole(deps.clients, deps.admin, 'admin')
  app.get('/admin/live', admin, (c) => deps.live.respond(c))
  app.get('/admin/overview', admin, async (c) => {
    c.header('Cache-Control', 'no-store')
    return c.json(await deps.overview())
  })
  return app
}
