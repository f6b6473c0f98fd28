/**
 * The SSF stream configuration (SSF §8.1.1) as stored, and its wire form. Status is a separate resource
 * (SSF §8.1.2) but is kept in the same record, plus a plain status key the delivery scripts read.
 */
export const PUSH_METHOD = 'urn:ietf:rfc:8935'
export const POLL_METHOD = 'urn:ietf:rfc:8936'

export type StreamStatus = 'enabled' | 'paused' | 'disabled'
export const STREAM_STATUSES: readonly StreamStatus[] = ['enabled', 'paused', 'disabled']

export interface PushDelivery {
  method: typeof PUSH_METHOD
  endpoint_url: string
  authorization_header?: string | undefined
}

/** RFC 8936: the transmitter mints the per-stream poll URL. */
export interface PollDelivery {
  method: typeof POLL_METHOD
  endpoint_url: string
}

export type Delivery = PushDelivery | PollDelivery
export type DefaultSubjects = 'ALL' | 'NONE'

export interface StreamRecord {
  stream_id: string
  /** Owning receiver client: the only principal that can see this stream. */
  client_id: string
  aud: string
  signing_alg: 'RS256' | 'ES256' | 'EdDSA'
  events_requested?: string[]
  events_delivered: string[]
  delivery: Delivery
  /** ALL: every subject unless removed; NONE: only subjects added (SSF §7.1 default_subjects). */
  default_subjects: DefaultSubjects
  description?: string
  status: StreamStatus
  reason?: string
  created_at: number
  updated_at: number
}

export const isPush = (stream: StreamRecord) => stream.delivery.method === PUSH_METHOD

export interface StreamPolicy {
  minVerificationInterval: number
  /** Seconds; 0 means streams never time out (then not advertised). */
  inactivityTimeout: number
}

/** The configuration object SSF receivers see (never the owner or internal fields). */
export function toWire(
  stream: StreamRecord,
  iss: string,
  eventsSupported: readonly string[],
  policy: StreamPolicy,
): Record<string, unknown> {
  return {
    stream_id: stream.stream_id,
    iss,
    aud: stream.aud,
    events_supported: eventsSupported,
    ...(stream.events_requested !== undefined ? { events_requested: stream.events_requested } : {}),
    events_delivered: stream.events_delivered,
    delivery: stream.delivery,
    ...(stream.description !== undefined ? { description: stream.description } : {}),
    min_verification_interval: policy.minVerificationInterval,
    ...(policy.inactivityTimeout > 0 ? { inactivity_timeout: policy.inactivityTimeout } : {}),
  }
}

export function statusWire(stream: StreamRecord): {
  stream_id: string
  status: StreamStatus
  reason?: string
} {
  return {
    stream_id: stream.stream_id,
    status: stream.status,
    ...(stream.reason !== undefined ? { reason: stream.reason } : {}),
  }
}
