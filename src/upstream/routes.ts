/**
 * Upstream routes: the operator API (`/admin/upstreams`, admin role) and the inbound push endpoint
 * (`POST /ssf/inbound/{upstream_id}`), a strict RFC 8935 receiver that answers 202 only once the SET's
 * event is durable here, and `400 {err, description}` otherwise.
 */
import { Hono } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { asObject, readJsonBody, rejectUnknown } from '../http/json-body.js'
import { HttpError, badRequest, notFound } from '../http/errors.js'
import type { TokenConfig } from './token.js'
import { toWire } from './model.js'
import { RFC8935_ERRORS } from '../http/unavailable.js'
import { INBOUND_PATH, UpstreamRegistrationError, type RegisterInput, type UpstreamService } from './service.js'
import type { UpstreamLeases } from './lease.js'

const MAX_BODY = 64 * 1024

export interface UpstreamRouteDeps {
  service: UpstreamService
  leases: UpstreamLeases
  clients: ClientRegistry
  admin: BootstrapAdmin
}

const str = (value: unknown, name: string, max = 2048): string => {
  if (typeof value !== 'string' || value === '' || value.length > max) throw badRequest(`${name}: required, a non-empty string of at most ${max} characters`)
  return value
}

function parseAuthorization(value: unknown): TokenConfig {
  const a = asObject(value ?? null, 'authorization')
  if (a.type === 'bearer') {
    rejectUnknown(a, ['type', 'token'], 'authorization.')
    const token = str(a.token, 'authorization.token', 8192)
    if (!/^[\x21-\x7e]+$/.test(token)) throw badRequest('authorization.token: must be printable ASCII without spaces')
    return { type: 'bearer', token }
  }
  if (a.type === 'client_credentials') {
    rejectUnknown(a, ['type', 'token_endpoint', 'client_id', 'client_secret', 'scope'], 'authorization.')
    const tokenEndpoint = str(a.token_endpoint, 'authorization.token_endpoint')
    try {
      new URL(tokenEndpoint)
    } catch {
      throw badRequest('authorization.token_endpoint: must be a URL')
    }
    return {
      type: 'client_credentials',
      token_endpoint: tokenEndpoint,
      client_id: str(a.client_id, 'authorization.client_id', 512),
      client_secret: str(a.client_secret, 'authorization.client_secret', 4096),
      ...(a.scope !== undefined ? { scope: str(a.scope, 'authorization.scope', 1024) } : {}),
    }
  }
  throw badRequest('authorization.type: must be "bearer" or "client_credentials"')
}

function parseRegistration(body: Record<string, unknown>, check: (url: string) => string | undefined): RegisterInput {
  rejectUnknown(body, ['issuer', 'delivery', 'authorization', 'events_requested', 'description'])
  const issuer = str(body.issuer, 'issuer')
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw badRequest('issuer: must be a URL')
  }
  if (url.search || url.hash || issuer.includes('?') || issuer.includes('#')) throw badRequest('issuer: must not have a query or fragment')
  const problem = check(issuer)
  if (problem) throw badRequest(`issuer: ${problem}`)
  if (body.delivery !== 'push' && body.delivery !== 'poll') throw badRequest('delivery: must be "push" or "poll"')
  const input: RegisterInput = { issuer, delivery: body.delivery, authorization: parseAuthorization(body.authorization) }
  if (input.authorization.type === 'client_credentials') {
    const p = check(input.authorization.token_endpoint)
    if (p) throw badRequest(`authorization.token_endpoint: ${p}`)
  }
  if (body.events_requested !== undefined) {
    const e = body.events_requested
    if (!Array.isArray(e) || e.length > 100 || e.some((t) => typeof t !== 'string' || t === '' || t.length > 512)) throw badRequest('events_requested: must be an array of event-type URIs')
    input.events_requested = [...new Set(e as string[])]
  }
  if (body.description !== undefined) input.description = str(body.description, 'description', 1024)
  return input
}

export function upstreamRoutes(deps: UpstreamRouteDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const admin = requireRole(deps.clients, deps.admin, 'admin')
  const noStore = async (c: { header(name: string, value: string): void }, next: () => Promise<void>) => {
    await next()
    c.header('Cache-Control', 'no-store')
  }
  const wire = async (id: string) => {
    const record = await deps.service.store.get(id)
    if (!record) return undefined
    const stats = await deps.service.store.stats(id)
    const extra: Record<string, unknown> = {}
    if (record.delivery === 'push') extra.endpoint_url = deps.service.inboundUrl(id)
    else extra.poller = (await deps.leases.holderOf(id)) ?? null
    return toWire(record, stats, extra)
  }

  app.post('/admin/upstreams', admin, noStore, async (c) => {
    const input = parseRegistration(asObject(await readJsonBody(c, MAX_BODY)), deps.service.outbound.check)
    let record
    try {
      record = await deps.service.register(input)
    } catch (error) {
      if (error instanceof UpstreamRegistrationError) {
        throw error.kind === 'invalid' ? badRequest(error.message, 'invalid_upstream') : new HttpError(502, 'upstream_unavailable', error.message)
      }
      throw error
    }
    return c.json(await wire(record.upstream_id), 201)
  })

  app.get('/admin/upstreams', admin, noStore, async (c) => {
    const records = await deps.service.store.list()
    const upstreams = (await Promise.all(records.map((r) => wire(r.upstream_id)))).filter((u) => u !== undefined)
    return c.json({ upstreams })
  })

  app.get('/admin/upstreams/:upstream_id', admin, noStore, async (c) => {
    const body = await wire(c.req.param('upstream_id'))
    if (!body) throw notFound('upstream not found')
    return c.json(body)
  })

  app.delete('/admin/upstreams/:upstream_id', admin, noStore, async (c) => {
    const force = c.req.query('force')
    if (force !== undefined && force !== 'true' && force !== 'false') throw badRequest('force: must be true or false')
    let outcome
    try {
      outcome = await deps.service.remove(c.req.param('upstream_id'), force === 'true')
    } catch (error) {
      if (error instanceof UpstreamRegistrationError) throw new HttpError(502, 'upstream_unavailable', `${error.message} (the upstream is kept; retry, or delete with ?force=true)`)
      throw error
    }
    if (outcome === 'not_found') throw notFound('upstream not found')
    return c.body(null, 204)
  })

  app.post(`${INBOUND_PATH}/:upstream_id`, async (c) => {
    // A 503 answered for this request (request deadline, Redis unavailable) takes the RFC 8935 shape too.
    c.set(RFC8935_ERRORS as never, true as never)
    let runtime
    try {
      runtime = await deps.service.runtime(c.req.param('upstream_id'))
    } catch {
      // The registry did not answer: not acknowledged, so the upstream retries (RFC 8935 §2.4 shape).
      return c.json({ err: 'temporarily_unavailable', description: 'the receiver cannot process SETs right now' }, 503, { 'retry-after': '2', 'cache-control': 'no-store' })
    }
    if (!runtime?.push) {
      // Indistinguishable from a wrong Authorization: no probing for upstream ids.
      return c.json({ err: 'authentication_failed', description: 'the Authorization header is missing or not the one configured for this stream' }, 400, { 'cache-control': 'no-store', 'content-language': 'en' })
    }
    return runtime.push(c.req.raw)
  })

  return app
}
