/**
 * Receiver SDK errors. Two families, never mixed (style principle 4):
 *
 * - Misuse of the SDK (a bad option, an impossible call) throws `TypeError` when the object is built.
 * - Problems with what a transmitter sent, or with talking to it, throw {@link ReceiverError} with a
 *   stable `code`. When the problem is with a SET, `setErr` is the RFC 8935 §2.4 / SSF §11 error code a
 *   receiver answers with (push: `400 {err, description}`; poll: `setErrs`, RFC 8936 §2.4.4).
 *
 * @module
 */

/** RFC 8935 §2.4 "Security Event Token Error Codes", plus `invalid_state` (SSF §8.1.4.1). */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied'
  | 'invalid_state'

/** Every code a {@link ReceiverError} can carry. Codes are stable; new ones may be added. */
export type ReceiverErrorCode =
  // The SET itself (RFC 8417, SSF §4.1 profile).
  | 'ERR_SET_MALFORMED'
  | 'ERR_SET_ENCRYPTED'
  | 'ERR_SET_UNSECURED'
  | 'ERR_SET_ALG_NOT_ALLOWED'
  | 'ERR_SET_TYP_MISSING'
  | 'ERR_SET_TYP_INVALID'
  | 'ERR_SET_CRIT_UNSUPPORTED'
  | 'ERR_SET_KEY_NOT_FOUND'
  | 'ERR_SET_KEY_INVALID'
  | 'ERR_SET_SIGNATURE_INVALID'
  | 'ERR_SET_ISSUER_INVALID'
  | 'ERR_SET_AUDIENCE_INVALID'
  | 'ERR_SET_IAT_INVALID'
  | 'ERR_SET_IAT_IN_FUTURE'
  | 'ERR_SET_TOO_OLD'
  | 'ERR_SET_JTI_INVALID'
  | 'ERR_SET_SUB_PRESENT'
  | 'ERR_SET_EXP_PRESENT'
  | 'ERR_SET_EVENTS_INVALID'
  | 'ERR_SET_MULTIPLE_EVENTS'
  | 'ERR_SET_SUBJECT_INVALID'
  | 'ERR_SET_SUBJECT_UNSUPPORTED'
  | 'ERR_SET_CLAIM_INVALID'
  | 'ERR_SET_REPLAYED'
  | 'ERR_SET_ACCESS_DENIED'
  | 'ERR_SET_INVALID_STATE'
  | 'ERR_SET_PROCESSING_FAILED'
  // Push requests (RFC 8935 §2).
  | 'ERR_PUSH_AUTHENTICATION_FAILED'
  | 'ERR_PUSH_MEDIA_TYPE'
  | 'ERR_PUSH_BODY_TOO_LARGE'
  // Talking to the transmitter (SSF §7.2 discovery, JWKS, §8 management, RFC 8936 poll).
  | 'ERR_DISCOVERY_FAILED'
  | 'ERR_DISCOVERY_ISSUER_MISMATCH'
  | 'ERR_DISCOVERY_INVALID'
  | 'ERR_JWKS_UNAVAILABLE'
  | 'ERR_ENDPOINT_UNSUPPORTED'
  | 'ERR_TRANSMITTER_UNREACHABLE'
  | 'ERR_TRANSMITTER_HTTP'
  | 'ERR_TRANSMITTER_RESPONSE_INVALID'
  | 'ERR_VERIFICATION_TIMEOUT'
  // Enforcement and storage.
  | 'ERR_TOKEN_REVOKED'
  | 'ERR_STORE_UNAVAILABLE'

/** The RFC 8935 error code each SET-related code is answered with. */
const SET_ERR: Partial<Record<ReceiverErrorCode, SetErrorCode>> = {
  ERR_SET_MALFORMED: 'invalid_request',
  ERR_SET_ENCRYPTED: 'invalid_request',
  ERR_SET_UNSECURED: 'invalid_key',
  ERR_SET_ALG_NOT_ALLOWED: 'invalid_key',
  ERR_SET_TYP_MISSING: 'invalid_request',
  ERR_SET_TYP_INVALID: 'invalid_request',
  ERR_SET_CRIT_UNSUPPORTED: 'invalid_request',
  ERR_SET_KEY_NOT_FOUND: 'invalid_key',
  ERR_SET_KEY_INVALID: 'invalid_key',
  ERR_SET_SIGNATURE_INVALID: 'invalid_key',
  ERR_SET_ISSUER_INVALID: 'invalid_issuer',
  ERR_SET_AUDIENCE_INVALID: 'invalid_audience',
  ERR_SET_IAT_INVALID: 'invalid_request',
  ERR_SET_IAT_IN_FUTURE: 'invalid_request',
  ERR_SET_TOO_OLD: 'invalid_request',
  ERR_SET_JTI_INVALID: 'invalid_request',
  ERR_SET_SUB_PRESENT: 'invalid_request',
  ERR_SET_EXP_PRESENT: 'invalid_request',
  ERR_SET_EVENTS_INVALID: 'invalid_request',
  ERR_SET_MULTIPLE_EVENTS: 'invalid_request',
  ERR_SET_SUBJECT_INVALID: 'invalid_request',
  ERR_SET_SUBJECT_UNSUPPORTED: 'invalid_request',
  ERR_SET_CLAIM_INVALID: 'invalid_request',
  ERR_SET_REPLAYED: 'invalid_request',
  ERR_SET_ACCESS_DENIED: 'access_denied',
  ERR_SET_INVALID_STATE: 'invalid_state',
  ERR_SET_PROCESSING_FAILED: 'invalid_request',
  ERR_PUSH_AUTHENTICATION_FAILED: 'authentication_failed',
  ERR_PUSH_MEDIA_TYPE: 'invalid_request',
}

/** Options for {@link ReceiverError}. */
export interface ReceiverErrorOptions {
  cause?: unknown
  /** HTTP status the transmitter answered with (transmitter errors only). */
  status?: number
  /** The transmitter's own error code, e.g. `error` of a JSON error body. */
  transmitterError?: string
}

/**
 * An error about a SET, a push request, or the transmitter, with a stable `code`.
 *
 * `message` is safe to send back to the transmitter (it never holds secrets); `cause` is not, and never
 * leaves the process.
 *
 * @example
 * ```ts
 * try {
 *   await receiver.verify(compact)
 * } catch (error) {
 *   if (error instanceof ReceiverError && error.code === 'ERR_SET_REPLAYED') return // duplicate
 *   throw error
 * }
 * ```
 */
export class ReceiverError extends Error {
  readonly code: ReceiverErrorCode
  /** The RFC 8935 `err` code to answer with, when the error is about a SET or a push request. */
  readonly setErr: SetErrorCode | undefined
  readonly status: number | undefined
  readonly transmitterError: string | undefined

  constructor(code: ReceiverErrorCode, message: string, options: ReceiverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.setErr = SET_ERR[code]
    this.status = options.status
    this.transmitterError = options.transmitterError
  }
}

/** True when `error` is a {@link ReceiverError}, optionally with one of `codes`. */
export function isReceiverError(
  error: unknown,
  ...codes: ReceiverErrorCode[]
): error is ReceiverError {
  return error instanceof ReceiverError && (codes.length === 0 || codes.includes(error.code))
}

/** The RFC 8935 error code for a SET-related code (undefined for transmitter or transport errors). */
export function setErrorCodeFor(code: ReceiverErrorCode): SetErrorCode | undefined {
  return SET_ERR[code]
}
