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
import { OpenAPIHono } from '@hono/zod-openapi'
import { requireRole, type AuthEnv } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import type { ActivityFeed } from '../admin/activity-feed.js'
import { ActivityQuery } from '../admin/schemas.js'
import type { ActivityName } from '../observe/activity.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'
import type { Overview } from './overview.js'

export const LIVE_EVENTS: readonly ActivityName[] = ['ingested', 'minted', 'delivered', 'failed']

export interface ConsoleApiDeps {
  clients: ClientRegistry
  admin: BootstrapAdmin
  /** An ActivityFeed of LIVE_EVENTS. */
  live: ActivityFeed
  overview(): Promise<Overview>
}

const TAG = 'Admin'
const ADMIN_ERRORS = [401, 403, 503] as const

const OverviewBody = z
  .looseObject({
    at: z.number(),
    ready: z.boolean(),
    checks: z.record(z.string(), z.looseObject({ ok: z.boolean() })),
    ingested_total: z.number(),
    minted_total: z.number(),
    delivered_total: z.number(),
    failed_total: z.number(),
    retries_total: z.number(),
    outbox_sets: z.number(),
    dead_letters: z.number(),
    streams: z.record(z.string(), z.number()),
    delivery_latency_ms: z.looseObject({
      count: z.number(),
      p50: z.number().optional(),
      p99: z.number().optional(),
    }),
  })
  .openapi('ConsoleOverview')

export function consoleApiRoutes(deps: ConsoleApiDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const auth = requireRole(deps.clients, deps.admin, 'admin')
  operation(
    app,
    {
      method: 'get',
      path: '/admin/live',
      operationId: 'liveFeed',
      tag: TAG,
      summary: "This broker process's activity as it happens (Server-Sent Events), for the console",
      description:
        'Events `ingested`, `minted`, `delivered` and `failed`; `data:` carries `txn`, `stream_id`, `jti` and `latency_ms` where they apply. Browsers read it with fetch() and a stream reader (EventSource cannot send the Authorization header).',
      auth,
      query: ActivityQuery,
      responses: {
        200: {
          description: 'text/event-stream of activity events',
          contentType: 'text/event-stream',
          schema: z.string(),
          example:
            'event: delivered\ndata: {"txn":"t1","stream_id":"5f3c","jti":"4d35","latency_ms":12}\n\n',
        },
      },
      errors: [400, ...ADMIN_ERRORS],
    },
    (c) => deps.live.respond(c),
  )
  operation(
    app,
    {
      method: 'get',
      path: '/admin/overview',
      operationId: 'consoleOverview',
      tag: TAG,
      summary:
        'Ingest and delivery figures of the broker process answering, for the console Overview',
      auth,
      responses: {
        200: {
          description:
            'Counters, event→delivery p50/p99, outbox depth, dead letters, streams by status, readiness',
          schema: OverviewBody,
          example: {
            at: 1764650000000,
            ready: true,
            checks: { redis: { ok: true, latency_ms: 1 } },
            ingested_total: 10,
            minted_total: 20,
            delivered_total: 20,
            failed_total: 0,
            retries_total: 0,
            outbox_sets: 0,
            dead_letters: 0,
            streams: { enabled: 2 },
            delivery_latency_ms: { count: 20, p50: 4, p99: 9 },
          },
        },
      },
      errors: [...ADMIN_ERRORS],
    },
    async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.overview())
    },
  )
  return app
}
