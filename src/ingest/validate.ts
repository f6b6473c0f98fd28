/**
 * Validation of `POST /events` bodies: one event `{type, subject, event?, txn?}` or a batch
 * `{events: [...]}` of up to 1000. All or nothing: one bad event rejects the whole request, naming the
 * event and the member at fault.
 */
import { resolveAnyEventType } from '../agents/cascade-policy.js'
import { canonicalSubject, parseSubject, subjectKey, type Subject } from '../subjects/subject.js'
import { BrokerError } from '../errors.js'
import { unsafeIdentifier } from '../lib/safe-text.js'

export const MAX_BATCH = 1000
const EVENT_MEMBERS = ['type', 'subject', 'event', 'txn'] as const

export interface ValidEvent {
  type: string
  family: 'caep' | 'risc' | 'ssf'
  subject: Subject
  sk: string
  event: Record<string, unknown>
  txn: string | undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function validateOne(input: unknown, where: string): ValidEvent {
  if (!isObject(input))
    throw new BrokerError('invalid_request', `${where || 'body'}: must be a JSON object`)
  const at = (name: string) => (where ? `${where}.${name}` : name)
  for (const key of Object.keys(input)) {
    if (!(EVENT_MEMBERS as readonly string[]).includes(key))
      throw new BrokerError('invalid_request', `${at(key)}: unknown member`)
  }
  for (const [key, value] of Object.entries(input))
    if (value === null)
      throw new BrokerError(
        'invalid_request',
        `${at(key)}: must not be null; leave an optional member out instead`,
      )
  if (typeof input.type !== 'string' || input.type === '')
    throw new BrokerError(
      'invalid_request',
      `${at('type')}: required, an event-type URI or alias such as "caep/session-revoked"`,
    )
  const def = resolveAnyEventType(input.type)
  if (!def)
    throw new BrokerError(
      'invalid_event_type',
      `${at('type')}: unknown event type "${input.type.slice(0, 200)}"`,
    )
  if (!def.ingestible)
    throw new BrokerError(
      'invalid_event_type',
      `${at('type')}: "${def.alias}" is sent by the broker itself and cannot be posted`,
    )
  if (input.subject === undefined)
    throw new BrokerError('invalid_subject', `${at('subject')}: required`)
  const parsed = parseSubject(input.subject)
  if (!parsed.ok) {
    const first = parsed.issues[0]
    throw new BrokerError(
      'invalid_subject',
      `${where ? `${where}.` : ''}${first ? `${first.path}: ${first.message}` : 'subject: invalid'}`,
    )
  }
  const subjectProblem = def.checkSubject?.(parsed.subject)
  if (subjectProblem)
    throw new BrokerError('invalid_subject', `${at('subject')}: ${subjectProblem}`)
  const payload = def.validate(input.event ?? {})
  if (!payload.ok) {
    const first = payload.issues[0]
    throw new BrokerError(
      'invalid_event',
      `${where ? `${where}.` : ''}${first ? `${first.path}: ${first.message}` : 'event: invalid'}`,
    )
  }
  if (
    input.txn !== undefined &&
    (typeof input.txn !== 'string' || input.txn.length === 0 || input.txn.length > 256)
  ) {
    throw new BrokerError(
      'invalid_request',
      `${at('txn')}: must be a non-empty string of at most 256 characters`,
    )
  }
  const txnProblem = typeof input.txn === 'string' ? unsafeIdentifier(input.txn) : undefined
  if (txnProblem) throw new BrokerError('invalid_request', `${at('txn')}: ${txnProblem}`)
  return {
    type: def.uri,
    family: def.family,
    subject: parsed.subject,
    sk: subjectKey(canonicalSubject(parsed.subject)),
    event: payload.value,
    txn: input.txn as string | undefined,
  }
}

/** A body's events as posted (not yet checked) and whether it was a batch. */
export interface PostedEvents {
  inputs: readonly unknown[]
  batch: boolean
}

/** The events of a body, its envelope checked (one event or `{events: [...]}`); throws a BrokerError (400). */
export function postedEvents(body: unknown): PostedEvents {
  if (!isObject(body)) throw new BrokerError('invalid_request', 'body: must be a JSON object')
  if (!('events' in body)) return { inputs: [body], batch: false }
  if (body.events === null)
    throw new BrokerError('invalid_request', 'events: must not be null; an array of events')
  for (const key of Object.keys(body))
    if (key !== 'events')
      throw new BrokerError(
        'invalid_request',
        `${key}: unknown member (a batch body holds only "events")`,
      )
  if (!Array.isArray(body.events))
    throw new BrokerError('invalid_request', 'events: must be an array')
  if (body.events.length === 0)
    throw new BrokerError('invalid_request', 'events: must hold at least one event')
  if (body.events.length > MAX_BATCH)
    throw new BrokerError(
      'invalid_request',
      `events: at most ${MAX_BATCH} events per request, got ${body.events.length}`,
    )
  return { inputs: body.events as unknown[], batch: true }
}

const where = (batch: boolean, i: number) => (batch ? `events[${i}]` : '')

/** Returns the validated events and whether the body was a batch. Throws a BrokerError (400) otherwise. */
export function validateEventsBody(body: unknown): { events: ValidEvent[]; batch: boolean } {
  const { inputs, batch } = postedEvents(body)
  return { events: inputs.map((e, i) => validateOne(e, where(batch, i))), batch }
}

/** Events validated between two turns of the event loop by validateInSlices. */
const SLICE = 100

/**
 * validateEventsBody for the ingest route, on events whose envelope postedEvents checked: a large batch
 * (about 10 µs per event) is validated in slices with a turn of the event loop between them, so it does
 * not hold up other requests and deliveries.
 */
export async function validateInSlices({
  inputs,
  batch,
}: PostedEvents): Promise<{ events: ValidEvent[]; batch: boolean }> {
  const events: ValidEvent[] = []
  for (const [i, input] of inputs.entries()) {
    if (i > 0 && i % SLICE === 0) await new Promise((resolve) => setImmediate(resolve))
    events.push(validateOne(input, where(batch, i)))
  }
  return { events, batch }
}
