/**
 * The HTTP application: routes, the JSON error mapper, and 404/405 answers. Every error leaves as
 * `{"error", "error_description"}` with its status; unexpected ones as a generic 500 (detail in the log).
 * Redis being unavailable, or a request outliving its deadline, is a 503 `temporarily_unavailable`.
 */
import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { matchedRoutes } from 'hono/route'
import type { Logger } from '../lib/log.js'
import type { Metrics } from '../ops/metrics.js'
import { errorResponse } from './errors.js'
import { BrokerError } from '../errors.js'
import { isRedisUnavailable } from '../redis/connection.js'
import { REQUEST_DEADLINE_MS, requestDeadline } from './deadline.js'
import { OutageLog, unavailableResponse } from './unavailable.js'
import { DEFAULT_MAX_JSON_DEPTH, jsonLimits } from './json-body.js'
import { JwksDocument } from './jwks-document.js'
import { issuerPath, jwksRoutes, wellKnownRoutes, type MetadataOptions } from './metadata.js'
import { docsRoutes } from './docs.js'
import { setResponseHeader } from './response-header.js'
import type { KeyStore } from '../keys/keystore.js'

export const REQUEST_ID_HEADER = 'x-request-id'
/** An incoming request id is echoed only when it is of this form; otherwise one is generated. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/

type AppEnv = { Variables: { requestId: string } }

/** The route pattern that answered (bounded label values), or `unmatched`. */
function routeLabel(c: Parameters<typeof matchedRoutes>[0]): string {
  const handlers = matchedRoutes(c).filter((r) => r.method !== 'ALL')
  return handlers.length > 0 ? handlers[handlers.length - 1]!.path : 'unmatched'
}

export interface AppOptions {
  issuer: string
  metadata: MetadataOptions
  keys: KeyStore
  log: Logger
  routes: Hono<any>[]
  /** Served at the root path (health, readiness, metrics). */
  ops?: Hono<any>
  metrics?: Metrics
  maxJsonDepth?: number
  requestDeadlineMs?: number
}

export function createApp(options: AppOptions): Hono {
  const root = new Hono<AppEnv>()
  const outages = new OutageLog(options.log)
  const jwks = new JwksDocument(options.keys)
  // Loaded now, so the JWKS is in memory before Redis can go away (route tests build apps without keys).
  if (options.keys) jwks.start()
  root.use('*', async (c, next) => {
    const incoming = c.req.header(REQUEST_ID_HEADER)
    const requestId =
      incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID()
    c.set('requestId', requestId)
    const started = performance.now()
    // The request's own lines (this one, its errors and 503s) carry its id. No async context is kept per
    // request: on Node 20 that would tax every promise of the process, the delivery path's included.
    await next()
    setResponseHeader(c, REQUEST_ID_HEADER, requestId)
    const seconds = (performance.now() - started) / 1000
    const route = routeLabel(c)
    options.metrics?.observeHttp(c.req.method, route, c.res.status, seconds)
    options.log.debug('http request', {
      request_id: requestId,
      method: c.req.method,
      route,
      status: c.res.status,
      duration_ms: Math.round(seconds * 1000),
    })
  })
  root.use('*', requestDeadline(options.requestDeadlineMs ?? REQUEST_DEADLINE_MS, outages))
  root.use('*', jsonLimits(options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH))
  root.onError((err, c) => {
    const requestId = c.get('requestId')
    if (err instanceof BrokerError) {
      if (!err.expose)
        options.log.error('request failed', {
          request_id: requestId,
          path: c.req.path,
          method: c.req.method,
          error: err,
        })
      return errorResponse(c, err)
    }
    if (isRedisUnavailable(err)) {
      outages.unavailable(c, 'Redis command failed', err)
      return unavailableResponse(c)
    }
    if (err instanceof HTTPException && err.status < 500)
      return errorResponse(
        c,
        new BrokerError(
          err.status === 415 ? 'unsupported_media_type' : 'invalid_request',
          err.message || 'bad request',
        ),
      )
    options.log.error('unhandled error', {
      request_id: requestId,
      path: c.req.path,
      method: c.req.method,
      error: err,
    })
    return errorResponse(c, new BrokerError('server_error', 'internal error'))
  })
  root.notFound((c) =>
    errorResponse(c, new BrokerError('not_found', `no route for ${c.req.method} ${c.req.path}`)),
  )
  if (options.ops) root.route('/', options.ops)
  root.route('/', wellKnownRoutes(options.issuer, options.metadata))
  const api = new Hono()
  api.route('/', jwksRoutes(jwks))
  api.route('/', docsRoutes(options.issuer))
  for (const routes of options.routes) api.route('/', routes)
  root.route(issuerPath(options.issuer) || '/', api)
  return root as unknown as Hono
}
