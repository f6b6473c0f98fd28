/**
 * SSF stream management (SSF §8.1.1 configuration, §8.1.2 status) for receiver clients.
 *
 * Every stream belongs to the receiver that created it; any other caller gets 404 for it, exactly as
 * for a stream that does not exist. Error precedence (http/route.ts): 401/403, then 415/413/400 for the
 * body, then 400 for invalid members, then 404. A receiver may hold several streams; each create makes a new one.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv } from '../auth/middleware.js'
import type { OAuthVerifier } from '../auth/oauth.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { setResponseHeader } from '../http/response-header.js'
import { badRequest, notFound } from '../http/errors.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'
import { randomId } from '../lib/ids.js'
import {
  POLL_METHOD,
  statusWire,
  toWire,
  type Delivery,
  type DefaultSubjects,
  type StreamPolicy,
  type StreamRecord,
} from './model.js'
import {
  checkTransmitterMembers,
  eventsDelivered,
  eventsSupportedFor,
  type RequestedDelivery,
} from './request.js'
import {
  EXAMPLES,
  STREAM_EXAMPLE,
  StatusRequest,
  StreamConfiguration,
  StreamStatus,
  streamCreateRequest,
  streamIdQuery,
  streamUpdateRequest,
} from './schemas.js'
import type { StreamStore } from './store.js'
import { clientOf, streamAccess } from './access.js'
import type { AuditLog } from '../audit/log.js'
import type { StreamLifecycle } from './lifecycle.js'

const MAX_BODY = 64 * 1024

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

/** SSF §8.1.1.1: no delivery means poll; a poll URL is minted by the transmitter and never changes. */
function resolveDelivery(
  issuer: string,
  streamId: string,
  requested: RequestedDelivery | undefined,
  current?: Delivery,
): Delivery {
  if (requested === undefined || requested.method === POLL_METHOD) {
    const url = current?.method === POLL_METHOD ? current.endpoint_url : pollUrl(issuer, streamId)
    if (requested?.endpoint_url !== undefined && requested.endpoint_url !== url)
      throw badRequest('delivery.endpoint_url: is set by the transmitter for poll delivery')
    return { method: POLL_METHOD, endpoint_url: url }
  }
  return requested
}

const TAG = 'Streams'
const RECEIVER_ERRORS = [400, 401, 403, 503] as const

