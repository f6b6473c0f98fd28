/**
 * Operator API (admin role): clients and their tokens, signing-key rotation, dead letters, every stream
 * (listed, and its status set), a stream's recent delivery outcomes, and a live feed of delivery outcomes.
 */
import { Hono } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import { ROLES, type BootstrapAdmin, type ClientRegistry, type Role } from '../auth/clients.js'
import { SIGNING_ALGS, type SigningAlg } from '../config/config.js'
import type { KeyStore } from '../keys/keystore.js'
import type { StreamStore } from '../streams/store.js'
import type { Outbox } from '../delivery/outbox.js'
import type { StreamLifecycle } from '../streams/lifecycle.js'
import type { StreamRecord } from '../streams/model.js'
import { queuesSets } from '../streams/delivery-policy.js'
import { asObject, readJsonBody, rejectUnknown } from '../http/json-body.js'
import { badRequest, notFound } from '../http/errors.js'
import { STREAM_STATUSES, isPush, type StreamStatus } from '../streams/model.js'
import type { ActivityFeed } from './activity-feed.js'
import { unsafeIdentifier, unsafeText } from '../lib/safe-text.js'

const MAX_BODY = 64 * 1024

export interface AdminDeps {
  clients: ClientRegistry
  admin: BootstrapAdmin
  keys: KeyStore
  streams: StreamStore
  outbox: Outbox
  lifecycle: StreamLifecycle
  /** A stream got SETs back (redrive): schedule its delivery. */
  schedule(stream: StreamRecord): Promise<void>
  /** Sets a stream's status as the operator (the stream lifecycle tells the receiver). */
  changeStatus?: (stream: StreamRecord, status: StreamStatus, reason: string | undefined) => Promise<StreamRecord | undefined>
  feed?: ActivityFeed
}

const MAX_REASON = 1024

function limitParam(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw badRequest(`limit: must be a whole number from 1 to ${max}`)
  return Number(raw)
}

// Dead letters redriven per request, by ids or by filter; the body cap leaves room for that many ids.
const MAX_REDRIVE = 10_000
const MAX_REDRIVE_BODY = 512 * 1024

async function optionalBody(c: Parameters<typeof readJsonBody>[0], maxBytes = MAX_BODY): Promise<Record<string, unknown>> {
  const hasBody = (c.req.header('content-length') ?? '0') !== '0' || c.req.header('transfer-encoding') !== undefined
  return hasBody ? asObject(await readJsonBody(c, maxBytes)) : {}
}

