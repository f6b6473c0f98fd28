/**
 * Upstream routes: the operator API (`/admin/upstreams`, admin role) and the inbound push endpoint
 * (`POST /ssf/inbound/{upstream_id}`), a strict RFC 8935 receiver that answers 202 only once the SET's
 * event is durable here, and `400 {err, description}` otherwise.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { BrokerError } from '../errors.js'
import { RFC8935_ERRORS, notFound } from '../http/errors.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'
import { toWire } from './model.js'
import {
  INBOUND_PATH,
  UpstreamRegistrationError,
  type RegisterInput,
  type UpstreamService,
} from './service.js'
import type { UpstreamLeases } from './lease.js'

const MAX_BODY = 64 * 1024

export interface UpstreamRouteDeps {
  service: UpstreamService
  leases: UpstreamLeases
  clients: ClientRegistry
  admin: BootstrapAdmin
}

const str = (max = 2048) =>
  z
    .string({ error: `required, a non-empty string of at most ${max} characters` })
    .min(1, `required, a non-empty string of at most ${max} characters`)
    .max(max, `required, a non-empty string of at most ${max} characters`)

const url = (check: (url: string) => string | undefined, max = 2048) =>
  str(max).superRefine((value, ctx) => {
    if (!URL.canParse(value)) ctx.addIssue({ code: 'custom', message: 'must be a URL' })
    else {
      const problem = check(value)
      if (problem) ctx.addIssue({ code: 'custom', message: problem })
    }
  })

function registrationSchema(check: (url: string) => string | undefined) {
  const authorization = z.discriminatedUnion(
    'type',
    [
      z.strictObject({
        type: z.literal('bearer'),
        token: str(8192)
          .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
          .openapi({ description: 'Sent as `Authorization: Bearer <token>` to the upstream.' }),
      }),
      z.strictObject({
        type: z.literal('client_credentials'),
        token_endpoint: url(check),
        client_id: str(512),
        client_secret: str(4096),
        scope: str(1024).optional(),
      }),
    ],
    {
      error: (issue) =>
        issue.code === 'invalid_union'
          ? 'must be "bearer" or "client_credentials"'
          : 'must be a JSON object',
    },
  )
  return z
    .strictObject(
      {
        issuer: url(check)
          .refine(
            (issuer) => !issuer.includes('?') && !issuer.includes('#'),
            'must not have a query or fragment',
          )
          .openapi({
            format: 'uri',
            description: "The upstream transmitter's issuer; its metadata is discovered from it.",
          }),
        delivery: z.enum(['push', 'poll'], { error: 'must be "push" or "poll"' }).openapi({
          description: 'push: the upstream pushes to this broker; poll: this broker polls it.',
        }),
        authorization: authorization.openapi({
          description: "How this broker authenticates to the upstream's stream management API.",
        }),
        events_requested: z
          .array(z.string().min(1).max(512), { error: 'must be an array of event-type URIs' })
          .max(100, 'must be an array of event-type URIs')
          .transform((types) => [...new Set(types)])
          .optional(),
        description: str(1024).optional(),
      },
      { error: 'request body must be a JSON object' },
    )
    .openapi('UpstreamRegistration')
}

const UPSTREAM_ID = 'u_4e2a9c7b1d3f'
const REGISTRATION_EXAMPLE = {
  issuer: 'https://idp.example',
  delivery: 'push',
  authorization: { type: 'bearer', token: 'mgmt-token' },
  events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
}

const UPSTREAM_EXAMPLE = {
  upstream_id: UPSTREAM_ID,
  issuer: 'https://idp.example',
  delivery: 'push',
  stream_id: 'f00d',
  aud: 'https://broker.example',
  authorization: { type: 'bearer' },
  status: 'enabled',
  events_received: 12,
  last_event_at: 1767225600,
  last_error: null,
  created_at: 1767225600000,
  endpoint_url: `https://broker.example/ssf/inbound/${UPSTREAM_ID}`,
}

const Upstream = z
  .looseObject({
    upstream_id: z.string(),
    issuer: z.string().openapi({ format: 'uri' }),
    delivery: z.enum(['push', 'poll']),
    stream_id: z.string().openapi({ description: "The stream's id at the upstream." }),
    aud: z.union([z.string(), z.array(z.string())]),
    events_requested: z.array(z.string()).optional(),
    events_delivered: z.array(z.string()).optional(),
    description: z.string().optional(),
    authorization: z.object({
      type: z.enum(['bearer', 'client_credentials']),
      token_endpoint: z.string().optional(),
      client_id: z.string().optional(),
      scope: z.string().optional(),
    }),
    status: z.enum(['enabled', 'paused', 'disabled']),
    reason: z.string().optional(),
    events_received: z.number().int(),
    last_event_at: z.number().int().nullable().openapi({ description: 'Seconds since the epoch.' }),
    last_error: z.string().nullable(),
    last_error_at: z.number().int().optional(),
    verified_at: z
      .number()
      .int()
      .optional()
      .openapi({ description: 'When the last verification event from the upstream arrived.' }),
    created_at: z.number().int().openapi({ description: 'Milliseconds since the epoch.' }),
    endpoint_url: z
      .string()
      .optional()
      .openapi({ description: "Push: this broker's endpoint the upstream pushes to." }),
    poller: z
      .string()
      .nullable()
      .optional()
      .openapi({ description: 'Poll: the broker process holding the poll lease.' }),
  })
  .openapi('Upstream', {
    description:
      'An upstream SSF transmitter this broker subscribes to. Secrets are never returned.',
    example: UPSTREAM_EXAMPLE,
  })

const UpstreamParams = z.object({
  upstream_id: z.string().openapi({ description: 'The upstream id.', example: UPSTREAM_ID }),
})
const TAG = 'Upstreams'

export function upstreamRoutes(deps: UpstreamRouteDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const admin = requireRole(deps.clients, deps.admin, 'admin')
  const registration = registrationSchema(deps.service?.outbound.check ?? (() => undefined))
  app.use('/admin/upstreams', noStore)
  app.use('/admin/upstreams/*', noStore)
  const wire = async (id: string) => {
    const record = await deps.service.store.get(id)
    if (!record) return undefined
    const stats = await deps.service.store.stats(id)
    const extra: Record<string, unknown> = {}
    if (record.delivery === 'push') extra.endpoint_url = deps.service.inboundUrl(id)
    else extra.poller = (await deps.leases.holderOf(id)) ?? null
    return toWire(record, stats, extra)
  }

  operation(
    app,
    {
      method: 'post',
      path: '/admin/upstreams',
      operationId: 'registerUpstream',
      tag: TAG,
      summary:
        'Register an upstream transmitter: discover it, create a stream there (push to this broker, or poll)',
      auth: admin,
      body: { schema: registration, maxBytes: MAX_BODY, example: REGISTRATION_EXAMPLE },
      responses: { 201: { description: 'Registered', schema: Upstream } },
      errors: [400, 401, 403, 413, 415, 502, 503],
    },
    async (c, { body }) => {
      const input: RegisterInput = {
        issuer: body.issuer,
        delivery: body.delivery,
        authorization: body.authorization,
        ...(body.events_requested !== undefined ? { events_requested: body.events_requested } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
      }
      let record
      try {
        record = await deps.service.register(input)
      } catch (error) {
        if (error instanceof UpstreamRegistrationError)
          throw new BrokerError(
            error.kind === 'invalid' ? 'invalid_upstream' : 'upstream_unavailable',
            error.message,
          )
        throw error
      }
      return c.json(await wire(record.upstream_id), 201)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/upstreams',
      operationId: 'listUpstreams',
      tag: TAG,
      summary: 'List upstream transmitters',
      auth: admin,
      responses: {
        200: {
          description: 'Upstreams',
          schema: z.object({ upstreams: z.array(Upstream) }),
          example: { upstreams: [UPSTREAM_EXAMPLE] },
        },
      },
      errors: [401, 403, 503],
    },
    async (c) => {
      const records = await deps.service.store.list()
      const upstreams = (await Promise.all(records.map((r) => wire(r.upstream_id)))).filter(
        (u) => u !== undefined,
      )
      return c.json({ upstreams })
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/admin/upstreams/{upstream_id}',
      operationId: 'readUpstream',
      tag: TAG,
      summary: 'Read an upstream: status, events_received, last_event_at, last_error',
      auth: admin,
      params: UpstreamParams,
      load: async (_c, { params }) =>
        (await wire(params.upstream_id)) ?? Promise.reject(notFound('upstream not found')),
      responses: { 200: { description: 'Upstream', schema: Upstream } },
      errors: [401, 403, 404, 503],
    },
    async (c, _input, upstream) => c.json(upstream),
  )

  operation(
    app,
    {
      method: 'delete',
      path: '/admin/upstreams/{upstream_id}',
      operationId: 'deleteUpstream',
      tag: TAG,
      summary: 'Delete an upstream and its stream at the upstream',
      auth: admin,
      params: UpstreamParams,
      query: z.object({
        force: z
          .enum(['true', 'false'], { error: 'must be true or false' })
          .optional()
          .openapi({ description: 'Delete here even if the upstream cannot delete its stream.' }),
      }),
      responses: { 204: { description: 'Deleted' } },
      errors: [400, 401, 403, 404, 502, 503],
    },
    async (c, { params, query }) => {
      let outcome
      try {
        outcome = await deps.service.remove(params.upstream_id, query.force === 'true')
      } catch (error) {
        if (error instanceof UpstreamRegistrationError)
          throw new BrokerError(
            'upstream_unavailable',
            `${error.message} (the upstream is kept; retry, or delete with ?force=true)`,
          )
        throw error
      }
      if (outcome === 'not_found') throw notFound('upstream not found')
      return c.body(null, 204)
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: `${INBOUND_PATH}/{upstream_id}`,
      operationId: 'receiveUpstreamSet',
      tag: TAG,
      summary:
        "RFC 8935 push endpoint for an upstream transmitter's SETs (authenticated by the authorization_header this broker gave it)",
      description: 'Errors take the RFC 8935 §2.3 shape `{"err", "description"}`.',
      params: UpstreamParams,
      rawBody: {
        contentType: 'application/secevent+jwt',
        description: 'One SET, compact JWS.',
        example: 'eyJhbGciOiJSUzI1NiIsInR5cCI6InNlY2V2ZW50K2p3dCJ9.eyJqdGkiOiI0ZDM1In0.c2ln',
      },
      responses: {
        202: {
          description:
            'Verified, and its event is durable in this broker (or it was received before)',
        },
        400: {
          description: 'Refused (RFC 8935 §2.4 error codes)',
          schema: Rfc8935Error,
          example: {
            err: 'authentication_failed',
            description:
              'the Authorization header is missing or not the one configured for this stream',
          },
        },
        413: {
          description: 'SET too large',
          schema: Rfc8935Error,
          example: { err: 'invalid_request', description: 'the SET is too large' },
        },
        503: {
          description: 'Temporarily unable to store or verify it; retry',
          schema: Rfc8935Error,
          example: {
            err: 'temporarily_unavailable',
            description: 'the receiver cannot process SETs right now',
          },
          headers: {
            'Retry-After': {
              description: 'Seconds to wait before retrying.',
              schema: { type: 'integer' },
            },
          },
        },
      },
      errors: [],
    },
    async (c, { params }) => {
      // A 503 answered for this request (request deadline, Redis unavailable) takes the RFC 8935 shape too.
      c.set(RFC8935_ERRORS as never, true as never)
      let runtime
      try {
        runtime = await deps.service.runtime(params.upstream_id)
      } catch {
        // The registry did not answer: not acknowledged, so the upstream retries (RFC 8935 §2.4 shape).
        return c.json(
          {
            err: 'temporarily_unavailable',
            description: 'the receiver cannot process SETs right now',
          },
          503,
          { 'retry-after': '2', 'cache-control': 'no-store' },
        )
      }
      if (!runtime?.push) {
        // Indistinguishable from a wrong Authorization: no probing for upstream ids.
        return c.json(
          {
            err: 'authentication_failed',
            description:
              'the Authorization header is missing or not the one configured for this stream',
          },
          400,
          { 'cache-control': 'no-store', 'content-language': 'en' },
        )
      }
      return runtime.push(c.req.raw)
    },
  )

  return app
}

const Rfc8935Error = z
  .object({ err: z.string(), description: z.string() })
  .openapi('SetDeliveryError', { description: 'RFC 8935 §2.3 error.' })

async function noStore(
  c: { header(name: string, value: string): void },
  next: () => Promise<void>,
): Promise<void> {
  await next()
  c.header('Cache-Control', 'no-store')
}
