/**
 * SSF stream management (SSF §8.1.1 configuration, §8.1.2 status) for receiver clients.
 *
 * Every stream belongs to the receiver that created it; any other caller gets 404 for it, exactly as
 * for a stream that does not exist. Error precedence: 401, then 400 for an unparseable body, then 404,
 * then 400 for invalid members.
 */
import { Hono, type Context } from 'hono'
import type { AuthEnv, Principal } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { asObject, readJsonBody } from '../http/json-body.js'
import { badRequest, notFound } from '../http/errors.js'
import { randomId } from '../lib/ids.js'
import { POLL_METHOD, STREAM_STATUSES, statusWire, toWire, type StreamRecord, type StreamStatus } from './model.js'
import { checkTransmitterMembers, eventsDelivered, parseReceiverFields, rejectUnknownStreamMembers, TRANSMITTER_MEMBERS } from './request.js'
import type { StreamStore } from './store.js'
import type { Outbox } from '../delivery/outbox.js'

const MAX_BODY = 64 * 1024
const MAX_REASON = 1024

export interface StreamDeps {
  issuer: string
  eventsSupported: readonly string[]
  allowPrivatePush: boolean
  streams: StreamStore
  outbox: Outbox
  clients: ClientRegistry
  admin: BootstrapAdmin
  /** Called when a stream may have become due for delivery (e.g. re-enabled). */
  wake(): Promise<void>
}

export const CONFIGURATION_PATH = '/ssf/streams'
export const STATUS_PATH = '/ssf/status'

function clientOf(principal: Principal) {
  if (principal.kind !== 'client') throw new Error('receiver routes need a client principal')
  return principal.client
}

function streamIdParam(c: Context, required: boolean): string | undefined {
  const id = c.req.query('stream_id')
  if (id === undefined) {
    if (required) throw badRequest('stream_id: required query parameter')
    return undefined
  }
  if (id === '') throw badRequest('stream_id: must not be empty')
  return id
}

function streamIdMember(body: Record<string, unknown>): string {
  if (typeof body.stream_id !== 'string' || body.stream_id === '') throw badRequest('stream_id: required')
  return body.stream_id
}

export function streamRoutes(deps: StreamDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const auth = requireRole(deps.clients, deps.admin, 'receiver')
  const wire = (s: StreamRecord) => toWire(s, deps.issuer, deps.eventsSupported)

  /** The caller's own stream, or 404 (also for another receiver's stream). */
  async function ownStream(c: Context<AuthEnv>, id: string): Promise<StreamRecord> {
    const stream = await deps.streams.get(id)
    if (!stream || stream.client_id !== clientOf(c.get('principal')).client_id) throw notFound(`stream "${id.slice(0, 100)}" not found`)
    return stream
  }

  app.use('/ssf/*', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })

  app.post(CONFIGURATION_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const client = clientOf(c.get('principal'))
    for (const name of TRANSMITTER_MEMBERS) if (body[name] !== undefined) throw badRequest(`${name}: is set by the transmitter`)
    rejectUnknownStreamMembers(body, [])
    const fields = parseReceiverFields(body, deps.allowPrivatePush)
    // SSF §8.1.1.1: no delivery means poll.
    if (!fields.delivery) throw badRequest(`delivery: required; without it SSF assumes poll (${POLL_METHOD}), which this transmitter does not offer yet`)
    const now = Math.floor(Date.now() / 1000)
    const stream: StreamRecord = {
      stream_id: randomId(16),
      client_id: client.client_id,
      aud: client.audience,
      signing_alg: client.signing_alg,
      ...(fields.events_requested !== undefined ? { events_requested: fields.events_requested } : {}),
      events_delivered: eventsDelivered(fields.events_requested, deps.eventsSupported),
      delivery: fields.delivery,
      ...(fields.description !== undefined ? { description: fields.description } : {}),
      status: 'enabled',
      created_at: now,
      updated_at: now,
    }
    await deps.streams.save(stream)
    return c.json(wire(stream), 201)
  })

  app.get(CONFIGURATION_PATH, auth, async (c) => {
    const id = streamIdParam(c, false)
    if (id === undefined) {
      const streams = await deps.streams.listForClient(clientOf(c.get('principal')).client_id)
      return c.json(streams.map(wire), 200)
    }
    return c.json(wire(await ownStream(c, id)), 200)
  })

  const update = (mode: 'patch' | 'put') => async (c: Context<AuthEnv>) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const id = streamIdMember(body)
    const current = await ownStream(c, id)
    rejectUnknownStreamMembers(body, ['stream_id', ...TRANSMITTER_MEMBERS])
    checkTransmitterMembers(body, wire(current))
    const fields = parseReceiverFields(body, deps.allowPrivatePush)
    const next: StreamRecord = { ...current, updated_at: Math.floor(Date.now() / 1000) }
    if (mode === 'put') {
      // SSF §8.1.1.4: a receiver-supplied member missing from a replace request is removed.
      delete next.events_requested
      delete next.description
      if (!fields.delivery) throw badRequest(`delivery: required; without it SSF assumes poll (${POLL_METHOD}), which this transmitter does not offer yet`)
    }
    if (fields.events_requested !== undefined) next.events_requested = fields.events_requested
    if (fields.description !== undefined) next.description = fields.description
    if (fields.delivery !== undefined) next.delivery = fields.delivery
    next.events_delivered = eventsDelivered(next.events_requested, deps.eventsSupported)
    await deps.streams.save(next, current)
    return c.json(wire(next), 200)
  }
  app.patch(CONFIGURATION_PATH, auth, update('patch'))
  app.put(CONFIGURATION_PATH, auth, update('put'))

  app.delete(CONFIGURATION_PATH, auth, async (c) => {
    const id = streamIdParam(c, true)!
    const stream = await ownStream(c, id)
    await deps.streams.remove(stream)
    await deps.outbox.purge(id)
    await deps.outbox.deleteLog(id)
    return c.body(null, 204)
  })

  app.get(STATUS_PATH, auth, async (c) => {
    const id = streamIdParam(c, true)!
    return c.json(statusWire(await ownStream(c, id)), 200)
  })

  app.post(STATUS_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const id = streamIdMember(body)
    const current = await ownStream(c, id)
    for (const key of Object.keys(body)) if (!['stream_id', 'status', 'reason'].includes(key)) throw badRequest(`${key}: unknown member`)
    if (!STREAM_STATUSES.includes(body.status as StreamStatus)) throw badRequest(`status: must be one of ${STREAM_STATUSES.join(', ')}`)
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > MAX_REASON)) throw badRequest(`reason: must be a string of at most ${MAX_REASON} characters`)
    const next: StreamRecord = { ...current, status: body.status as StreamStatus, updated_at: Math.floor(Date.now() / 1000) }
    delete next.reason
    if (typeof body.reason === 'string') next.reason = body.reason
    await deps.streams.save(next, current)
    // Disabled streams hold nothing (SSF §8.1.2); re-enabled ones deliver what they held, in order.
    if (next.status === 'disabled') await deps.outbox.purge(id)
    if (next.status === 'enabled' && current.status !== 'enabled') {
      await deps.outbox.markReady(id)
      await deps.wake()
    }
    return c.json(statusWire(next), 200)
  })

  return app
}