export function adminRoutes(deps: AdminDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  app.use('/admin/*', requireRole(deps.clients, deps.admin, 'admin'))
  app.use('/admin/*', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })

  app.post('/admin/clients', async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    rejectUnknown(body, ['name', 'roles', 'signing_alg', 'audience'])
    if (typeof body.name !== 'string' || body.name.trim() === '' || body.name.length > 200) throw badRequest('name: required, a string of 1 to 200 characters')
    if (!Array.isArray(body.roles) || body.roles.length === 0) throw badRequest(`roles: required, a non-empty array of ${ROLES.join(', ')}`)
    for (const role of body.roles) if (!ROLES.includes(role as Role)) throw badRequest(`roles: unknown role ${JSON.stringify(role)}; roles are ${ROLES.join(', ')}`)
    const nameProblem = unsafeText(body.name)
    if (nameProblem) throw badRequest(`name: ${nameProblem}`)
    const alg = body.signing_alg === undefined ? 'RS256' : body.signing_alg
    if (!SIGNING_ALGS.includes(alg as SigningAlg)) throw badRequest(`signing_alg: must be one of ${SIGNING_ALGS.join(', ')}`)
    if (body.audience !== undefined && (typeof body.audience !== 'string' || body.audience === '' || body.audience.length > 512)) {
      throw badRequest('audience: must be a non-empty string of at most 512 characters')
    }
    const audienceProblem = typeof body.audience === 'string' ? unsafeIdentifier(body.audience) : undefined
    if (audienceProblem) throw badRequest(`audience: ${audienceProblem}`)
    const { client, token } = await deps.clients.create({
      name: body.name,
      roles: body.roles as Role[],
      signing_alg: alg as SigningAlg,
      ...(typeof body.audience === 'string' ? { audience: body.audience } : {}),
    })
    return c.json({ ...client, token }, 201)
  })

  app.get('/admin/clients', async (c) => c.json({ clients: await deps.clients.list() }))

  app.get('/admin/clients/:client_id', async (c) => {
    const client = await deps.clients.get(c.req.param('client_id'))
    if (!client) throw notFound('client not found')
    return c.json(client)
  })

  app.delete('/admin/clients/:client_id', async (c) => {
    const id = c.req.param('client_id')
    if (!(await deps.clients.delete(id))) throw notFound('client not found')
    // A deleted receiver's streams go with it: nothing more is minted or delivered for them.
    await deps.lifecycle.removeAllOf(id)
    return c.body(null, 204)
  })

  app.get('/admin/keys', async (c) => c.json({ keys: await deps.keys.list() }))

  app.post('/admin/keys/rotate', async (c) => {
    const body = await optionalBody(c)
    rejectUnknown(body, ['algs', 'immediate'])
    if (body.immediate !== undefined && typeof body.immediate !== 'boolean') throw badRequest('immediate: must be a boolean (true rotates at once, without publishing the new key ahead)')
    let algs: SigningAlg[] = [...SIGNING_ALGS]
    if (body.algs !== undefined) {
      if (!Array.isArray(body.algs) || body.algs.length === 0 || body.algs.some((a) => !SIGNING_ALGS.includes(a as SigningAlg))) {
        throw badRequest(`algs: must be a non-empty array of ${SIGNING_ALGS.join(', ')}`)
      }
      algs = [...new Set(body.algs as SigningAlg[])]
    }
    const rotated = await deps.keys.rotate(algs, { immediate: body.immediate === true })
    return c.json({ rotated, keys: await deps.keys.list() })
  })

  app.get('/admin/dead-letters', async (c) => {
    const limit = limitParam(c.req.query('limit'), 100, 1000)
    const before = c.req.query('before')
    if (before !== undefined && !/^\d+$/.test(before)) throw badRequest('before: must be a time in milliseconds (the failed_at of the last letter of the previous page)')
    const streamId = c.req.query('stream_id')
    const letters = await deps.outbox.listDeadLetters({ limit, ...(streamId ? { streamId } : {}), ...(before ? { before: Number(before) } : {}) })
    return c.json({ dead_letters: letters })
  })

  app.post('/admin/dead-letters/redrive', async (c) => {
    const body = await optionalBody(c, MAX_REDRIVE_BODY)
    rejectUnknown(body, ['ids', 'stream_id', 'before', 'limit'])
    if (body.ids !== undefined && (!Array.isArray(body.ids) || body.ids.length === 0 || body.ids.length > MAX_REDRIVE || body.ids.some((id) => typeof id !== 'string' || id.length > 64))) {
      throw badRequest(`ids: must be a non-empty array of dead-letter ids (at most ${MAX_REDRIVE})`)
    }
    if (body.stream_id !== undefined && typeof body.stream_id !== 'string') throw badRequest('stream_id: must be a string')
    if (body.before !== undefined && (!Number.isSafeInteger(body.before) || (body.before as number) < 0)) throw badRequest('before: must be a time in milliseconds; letters that failed before it are redriven')
    if (body.limit !== undefined && (!Number.isSafeInteger(body.limit) || (body.limit as number) < 1 || (body.limit as number) > MAX_REDRIVE)) throw badRequest(`limit: must be a whole number from 1 to ${MAX_REDRIVE}`)
    if (body.ids !== undefined && (body.before !== undefined || body.limit !== undefined)) throw badRequest('ids: give either ids or a filter (stream_id, before, limit), not both')
    const limit = (body.limit as number | undefined) ?? MAX_REDRIVE
    const letters = body.ids
      ? await deps.outbox.getDeadLetters(body.ids as string[])
      : await deps.outbox.listDeadLetters({ limit, ...(typeof body.stream_id === 'string' ? { streamId: body.stream_id } : {}), ...(typeof body.before === 'number' ? { before: body.before } : {}) })
    const redriven: string[] = []
    const skipped: { id: string; reason: string }[] = []
    const touched = new Map<string, StreamRecord>()
    for (const letter of letters) {
      if (typeof body.stream_id === 'string' && letter.stream_id !== body.stream_id) continue
      const stream = touched.get(letter.stream_id) ?? (await deps.streams.get(letter.stream_id))
      if (!stream || !queuesSets(stream.status)) {
        skipped.push({ id: letter.id, reason: 'stream deleted or disabled' })
        continue
      }
      await deps.outbox.redrive(letter)
      touched.set(stream.stream_id, stream)
      redriven.push(letter.id)
    }
    for (const stream of touched.values()) await deps.schedule(stream)
    // A filter that filled its limit may have left more behind: the caller repeats the request.
    return c.json({ redriven, skipped, ...(body.ids === undefined && letters.length === limit ? { more: true } : {}) })
  })

  app.get('/admin/streams', async (c) => {
    const q = c.req.query()
    for (const key of Object.keys(q)) if (!['status', 'client_id', 'cursor', 'limit'].includes(key)) throw badRequest(`${key.slice(0, 100)}: unknown query parameter (use status, client_id, cursor, limit)`)
    if (q.status !== undefined && !STREAM_STATUSES.includes(q.status as StreamStatus)) throw badRequest(`status: must be one of ${STREAM_STATUSES.join(', ')}`)
    const limit = limitParam(q.limit, 100, 1000)
    const page = await deps.streams.list({
      limit,
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.client_id ? { clientId: q.client_id } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    })
    const backlogs = await Promise.all(page.streams.map((s) => deps.outbox.pending(s.stream_id)))
    const streams = page.streams.map((s, i) => ({
      stream_id: s.stream_id,
      client_id: s.client_id,
      status: s.status,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      delivery_method: s.delivery.method,
      ...(isPush(s) ? { endpoint_url: s.delivery.endpoint_url } : {}),
      backlog: backlogs[i]!,
      ...(s.description !== undefined ? { description: s.description } : {}),
      created_at: s.created_at,
      updated_at: s.updated_at,
    }))
    return c.json({ streams, ...(page.next_cursor !== undefined ? { next_cursor: page.next_cursor } : {}) })
  })

  app.post('/admin/streams/:stream_id/status', async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    rejectUnknown(body, ['status', 'reason'])
    if (!STREAM_STATUSES.includes(body.status as StreamStatus)) throw badRequest(`status: must be one of ${STREAM_STATUSES.join(', ')}`)
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > MAX_REASON)) throw badRequest(`reason: must be a string of at most ${MAX_REASON} characters`)
    const current = await deps.streams.get(c.req.param('stream_id'))
    if (!current) throw notFound('stream not found')
    if (!deps.changeStatus) throw new Error('changeStatus not configured')
    const next = await deps.changeStatus(current, body.status as StreamStatus, body.reason as string | undefined)
    if (!next) throw notFound('stream not found')
    return c.json({ stream_id: next.stream_id, status: next.status, ...(next.reason !== undefined ? { reason: next.reason } : {}) })
  })

  app.get('/admin/activity', (c) => {
    if (!deps.feed) throw notFound('the activity feed is not available')
    return deps.feed.respond(c)
  })

  app.get('/admin/streams/:stream_id/deliveries', async (c) => {
    const id = c.req.param('stream_id')
    if (!(await deps.streams.get(id))) throw notFound('stream not found')
    const limit = limitParam(c.req.query('limit'), 100, 1000)
    return c.json({ stream_id: id, pending: await deps.outbox.pending(id), deliveries: await deps.outbox.deliveries(id, limit) })
  })

  return app
}
