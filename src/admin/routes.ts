/**
 * Operator API (admin role): clients and their tokens, signing-key rotation, dead letters, every stream
 * (listed, and its status set), a stream's recent delivery outcomes, and a live feed of delivery outcomes.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry, Role } from '../auth/clients.js'
import { SIGNING_ALGS } from '../config/config.js'
import type { KeyStore } from '../keys/keystore.js'
import type { StreamStore } from '../streams/store.js'
import type { Outbox } from '../delivery/outbox.js'
import type { StreamLifecycle } from '../streams/lifecycle.js'
import type { StreamRecord } from '../streams/model.js'
import { queuesSets } from '../streams/delivery-policy.js'
import { setResponseHeader } from '../http/response-header.js'
import { notFound } from '../http/errors.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'
import { isPush, type StreamStatus } from '../streams/model.js'
import type { ActivityFeed } from './activity-feed.js'
import {
  ActivityQuery,
  AdminStatusRequest,
  Client,
  ClientCreateRequest,
  ClientIdParams,
  ClientList,
  CreatedClient,
  DeadLetterList,
  DeadLetterQuery,
  Deliveries,
  DeliveriesQuery,
  KeyList,
  MAX_REDRIVE,
  RedriveRequest,
  RedriveResult,
  RotateRequest,
  Rotated,
  StreamIdParams,
  StreamListQuery,
  StreamPage,
} from './schemas.js'

const MAX_BODY = 64 * 1024
// Dead letters redriven per request, by ids or by filter; the body cap leaves room for that many ids.
const MAX_REDRIVE_BODY = 512 * 1024
const TAG = 'Admin'
const ADMIN_ERRORS = [401, 403, 503] as const

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
  changeStatus?: (
    stream: StreamRecord,
    status: StreamStatus,
    reason: string | undefined,
  ) => Promise<StreamRecord | undefined>
  feed?: ActivityFeed
}

export function adminRoutes(deps: AdminDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const auth = requireRole(deps.clients, deps.admin, 'admin')
  app.use('/admin/*', async (c, next) => {
    await next()
    setResponseHeader(c, 'Cache-Control', 'no-store')
  })

  operation(
    app,
    {
      method: 'post',
      path: '/admin/clients',
      operationId: 'createClient',
      tag: TAG,
      summary: 'Create a client; the token is returned once',
      auth,
      body: {
        schema: ClientCreateRequest,
        maxBytes: MAX_BODY,
        example: { name: 'Help desk', roles: ['receiver'], signing_alg: 'ES256' },
      },
      responses: { 201: { description: 'Created', schema: CreatedClient } },
      errors: [400, ...ADMIN_ERRORS, 413, 415],
    },
    async (c, { body }) => {
      const { client, token } = await deps.clients.create({
        name: body.name,
        roles: body.roles as Role[],
        signing_alg: body.signing_alg,
        ...(body.audience !== undefined ? { audience: body.audience } : {}),
      })
      return c.json({ ...client, token }, 201)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/clients',
      operationId: 'listClients',
      tag: TAG,
      summary: 'List clients',
      auth,
      responses: { 200: { description: 'Clients', schema: ClientList } },
      errors: ADMIN_ERRORS,
    },
    async (c) => c.json({ clients: await deps.clients.list() }),
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/clients/{client_id}',
      operationId: 'readClient',
      tag: TAG,
      summary: 'Read a client',
      auth,
      params: ClientIdParams,
      load: async (_c, { params }) =>
        (await deps.clients.get(params.client_id)) ?? Promise.reject(notFound('client not found')),
      responses: { 200: { description: 'Client', schema: Client } },
      errors: [...ADMIN_ERRORS, 404],
    },
    async (c, _input, client) => c.json(client),
  )

  operation(
    app,
    {
      method: 'delete',
      path: '/admin/clients/{client_id}',
      operationId: 'deleteClient',
      tag: TAG,
      summary: 'Delete a client; its tokens stop working and its streams are deleted',
      auth,
      params: ClientIdParams,
      responses: { 204: { description: 'Deleted' } },
      errors: [...ADMIN_ERRORS, 404],
    },
    async (c, { params }) => {
      if (!(await deps.clients.delete(params.client_id))) throw notFound('client not found')
      // A deleted receiver's streams go with it: nothing more is minted or delivered for them.
      await deps.lifecycle.removeAllOf(params.client_id)
      return c.body(null, 204)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/keys',
      operationId: 'listKeys',
      tag: TAG,
      summary: 'List signing keys (no key material)',
      auth,
      responses: { 200: { description: 'Keys', schema: KeyList } },
      errors: ADMIN_ERRORS,
    },
    async (c) => c.json({ keys: await deps.keys.list() }),
  )

  operation(
    app,
    {
      method: 'post',
      path: '/admin/keys/rotate',
      operationId: 'rotateKeys',
      tag: TAG,
      summary:
        'Rotate signing keys: the new key is published ahead, then signs; old keys stay published for the overlap',
      description:
        'The new key is in the JWKS at once and signs only SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS later, so receivers whose JWKS caches refetch now and then lose nothing. `immediate: true` signs with it at once (a compromised key).',
      auth,
      body: {
        schema: RotateRequest,
        maxBytes: MAX_BODY,
        optional: true,
        example: { algs: ['ES256'], immediate: false },
      },
      responses: { 200: { description: 'Rotated', schema: Rotated } },
      errors: [400, ...ADMIN_ERRORS, 413, 415],
    },
    async (c, { body }) => {
      const rotated = await deps.keys.rotate(body.algs ?? [...SIGNING_ALGS], {
        immediate: body.immediate === true,
      })
      return c.json({ rotated, keys: await deps.keys.list() })
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/dead-letters',
      operationId: 'listDeadLetters',
      tag: TAG,
      summary: 'Dead letters, newest first',
      auth,
      query: DeadLetterQuery,
      responses: { 200: { description: 'Dead letters', schema: DeadLetterList } },
      errors: [400, ...ADMIN_ERRORS],
    },
    async (c, { query }) => {
      const letters = await deps.outbox.listDeadLetters({
        limit: query.limit ?? 100,
        ...(query.stream_id ? { streamId: query.stream_id } : {}),
        ...(query.before !== undefined ? { before: query.before } : {}),
      })
      return c.json({ dead_letters: letters })
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: '/admin/dead-letters/redrive',
      operationId: 'redriveDeadLetters',
      tag: TAG,
      summary: 'Queue dead letters again (same jti)',
      description: `By \`ids\` (at most ${MAX_REDRIVE}; an id not found is listed in \`skipped\`), or by filter: \`stream_id\`, \`before\` (letters that failed before this time, in ms) and \`limit\` (1 to ${MAX_REDRIVE}, default ${MAX_REDRIVE}). No body: all dead letters, up to ${MAX_REDRIVE}. \`more: true\` when a filter filled its limit; repeat the request for the rest.`,
      auth,
      body: {
        schema: RedriveRequest,
        maxBytes: MAX_REDRIVE_BODY,
        optional: true,
        example: { stream_id: '5f3c8a1e9b2d4c6f8a0b1c2d3e4f5a6b', limit: 100 },
      },
      responses: { 200: { description: 'Result', schema: RedriveResult } },
      errors: [400, ...ADMIN_ERRORS, 413, 415],
    },
    async (c, { body }) => {
      const limit = body.limit ?? MAX_REDRIVE
      // An id given twice is redriven once.
      const ids = body.ids ? [...new Set(body.ids)] : undefined
      const letters = ids
        ? await deps.outbox.getDeadLetters(ids)
        : await deps.outbox.listDeadLetters({
            limit,
            ...(body.stream_id !== undefined ? { streamId: body.stream_id } : {}),
            ...(body.before !== undefined ? { before: body.before } : {}),
          })
      const redriven: string[] = []
      const skipped: { id: string; reason: string }[] = []
      const touched = new Map<string, StreamRecord>()
      if (ids) {
        const found = new Set(letters.map((l) => l.id))
        for (const id of ids)
          if (!found.has(id)) skipped.push({ id, reason: 'no such dead letter' })
      }
      for (const letter of letters) {
        if (body.stream_id !== undefined && letter.stream_id !== body.stream_id) continue
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
      return c.json({
        redriven,
        skipped,
        ...(ids === undefined && letters.length === limit ? { more: true } : {}),
      })
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/streams',
      operationId: 'listAllStreams',
      tag: TAG,
      summary: 'Every stream, in stream-id order, paged',
      auth,
      query: StreamListQuery,
      responses: { 200: { description: 'One page of streams', schema: StreamPage } },
      errors: [400, ...ADMIN_ERRORS],
    },
    async (c, { query }) => {
      const page = await deps.streams.list({
        limit: query.limit ?? 100,
        ...(query.status !== undefined ? { status: query.status } : {}),
        ...(query.client_id ? { clientId: query.client_id } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
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
      return c.json({
        streams,
        ...(page.next_cursor !== undefined ? { next_cursor: page.next_cursor } : {}),
      })
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: '/admin/streams/{stream_id}/status',
      operationId: 'setStreamStatus',
      tag: TAG,
      summary:
        "Set any stream's status as the operator (the receiver is told by a stream-updated event)",
      auth,
      params: StreamIdParams,
      body: {
        schema: AdminStatusRequest,
        maxBytes: MAX_BODY,
        example: { status: 'disabled', reason: 'receiver decommissioned' },
      },
      load: async (_c, { params }) =>
        (await deps.streams.get(params.stream_id)) ?? Promise.reject(notFound('stream not found')),
      responses: {
        200: {
          description: 'The new status',
          schema: z.object({
            stream_id: z.string(),
            status: z.string(),
            reason: z.string().optional(),
          }),
        },
      },
      errors: [400, ...ADMIN_ERRORS, 404, 409, 413, 415],
    },
    async (c, { body }, current) => {
      if (!deps.changeStatus) throw new Error('changeStatus not configured')
      const next = await deps.changeStatus(current, body.status, body.reason)
      if (!next) throw notFound('stream not found')
      return c.json({
        stream_id: next.stream_id,
        status: next.status,
        ...(next.reason !== undefined ? { reason: next.reason } : {}),
      })
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/activity',
      operationId: 'activityFeed',
      tag: TAG,
      summary: 'Live delivery outcomes of the broker process answering (Server-Sent Events)',
      auth,
      query: ActivityQuery,
      responses: {
        200: {
          description: 'event: delivered | failed | dropped; data: the outcome as JSON',
          contentType: 'text/event-stream',
          schema: z.string(),
          example: 'event: delivered\ndata: {"stream_id":"5f3c","jti":"4d35","latency_ms":12}\n\n',
        },
      },
      errors: [400, ...ADMIN_ERRORS, 404],
    },
    (c) => {
      if (!deps.feed) throw notFound('the activity feed is not available')
      return deps.feed.respond(c)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/streams/{stream_id}/deliveries',
      operationId: 'listDeliveries',
      tag: TAG,
      summary: "A stream's recent delivery outcomes",
      auth,
      params: StreamIdParams,
      query: DeliveriesQuery,
      load: async (_c, { params }) =>
        (await deps.streams.get(params.stream_id)) ?? Promise.reject(notFound('stream not found')),
      responses: { 200: { description: 'Deliveries', schema: Deliveries } },
      errors: [400, ...ADMIN_ERRORS, 404],
    },
    async (c, { query }, stream) => {
      const id = stream.stream_id
      return c.json({
        stream_id: id,
        pending: await deps.outbox.pending(id),
        deliveries: await deps.outbox.deliveries(id, query.limit ?? 100),
      })
    },
  )

  return app
}
