/**
 * SSF stream management (SSF §8.1.1 configuration, §8.1.2 status) for receiver clients.
 *
 * Every stream belongs to the receiver that created it; any other caller gets 404 for it, exactly as
 * for a stream that does not exist. Error precedence: 401, then 400 for an unparseable body, then 404,
 * then 400 for invalid members. A receiver may hold several streams; each create makes a new one.
 */
import { Hono, type Context } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import type { OAuthVerifier } from '../auth/oauth.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { asObject, readJsonBody } from '../http/json-body.js'
import { badRequest, notFound } from '../http/errors.js'
import { unsafeText } from '../lib/safe-text.js'
import { randomId } from '../lib/ids.js'
import { POLL_METHOD, STREAM_STATUSES, statusWire, toWire, type Delivery, type DefaultSubjects, type StreamPolicy, type StreamRecord, type StreamStatus } from './model.js'
import { checkTransmitterMembers, eventsDelivered, eventsSupportedFor, parseReceiverFields, rejectUnknownStreamMembers, TRANSMITTER_MEMBERS, type RequestedDelivery } from './request.js'
import type { StreamStore } from './store.js'
import { clientOf, streamAccess, streamIdMember } from './access.js'
import type { AuditLog } from '../audit/log.js'
import type { StreamLifecycle } from './lifecycle.js'

const MAX_BODY = 64 * 1024
const MAX_REASON = 1024

export interface StreamDeps {
  /** Accepts OAuth access tokens too, when an authorization server is configured. */
  oauth?: OAuthVerifier
  issuer: string
  /** Standard event types every stream may receive. */
  eventsSupported: readonly string[]
  /** Event types offered only to streams that request them (the broker's agent events). */
  requestOnlyEvents: readonly string[]
  allowPrivatePush: boolean
  defaultSubjects: DefaultSubjects
  policy: StreamPolicy
  streams: StreamStore
  lifecycle: StreamLifecycle
  /** Says how many SETs the backlog bound dropped for a stream, if any (shown in its status `reason`). */
  backlogNote?(streamId: string): Promise<string | undefined>
  clients: ClientRegistry
  admin: BootstrapAdmin
  audit?: AuditLog
}

export const CONFIGURATION_PATH = '/ssf/streams'
export const STATUS_PATH = '/ssf/status'
export const POLL_PATH = '/ssf/poll'

export const pollUrl = (issuer: string, streamId: string) => `${issuer}${POLL_PATH}/${streamId}`

function streamIdParam(c: Context, required: boolean): string | undefined {
  const id = c.req.query('stream_id')
  if (id === undefined) {
    if (required) throw badRequest('stream_id: required query parameter')
    return undefined
  }
  if (id === '') throw badRequest('stream_id: must not be empty')
  return id
}

/** SSF §8.1.1.1: no delivery means poll; a poll URL is minted by the transmitter and never changes. */
function resolveDelivery(issuer: string, streamId: string, requested: RequestedDelivery | undefined, current?: Delivery): Delivery {
  if (requested === undefined || requested.method === POLL_METHOD) {
    const url = current?.method === POLL_METHOD ? current.endpoint_url : pollUrl(issuer, streamId)
    if (requested?.endpoint_url !== undefined && requested.endpoint_url !== url) throw badRequest('delivery.endpoint_url: is set by the transmitter for poll delivery')
    return { method: POLL_METHOD, endpoint_url: url }
  }
  return requested
}

export function streamRoutes(deps: StreamDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const { auth, ownStream } = streamAccess(deps.streams, deps.clients, deps.admin, deps.oauth)
  const wire = (s: StreamRecord) => toWire(s, deps.issuer, eventsSupportedFor(s.events_requested, deps.eventsSupported, deps.requestOnlyEvents), deps.policy)
  const delivered = (requested: readonly string[] | undefined) => eventsDelivered(requested, deps.eventsSupported, deps.requestOnlyEvents)

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
    const now = Math.floor(Date.now() / 1000)
    const streamId = randomId(16)
    const stream: StreamRecord = {
      stream_id: streamId,
      client_id: client.client_id,
      aud: client.audience,
      signing_alg: client.signing_alg,
      ...(fields.events_requested !== undefined ? { events_requested: fields.events_requested } : {}),
      events_delivered: delivered(fields.events_requested),
      delivery: resolveDelivery(deps.issuer, streamId, fields.delivery),
      default_subjects: deps.defaultSubjects,
      ...(fields.description !== undefined ? { description: fields.description } : {}),
      status: 'enabled',
      created_at: now,
      updated_at: now,
    }
    await deps.lifecycle.create(stream)
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
      // SSF §8.1.1.4: a receiver-supplied member missing from a replace request is removed; a missing
      // delivery means poll, as at creation.
      delete next.events_requested
      delete next.description
      next.delivery = resolveDelivery(deps.issuer, id, fields.delivery, current.delivery)
    } else if (fields.delivery !== undefined) {
      next.delivery = resolveDelivery(deps.issuer, id, fields.delivery, current.delivery)
    }
    if (fields.events_requested !== undefined) next.events_requested = fields.events_requested
    if (fields.description !== undefined) next.description = fields.description
    next.events_delivered = delivered(next.events_requested)
    if (!(await deps.lifecycle.update(next, current))) throw notFound('stream not found')
    return c.json(wire(next), 200)
  }
  app.patch(CONFIGURATION_PATH, auth, update('patch'))
  app.put(CONFIGURATION_PATH, auth, update('put'))

  app.delete(CONFIGURATION_PATH, auth, async (c) => {
    const id = streamIdParam(c, true)!
    const stream = await ownStream(c, id)
    if (!(await deps.lifecycle.remove(stream))) throw notFound('stream not found')
    return c.body(null, 204)
  })

  app.get(STATUS_PATH, auth, async (c) => {
    const id = streamIdParam(c, true)!
    const status = statusWire(await ownStream(c, id))
    const note = await deps.backlogNote?.(id)
    if (note !== undefined) status.reason = status.reason ? `${status.reason}; ${note}` : note
    return c.json(status, 200)
  })

  app.post(STATUS_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const id = streamIdMember(body)
    const current = await ownStream(c, id)
    for (const key of Object.keys(body)) if (!['stream_id', 'status', 'reason'].includes(key)) throw badRequest(`${key}: unknown member`)
    if (!STREAM_STATUSES.includes(body.status as StreamStatus)) throw badRequest(`status: must be one of ${STREAM_STATUSES.join(', ')}`)
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > MAX_REASON)) throw badRequest(`reason: must be a string of at most ${MAX_REASON} characters`)
    const reasonProblem = typeof body.reason === 'string' ? unsafeText(body.reason) : undefined
    if (reasonProblem) throw badRequest(`reason: ${reasonProblem}`)
    const next = await deps.lifecycle.setStatus(current, body.status as StreamStatus, body.reason as string | undefined)
    if (!next) throw notFound('stream not found')
    return c.json(statusWire(next), 200)
  })

  return app
}
