/**
 * Stream create / update / replace bodies (SSF §8.1.1.1, §8.1.1.3, §8.1.1.4).
 *
 * Receiver-supplied members: `events_requested`, `delivery`, `description`. Transmitter-supplied
 * members (`iss`, `aud`, `events_supported`, `events_delivered`, `min_verification_interval`,
 * `inactivity_timeout`) may appear in PATCH and PUT but must equal the current values (400 otherwise);
 * `events_delivered` is compared with the value before the update. Anything else is an unknown member.
 */
import { checkPushUrl } from '../delivery/address-guard.js'
import { BrokerError } from '../errors.js'
import { unsafeText } from '../lib/safe-text.js'
import { POLL_METHOD, PUSH_METHOD, type PushDelivery } from './model.js'

/** A requested delivery: push as given, or poll (whose endpoint_url the transmitter mints). */
export type RequestedDelivery =
  PushDelivery | { method: typeof POLL_METHOD; endpoint_url?: string | undefined }

export const RECEIVER_MEMBERS = ['events_requested', 'delivery', 'description'] as const
export const TRANSMITTER_MEMBERS = [
  'iss',
  'aud',
  'events_supported',
  'events_delivered',
  'min_verification_interval',
  'inactivity_timeout',
] as const
const MAX_DESCRIPTION = 1024
const MAX_AUTHORIZATION = 4096

export interface ReceiverFields {
  events_requested?: string[]
  delivery?: RequestedDelivery
  description?: string
}

function parseEventsRequested(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new BrokerError(
      'invalid_request',
      'events_requested: must be an array of event-type URIs',
    )
  if (value.length > 200)
    throw new BrokerError('invalid_request', 'events_requested: at most 200 entries')
  return [...new Set(value as string[])]
}

function parseDelivery(value: unknown, allowPrivate: boolean): RequestedDelivery {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BrokerError('invalid_request', 'delivery: must be an object')
  const d = value as Record<string, unknown>
  for (const key of Object.keys(d)) {
    if (!['method', 'endpoint_url', 'authorization_header'].includes(key))
      throw new BrokerError('invalid_request', `delivery.${key}: unknown member`)
  }
  for (const [key, member] of Object.entries(d))
    if (member === null)
      throw new BrokerError(
        'invalid_request',
        `delivery.${key}: must not be null; leave an optional member out instead`,
      )
  if (d.method === POLL_METHOD) {
    if (d.authorization_header !== undefined)
      throw new BrokerError(
        'invalid_request',
        'delivery.authorization_header: only for push delivery',
      )
    if (d.endpoint_url !== undefined && typeof d.endpoint_url !== 'string')
      throw new BrokerError('invalid_request', 'delivery.endpoint_url: must be a string')
    // The poll URL is transmitter-supplied: the caller checks an echoed one against the current value.
    return d.endpoint_url === undefined
      ? { method: POLL_METHOD }
      : { method: POLL_METHOD, endpoint_url: d.endpoint_url }
  }
  if (d.method !== PUSH_METHOD)
    throw new BrokerError(
      'invalid_request',
      `delivery.method: unsupported delivery method; supported: ${PUSH_METHOD}, ${POLL_METHOD}`,
    )
  if (typeof d.endpoint_url !== 'string')
    throw new BrokerError('invalid_request', 'delivery.endpoint_url: required for push delivery')
  const urlProblem = checkPushUrl(d.endpoint_url, allowPrivate)
  if (urlProblem) throw new BrokerError('invalid_request', `delivery.endpoint_url: ${urlProblem}`)
  const delivery: PushDelivery = { method: PUSH_METHOD, endpoint_url: d.endpoint_url }
  if (d.authorization_header !== undefined) {
    const auth = d.authorization_header
    // Sent verbatim as an HTTP header: printable ASCII only, so it cannot inject other headers.
    if (
      typeof auth !== 'string' ||
      auth.length === 0 ||
      auth.length > MAX_AUTHORIZATION ||
      !/^[\x20-\x7e]+$/.test(auth)
    ) {
      throw new BrokerError(
        'invalid_request',
        `delivery.authorization_header: must be a non-empty printable ASCII string of at most ${MAX_AUTHORIZATION} characters`,
      )
    }
    delivery.authorization_header = auth
  }
  return delivery
}

/** Parses the receiver-supplied members present in `body`. */
export function parseReceiverFields(
  body: Record<string, unknown>,
  allowPrivate: boolean,
): ReceiverFields {
  const fields: ReceiverFields = {}
  if (body.events_requested !== undefined)
    fields.events_requested = parseEventsRequested(body.events_requested)
  if (body.delivery !== undefined) fields.delivery = parseDelivery(body.delivery, allowPrivate)
  if (body.description !== undefined) {
    if (typeof body.description !== 'string' || body.description.length > MAX_DESCRIPTION)
      throw new BrokerError(
        'invalid_request',
        `description: must be a string of at most ${MAX_DESCRIPTION} characters`,
      )
    const problem = unsafeText(body.description)
    if (problem) throw new BrokerError('invalid_request', `description: ${problem}`)
    fields.description = body.description
  }
  return fields
}

export function rejectUnknownStreamMembers(
  body: Record<string, unknown>,
  extra: readonly string[],
): void {
  const allowed = new Set<string>([...RECEIVER_MEMBERS, ...extra])
  for (const key of Object.keys(body))
    if (!allowed.has(key)) throw new BrokerError('invalid_request', `${key}: unknown member`)
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v) => b.includes(v))
  return JSON.stringify(a) === JSON.stringify(b)
}

/** 400 if a transmitter-supplied member is present with a value other than the current one. */
export function checkTransmitterMembers(
  body: Record<string, unknown>,
  current: Record<string, unknown>,
): void {
  for (const name of TRANSMITTER_MEMBERS) {
    if (body[name] === undefined) continue
    if (!sameValue(body[name], current[name]))
      throw new BrokerError(
        'invalid_request',
        `${name}: is set by the transmitter and must equal its current value`,
      )
  }
}

/**
 * The event types a stream may receive: the standard ones, plus request-only types (the broker's agent
 * events) when the stream asked for them.
 */
export function eventsSupportedFor(
  requested: readonly string[] | undefined,
  standard: readonly string[],
  requestOnly: readonly string[],
): string[] {
  return [...standard, ...requestOnly.filter((uri) => requested?.includes(uri))]
}

/** events_delivered = events_requested ∩ supported; unknown URIs are ignored (SSF §8.1.1). */
export function eventsDelivered(
  requested: readonly string[] | undefined,
  standard: readonly string[],
  requestOnly: readonly string[] = [],
): string[] {
  // [judgement] A receiver that requests nothing in particular gets every standard type, the most useful
  // reading of an absent events_requested; an explicit [] gets none.
  if (requested === undefined) return [...standard]
  return eventsSupportedFor(requested, standard, requestOnly).filter((uri) =>
    requested.includes(uri),
  )
}
