/**
 * The HTTP application: routes, the JSON error mapper, and 404/405 answers. Every error leaves as
 * `{"error", "error_description"}` with its status; unexpected ones as a generic 500 (detail in the log).
 * Redis being unavailable, or a request outliving its deadline, is a 503 `temporarily_unavailable`.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from '../lib/log.js'
import { HttpError } from './errors.js'
import { isRedisUnavailable } from '../redis/connection.js'
import { REQUEST_DEADLINE_MS, requestDeadline } from './deadline.js'
import { OutageLog, unavailableResponse } from './unavailable.js'
import { DEFAULT_MAX_JSON_DEPTH, jsonLimits } from './json-body.js'
import { JwksDocument } from './jwks-document.js'
import { issuerPath, jwksRoutes, wellKnownRoutes, type MetadataOptions } from './metadata.js'
import { docsRoutes } from './docs.js'
import type { KeyStore } from '../keys/keystore.js'

export function createApp(options: { issuer: string; metadata: MetadataOptions; keys: KeyStore; log: Logger; routes: Hono<any>[]; maxJsonDepth?: number; requestDeadlineMs?: number }): Hono {
  const root = new Hono()
  const outages = new OutageLog(options.log)
  const jwks = new JwksDocument(options.keys)
  // Loaded now, so the JWKS is in memory before Redis can go away (route tests build apps without keys).
  if (options.keys) jwks.start()
  root.use('*', requestDeadline(options.requestDeadlineMs ?? REQUEST_DEADLINE_MS, outages))
  root.use('*', jsonLimits(options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH))
  root.onError((err, c) => {
    if (err instanceof HttpError) {
      for (const [name, value] of Object.entries(err.headers)) c.header(name, value)
      return c.json(err.body(), err.status)
    }
    if (isRedisUnavailable(err)) {
      outages.unavailable(c, 'Redis command failed', err)
      return unavailableResponse(c)
    }
    if (err instanceof HTTPException) return c.json({ error: 'invalid_request', error_description: err.message || 'bad request' }, err.status)
    options.log.error('unhandled error', { path: c.req.path, method: c.req.method, error: String(err), stack: (err as Error).stack })
    return c.json({ error: 'server_error', error_description: 'internal error' }, 500)
  })
  root.notFound((c) => c.json({ error: 'not_found', error_description: `no route for ${c.req.method} ${c.req.path}` }, 404))
  root.route('/', wellKnownRoutes(options.issuer, options.metadata))
  const api = new Hono()
  api.route('/', jwksRoutes(jwks))
  api.route('/', docsRoutes(options.issuer))
  for (const routes of options.routes) api.route('/', routes)
  root.route(issuerPath(options.issuer) || '/', api)
  return root
}