export function streamRoutes(deps: StreamDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const { auth, ownStream } = streamAccess(deps.streams, deps.clients, deps.admin, deps.oauth)
  const wire = (s: StreamRecord) =>
    toWire(
      s,
      deps.issuer,
      eventsSupportedFor(s.events_requested, deps.eventsSupported, deps.requestOnlyEvents),
      deps.policy,
    )
  const delivered = (requested: readonly string[] | undefined) =>
    eventsDelivered(requested, deps.eventsSupported, deps.requestOnlyEvents)
  const createRequest = streamCreateRequest(deps.allowPrivatePush)
  const updateRequest = streamUpdateRequest(deps.allowPrivatePush)
  const configuration = {
    description: 'The stream configuration (SSF §8.1.1)',
    schema: StreamConfiguration,
  }

  app.use('/ssf/*', async (c, next) => {
    await next()
    setResponseHeader(c, 'Cache-Control', 'no-store')
  })

  operation(
    app,
    {
      method: 'post',
      path: CONFIGURATION_PATH,
      operationId: 'createStream',
      tag: TAG,
      summary: 'Create a stream (SSF §8.1.1.1)',
      description:
        'Each create makes a new stream owned by the caller; a receiver may hold several.',
      auth,
      body: {
        schema: createRequest,
        maxBytes: MAX_BODY,
        example: { delivery: EXAMPLES.push, events_requested: [EXAMPLES.eventType] },
      },
      responses: { 201: { ...configuration, description: 'Created' } },
      errors: [...RECEIVER_ERRORS, 409, 413, 415],
    },
    async (c, { body }) => {
      const client = clientOf(c.get('principal'))
      const now = Math.floor(Date.now() / 1000)
      const streamId = randomId(16)
      const stream: StreamRecord = {
        stream_id: streamId,
        client_id: client.client_id,
        aud: client.audience,
        signing_alg: client.signing_alg,
        ...(body.events_requested !== undefined ? { events_requested: body.events_requested } : {}),
        events_delivered: delivered(body.events_requested),
        delivery: resolveDelivery(deps.issuer, streamId, body.delivery),
        default_subjects: deps.defaultSubjects,
        ...(body.description !== undefined ? { description: body.description } : {}),
        status: 'enabled',
        created_at: now,
        updated_at: now,
      }
      await deps.lifecycle.create(stream)
      return c.json(wire(stream), 201)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: CONFIGURATION_PATH,
      operationId: 'readStreams',
      tag: TAG,
      summary: "Read one stream (with stream_id) or all of the caller's streams (SSF §8.1.1.2)",
      auth,
      query: streamIdQuery(false),
      responses: {
        200: {
          description: 'A configuration, or an array of them',
          schema: z.union([StreamConfiguration, z.array(StreamConfiguration)]),
          example: [STREAM_EXAMPLE],
        },
      },
      errors: [...RECEIVER_ERRORS, 404],
    },
    async (c, { query }) => {
      if (query.stream_id === undefined) {
        const streams = await deps.streams.listForClient(clientOf(c.get('principal')).client_id)
        return c.json(streams.map(wire), 200)
      }
      return c.json(wire(await ownStream(c, query.stream_id)), 200)
    },
  )

  const update = (mode: 'patch' | 'put') =>
    operation(
      app,
      {
        method: mode,
        path: CONFIGURATION_PATH,
        operationId: mode === 'patch' ? 'updateStream' : 'replaceStream',
        tag: TAG,
        summary:
          mode === 'patch' ? 'Update a stream (SSF §8.1.1.3)' : 'Replace a stream (SSF §8.1.1.4)',
        auth,
        body: {
          schema: updateRequest,
          maxBytes: MAX_BODY,
          example: {
            stream_id: EXAMPLES.streamId,
            description: 'Session revocations for the help desk',
          },
        },
        load: (c, { body }) => ownStream(c, body.stream_id),
        responses: {
          200: { ...configuration, description: mode === 'patch' ? 'Updated' : 'Replaced' },
        },
        errors: [...RECEIVER_ERRORS, 404, 409, 413, 415],
      },
      async (c, { body }, current) => {
        checkTransmitterMembers(body, wire(current))
        const id = current.stream_id
        const next: StreamRecord = { ...current, updated_at: Math.floor(Date.now() / 1000) }
        if (mode === 'put') {
          // SSF §8.1.1.4: a receiver-supplied member missing from a replace request is removed; a missing
          // delivery means poll, as at creation.
          delete next.events_requested
          delete next.description
          next.delivery = resolveDelivery(deps.issuer, id, body.delivery, current.delivery)
        } else if (body.delivery !== undefined) {
          next.delivery = resolveDelivery(deps.issuer, id, body.delivery, current.delivery)
        }
        if (body.events_requested !== undefined) next.events_requested = body.events_requested
        if (body.description !== undefined) next.description = body.description
        next.events_delivered = delivered(next.events_requested)
        if (!(await deps.lifecycle.update(next, current))) throw notFound('stream not found')
        return c.json(wire(next), 200)
      },
    )
  update('patch')
  update('put')

  operation(
    app,
    {
      method: 'delete',
      path: CONFIGURATION_PATH,
      operationId: 'deleteStream',
      tag: TAG,
      summary: 'Delete a stream (SSF §8.1.1.5)',
      auth,
      query: streamIdQuery(true),
      load: (c, { query }) => ownStream(c, query.stream_id!),
      responses: { 204: { description: 'Deleted' } },
      errors: [...RECEIVER_ERRORS, 404, 409],
    },
    async (c, _input, stream) => {
      if (!(await deps.lifecycle.remove(stream))) throw notFound('stream not found')
      return c.body(null, 204)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: STATUS_PATH,
      operationId: 'readStreamStatus',
      tag: TAG,
      summary: 'Read stream status (SSF §8.1.2.1)',
      auth,
      query: streamIdQuery(true),
      load: (c, { query }) => ownStream(c, query.stream_id!),
      responses: { 200: { description: 'Status', schema: StreamStatus } },
      errors: [...RECEIVER_ERRORS, 404],
    },
    async (c, _input, stream) => {
      const status = statusWire(stream)
      const note = await deps.backlogNote?.(stream.stream_id)
      if (note !== undefined) status.reason = status.reason ? `${status.reason}; ${note}` : note
      return c.json(status, 200)
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: STATUS_PATH,
      operationId: 'updateStreamStatus',
      tag: TAG,
      summary: 'Update stream status (SSF §8.1.2.2)',
      description: 'The receiver is told by a stream-updated event.',
      auth,
      body: {
        schema: StatusRequest,
        maxBytes: MAX_BODY,
        example: { stream_id: EXAMPLES.streamId, status: 'paused', reason: 'maintenance' },
      },
      load: (c, { body }) => ownStream(c, body.stream_id),
      responses: { 200: { description: 'Status', schema: StreamStatus } },
      errors: [...RECEIVER_ERRORS, 404, 409, 413, 415],
    },
    async (c, { body }, current) => {
      const next = await deps.lifecycle.setStatus(current, body.status, body.reason)
      if (!next) throw notFound('stream not found')
      return c.json(statusWire(next), 200)
    },
  )

  return app
}
