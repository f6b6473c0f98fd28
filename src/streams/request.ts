/**
 * Stream create / update / replace bodies (SSF §8.1.1.1, §8.1.1.3, §8.1.1.4), beyond their shape (which
 * `schemas.ts` checks).
 *
 * Receiver-supplied members: `events_requested`, `delivery`, `description`. Transmitter-supplied
 * members (`iss`, `aud`, `events_supported`, `events_delivered`, `min_verification_interval`,
 * `inactivity_timeout`) may appear in PATCH and PUT but must equal the current values (400 otherwise);
 * `events_delivered` is compared with the value before the update. Anything else is an unknown member.
 */
import { BrokerError } from '../errors.js'
import type { POLL_METHOD, PushDelivery } from './model.js'

/** A requested delivery: push as given, or poll (whose endpoint_url the transmitter mints). */
export type RequestedDelivery =
  PushDelivery | { method: typeof POLL_METHOD; endpoint_url?: string | undefined }

export const TRANSMITTER_MEMBERS = [
  'iss',
  'aud',
  'events_supported',
  'events_delivered',
  'min_verification_interval',
  'inactivity_timeout',
] as const

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
