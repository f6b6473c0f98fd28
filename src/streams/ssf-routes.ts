/**
 * The rest of the SSF receiver-facing endpoints: add/remove subject (SSF §8.1.3.2–3), trigger
 * verification (SSF §8.1.4.2) and the per-stream poll endpoint (RFC 8936).
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import type { AuthEnv } from '../auth/middleware.js'
import type { OAuthVerifier } from '../auth/oauth.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { notFound } from '../http/errors.js'
import { BrokerError } from '../errors.js'
import { suspendRequestDeadline } from '../http/deadline.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import type { PollRequest, PollService } from '../delivery/poll.js'
import { MAX_EVENTS_CAP } from '../delivery/poll.js'
import type { ControlEvents } from './control-events.js'
import type { StreamStore } from './store.js'
import { streamAccess } from './access.js'
import {
  AddSubjectRequest,
  EXAMPLES,
  RemoveSubjectRequest,
  SUBJECT_EXAMPLE,
  VerificationRequest,
} from './schemas.js'
import { POLL_METHOD } from './model.js'
import { POLL_PATH } from './routes.js'

const MAX_BODY = 64 * 1024
const MAX_POLL_BODY = 1024 * 1024

export const ADD_SUBJECT_PATH = '/ssf/subjects/add'
export const REMOVE_SUBJECT_PATH = '/ssf/subjects/remove'
export const VERIFICATION_PATH = '/ssf/verify'

export interface SsfDeps {
  /** Accepts OAuth access tokens too, when an authorization server is configured. */
  oauth?: OAuthVerifier
  redis: Redis
  keyspace: Keyspace
  streams: StreamStore
  subjects: SubjectIndex
  poll: PollService
  control: ControlEvents
  clients: ClientRegistry
  admin: BootstrapAdmin
  minVerificationIntervalSeconds: number
}

/**
 * RFC 8936 §2.1 request members, validated as hostile input. Members it does not define are ignored, as
 * RFC 8936 asks nothing else (clients send their own, e.g. `timeoutSecs`).
 */
export const PollRequestSchema = z
  .looseObject(
    {
      maxEvents: z
        .number({ error: 'must be a non-negative integer' })
        .int('must be a non-negative integer')
        .min(0, 'must be a non-negative integer')
        .transform((n) => Math.min(n, MAX_EVENTS_CAP))
        .optional()
        .openapi({
          description: `Most SETs to return (capped at ${MAX_EVENTS_CAP}); 0 only acknowledges.`,
          example: 100,
        }),
      returnImmediately: z
        .boolean({ error: 'must be a boolean' })
        .optional()
        .openapi({ description: 'Answer at once even when no SET is available (no long poll).' }),
      ack: z
        .array(z.string({ error: 'must be an array of jti strings (at most 10000)' }), {
          error: 'must be an array of jti strings (at most 10000)',
        })
        .max(10_000, 'must be an array of jti strings (at most 10000)')
        .optional()
        .openapi({ description: 'jti of SETs processed since the last poll.' }),
      setErrs: z
        .record(
          z.string(),
          z
            .object(
              { err: z.string(), description: z.string().optional() },
              { error: 'must be {"err": string, "description"?: string}' },
            )
            .transform((e) => ({
              err: e.err.slice(0, 64),
              ...(e.description !== undefined ? { description: e.description.slice(0, 512) } : {}),
            })),
          { error: 'must be an object keyed by jti' },
        )
        .optional()
        .openapi({ description: 'SETs the receiver refused, keyed by jti (RFC 8936 §2.4).' }),
    },
    { error: 'request body must be a JSON object' },
  )
  .transform((body): PollRequest => ({
    ...(body.maxEvents !== undefined ? { maxEvents: body.maxEvents } : {}),
    ...(body.returnImmediately !== undefined ? { returnImmediately: body.returnImmediately } : {}),
    ...(body.ack !== undefined ? { ack: body.ack } : {}),
    ...(body.setErrs !== undefined ? { setErrs: body.setErrs } : {}),
  }))
  .openapi('PollRequest', { description: 'RFC 8936 §2.1. Members not defined there are ignored.' })

const PollResponseSchema = z
  .object({
    sets: z
      .record(z.string(), z.string().openapi({ description: 'A compact SET.' }))
      .openapi({ description: 'SETs keyed by jti.' }),
    moreAvailable: z.boolean().optional(),
  })
  .openapi('PollResponse', {
    example: {
      sets: {
        '4d3559ec67504aaba65d40b0363faad8':
          'eyJhbGciOiJSUzI1NiIsInR5cCI6InNlY2V2ZW50K2p3dCJ9.eyJqdGkiOiI0ZDM1In0.c2ln',
      },
      moreAvailable: true,
    },
  })

