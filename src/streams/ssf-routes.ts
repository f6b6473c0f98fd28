/**
 * The rest of the SSF receiver-facing endpoints: add/remove subject (SSF §8.1.3.2–3), trigger
 * verification (SSF §8.1.4.2) and the per-stream poll endpoint (RFC 8936).
 */
import { Hono } from 'hono'
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import type { AuthEnv } from '../auth/middleware.js'
import type { OAuthVerifier } from '../auth/oauth.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { asObject, readJsonBody } from '../http/json-body.js'
import { HttpError, badRequest, notFound } from '../http/errors.js'
import { suspendRequestDeadline } from '../http/deadline.js'
import { unsafeText } from '../lib/safe-text.js'
import { parseSubject, type Subject } from '../subjects/subject.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import type { PollRequest, PollService } from '../delivery/poll.js'
import { MAX_EVENTS_CAP } from '../delivery/poll.js'
import type { ControlEvents } from './control-events.js'
import type { StreamStore } from './store.js'
import { streamAccess, streamIdMember } from './access.js'
import { POLL_METHOD } from './model.js'
import { POLL_PATH } from './routes.js'

const MAX_BODY = 64 * 1024
const MAX_POLL_BODY = 1024 * 1024
const MAX_STATE = 1024

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

function subjectMember(body: Record<string, unknown>): Subject {
  if (body.subject === undefined) throw badRequest('subject: required', 'invalid_subject')
  const parsed = parseSubject(body.subject)
  if (!parsed.ok) {
    const first = parsed.issues[0]
    throw badRequest(first ? `${first.path}: ${first.message}` : 'subject: invalid', 'invalid_subject')
  }
  return parsed.subject
}

function only(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) throw badRequest(`${key}: unknown member`)
}

/** RFC 8936 §2.1 request members, validated as hostile input. */
function parsePollRequest(body: Record<string, unknown>): PollRequest {
  only(body, ['maxEvents', 'returnImmediately', 'ack', 'setErrs'])
  const request: PollRequest = {}
  if (body.maxEvents !== undefined) {
    if (!Number.isInteger(body.maxEvents) || (body.maxEvents as number) < 0) throw badRequest('maxEvents: must be a non-negative integer')
    request.maxEvents = Math.min(body.maxEvents as number, MAX_EVENTS_CAP)
  }
  if (body.returnImmediately !== undefined) {
    if (typeof body.returnImmediately !== 'boolean') throw badRequest('returnImmediately: must be a boolean')
    request.returnImmediately = body.returnImmediately
  }
  if (body.ack !== undefined) {
    if (!Array.isArray(body.ack) || body.ack.some((j) => typeof j !== 'string') || body.ack.length > 10_000) throw badRequest('ack: must be an array of jti strings (at most 10000)')
    request.ack = body.ack as string[]
  }
  if (body.setErrs !== undefined) {
    const errs = body.setErrs
    if (typeof errs !== 'object' || errs === null || Array.isArray(errs)) throw badRequest('setErrs: must be an object keyed by jti')
    request.setErrs = {}
    for (const [jti, value] of Object.entries(errs)) {
      const e = value as Record<string, unknown>
      if (typeof e !== 'object' || e === null || typeof e.err !== 'string' || (e.description !== undefined && typeof e.description !== 'string')) {
        throw badRequest(`setErrs.${jti.slice(0, 64)}: must be {"err": string, "description"?: string}`)
      }
      request.setErrs[jti] = { err: e.err.slice(0, 64), ...(typeof e.description === 'string' ? { description: e.description.slice(0, 512) } : {}) }
    }
  }
  return request
}

export function ssfRoutes(deps: SsfDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const { auth, ownStream } = streamAccess(deps.streams, deps.clients, deps.admin, deps.oauth)

  app.post(ADD_SUBJECT_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const stream = await ownStream(c, streamIdMember(body))
    only(body, ['stream_id', 'subject', 'verified'])
    const subject = subjectMember(body)
    if (body.verified !== undefined && typeof body.verified !== 'boolean') throw badRequest('verified: must be a boolean')
    // ALL streams keep exclusions: adding re-includes. NONE streams keep inclusions.
    if (stream.default_subjects === 'ALL') await deps.subjects.remove(stream.stream_id, subject)
    else await deps.subjects.add(stream.stream_id, subject)
    return c.body(null, 200)
  })

  app.post(REMOVE_SUBJECT_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const stream = await ownStream(c, streamIdMember(body))
    only(body, ['stream_id', 'subject'])
    const subject = subjectMember(body)
    // Unknown subjects are removed "successfully" too, so the answer reveals nothing (SSF §9).
    if (stream.default_subjects === 'ALL') await deps.subjects.add(stream.stream_id, subject)
    else await deps.subjects.remove(stream.stream_id, subject)
    return c.body(null, 204)
  })

  app.post(VERIFICATION_PATH, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_BODY))
    const stream = await ownStream(c, streamIdMember(body))
    only(body, ['stream_id', 'state'])
    if (body.state !== undefined && (typeof body.state !== 'string' || body.state.length > MAX_STATE)) throw badRequest(`state: must be a string of at most ${MAX_STATE} characters`)
    const stateProblem = typeof body.state === 'string' ? unsafeText(body.state) : undefined
    if (stateProblem) throw badRequest(`state: ${stateProblem}`)
    const interval = deps.minVerificationIntervalSeconds
    if (interval > 0) {
      const fresh = await deps.redis.set(deps.keyspace.stream(stream.stream_id).verifyLast, '1', 'PX', interval * 1000, 'NX')
      if (fresh === null) {
        const wait = Math.max(1, Math.ceil((await deps.redis.pttl(deps.keyspace.stream(stream.stream_id).verifyLast)) / 1000))
        throw new HttpError(429, 'too_many_requests', `verification may be requested once every ${interval} s (min_verification_interval)`, { 'Retry-After': String(wait) })
      }
    }
    await deps.control.verification(stream, body.state as string | undefined)
    return c.body(null, 204)
  })

  app.post(`${POLL_PATH}/:stream_id`, auth, async (c) => {
    const body = asObject(await readJsonBody(c, MAX_POLL_BODY))
    const stream = await ownStream(c, c.req.param('stream_id'))
    if (stream.delivery.method !== POLL_METHOD) throw notFound('this stream does not use poll delivery')
    const request = parsePollRequest(body)
    // A long poll waits up to the poll's maximum wait; each Redis command it sends keeps its own timeout.
    if (request.returnImmediately !== true) suspendRequestDeadline(c)
    c.header('Cache-Control', 'no-store')
    return c.json(await deps.poll.poll(stream, request, c.req.raw.signal), 200)
  })

  return app
}
