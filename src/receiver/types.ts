/**
 * Wire shapes the receiver SDK reads and writes: SSF §7.1 transmitter metadata, §8.1.1 stream
 * configuration, RFC 9493 / SSF §3 subject identifiers, RFC 8417 SETs after verification, and the
 * access-token claims (RFC 9068, RFC 8693 `act`) the enforcement side checks.
 *
 * @module
 */

/** SSF event-type URIs the SDK itself understands. */
export const SSF_EVENT_TYPES = {
  verification: 'https://schemas.openid.net/secevent/ssf/event-type/verification',
  streamUpdated: 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated',
} as const

/** SSF delivery-method URIs (SSF §6.1). */
export const DELIVERY_METHODS = {
  push: 'urn:ietf:rfc:8935',
  poll: 'urn:ietf:rfc:8936',
} as const

/** A Subject Identifier (RFC 9493 §3, SSF §3): `format` plus that format's members. */
export interface SubjectIdentifier {
  format: string
  [member: string]: unknown
}

/** Transmitter configuration metadata (SSF §7.1). Unknown members are kept. */
export interface TransmitterMetadata {
  spec_version?: string
  issuer: string
  jwks_uri?: string
  delivery_methods_supported?: string[]
  configuration_endpoint?: string
  status_endpoint?: string
  add_subject_endpoint?: string
  remove_subject_endpoint?: string
  verification_endpoint?: string
  critical_subject_members?: string[]
  authorization_schemes?: { spec_urn: string }[]
  default_subjects?: string
  [member: string]: unknown
}

/**
 * A SET that passed every check of `receiver.verify` (SSF §4.1 profile, RFC 8417 §2).
 */
export interface VerifiedSet {
  jti: string
  iss: string
  /** As sent: a string or an array of strings; it contains one of the receiver's audiences. */
  aud: string | string[]
  /** Seconds since the epoch. */
  iat: number
  /** Correlates SETs with one underlying cause (SSF §4.1.9); undefined when absent. */
  txn: string | undefined
  /** The event-type URI: the one key of `events`. */
  type: string
  /** The primary subject: `sub_id`, or the event's own `subject` for legacy CAEP/RISC payloads. */
  subject: SubjectIdentifier
  /** The event object (the value of `events[type]`). */
  event: Record<string, unknown>
  /** The JWS protected header (`alg`, `kid`, `typ`, ...). */
  header: Record<string, unknown>
  /** Every claim of the SET. */
  claims: Record<string, unknown>
}

/** A push or poll delivery in a stream configuration (SSF §6.1). */
export interface StreamDelivery {
  method: string
  endpoint_url?: string
  authorization_header?: string
  [member: string]: unknown
}

/** The stream configuration object (SSF §8.1.1). */
export interface StreamConfiguration {
  stream_id: string
  iss: string
  aud: string | string[]
  events_supported?: string[]
  events_requested?: string[]
  events_delivered: string[]
  delivery: StreamDelivery
  description?: string
  min_verification_interval?: number
  inactivity_timeout?: number
  [member: string]: unknown
}

/** Receiver-supplied members of a create, update or replace request (SSF §8.1.1.1, .3, .4). */
export interface StreamRequest {
  events_requested?: string[]
  delivery?: StreamDelivery
  description?: string
}

/** Stream status (SSF §8.1.2). */
export type StreamStatus = 'enabled' | 'paused' | 'disabled'

/** An actor in an RFC 8693 §4.1 `act` chain: the outermost is the current actor. */
export interface ActorClaim {
  sub?: string
  iss?: string
  client_id?: string
  act?: ActorClaim
  [claim: string]: unknown
}

/**
 * The claims of an access token (already verified by the application's own verifier) that the
 * revocation index checks: `sub`, `sid`, `client_id` / `azp`, `jti`, `email`, the `act` chain, and
 * `iat` for the "issued at or before the revocation" rule.
 */
export interface TokenClaims {
  iss?: string
  sub?: string
  sid?: string
  client_id?: string
  azp?: string
  jti?: string
  email?: string
  iat?: number
  act?: ActorClaim
  [claim: string]: unknown
}

/** A value, or a function giving it (e.g. an OAuth access token that is refreshed). */
export type TokenSource = string | (() => string | Promise<string>)