const TAG = 'Streams'
const ERRORS = [400, 401, 403, 404, 413, 415, 503] as const

export function ssfRoutes(deps: SsfDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const { auth, ownStream } = streamAccess(deps.streams, deps.clients, deps.admin, deps.oauth)

  operation(
    app,
    {
      method: 'post',
      path: ADD_SUBJECT_PATH,
      operationId: 'addSubject',
      tag: TAG,
      summary: 'Add a subject to a stream (SSF §8.1.3.2)',
      auth,
      body: { schema: AddSubjectRequest, maxBytes: MAX_BODY, example: SUBJECT_EXAMPLE },
      load: (c, { body }) => ownStream(c, body.stream_id),
      responses: { 200: { description: 'Added (empty body)' } },
      errors: ERRORS,
    },
    async (c, { body }, stream) => {
      // ALL streams keep exclusions: adding re-includes. NONE streams keep inclusions.
      if (stream.default_subjects === 'ALL')
        await deps.subjects.remove(stream.stream_id, body.subject)
      else await deps.subjects.add(stream.stream_id, body.subject)
      return c.body(null, 200)
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: REMOVE_SUBJECT_PATH,
      operationId: 'removeSubject',
      tag: TAG,
      summary: 'Remove a subject from a stream (SSF §8.1.3.3)',
      description:
        'Unknown subjects are removed "successfully" too, so the answer reveals nothing (SSF §9).',
      auth,
      body: { schema: RemoveSubjectRequest, maxBytes: MAX_BODY, example: SUBJECT_EXAMPLE },
      load: (c, { body }) => ownStream(c, body.stream_id),
      responses: { 204: { description: 'Removed' } },
      errors: ERRORS,
    },
    async (c, { body }, stream) => {
      if (stream.default_subjects === 'ALL') await deps.subjects.add(stream.stream_id, body.subject)
      else await deps.subjects.remove(stream.stream_id, body.subject)
      return c.body(null, 204)
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: VERIFICATION_PATH,
      operationId: 'requestVerification',
      tag: TAG,
      summary: 'Trigger a verification event (SSF §8.1.4.2)',
      auth,
      body: {
        schema: VerificationRequest,
        maxBytes: MAX_BODY,
        example: { stream_id: EXAMPLES.streamId, state: 'check-1' },
      },
      load: (c, { body }) => ownStream(c, body.stream_id),
      responses: { 204: { description: 'Verification event queued ahead of any backlog' } },
      errors: [...ERRORS, 429],
    },
    async (c, { body }, stream) => {
      const interval = deps.minVerificationIntervalSeconds
      if (interval > 0) {
        const fresh = await deps.redis.set(
          deps.keyspace.stream(stream.stream_id).verifyLast,
          '1',
          'PX',
          interval * 1000,
          'NX',
        )
        if (fresh === null) {
          const wait = Math.max(
            1,
            Math.ceil(
              (await deps.redis.pttl(deps.keyspace.stream(stream.stream_id).verifyLast)) / 1000,
            ),
          )
          throw new BrokerError(
            'too_many_requests',
            `verification may be requested once every ${interval} s (min_verification_interval)`,
            { retryAfterSeconds: wait },
          )
        }
      }
      await deps.control.verification(stream, body.state)
      return c.body(null, 204)
    },
  )

  operation(
    app,
    {
      method: 'post',
      path: `${POLL_PATH}/{stream_id}`,
      operationId: 'poll',
      tag: TAG,
      summary: 'Poll for SETs (RFC 8936)',
      description:
        'Acknowledges `ack`, records `setErrs`, then returns the oldest SETs not out with another poll; with none available and `returnImmediately` not true, waits until one is queued or SSF_BROKER_POLL_MAX_WAIT_SECONDS (default 25) pass.',
      auth,
      params: z.object({
        stream_id: z
          .string()
          .openapi({ description: 'The stream id.', example: EXAMPLES.streamId }),
      }),
      body: {
        schema: PollRequestSchema,
        maxBytes: MAX_POLL_BODY,
        example: {
          maxEvents: 100,
          returnImmediately: false,
          ack: ['4d3559ec67504aaba65d40b0363faad8'],
        },
      },
      load: async (c, { params }) => {
        const stream = await ownStream(c, params.stream_id)
        if (stream.delivery.method !== POLL_METHOD)
          throw notFound('this stream does not use poll delivery')
        return stream
      },
      responses: { 200: { description: 'SETs keyed by jti', schema: PollResponseSchema } },
      errors: ERRORS,
    },
    async (c, { body }, stream) => {
      // A long poll waits up to the poll's maximum wait; each Redis command it sends keeps its own timeout.
      if (body.returnImmediately !== true) suspendRequestDeadline(c)
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.poll.poll(stream, body, c.req.raw.signal), 200)
    },
  )

  return app
}
