/**
 * The broker's one error family. Domain modules throw `BrokerError` with a code from `ERROR_CODES`; the HTTP
 * edge maps it to its status, the JSON body `{"error": code, "error_description": message}`, and any
 * `WWW-Authenticate` / `Retry-After` header, in one place. Narrow by `code`, never by message text.
 *
 * `expose: false` codes never put their message on the wire (a generic text is sent and the detail logged).
 */

interface CodeInfo {
  status: 400 | 401 | 403 | 404 | 405 | 408 | 409 | 413 | 415 | 429 | 431 | 500 | 502 | 503
  expose: boolean
  description: string
}

export const ERROR_CODES = {
  invalid_request: {
    status: 400,
    expose: true,
    description: 'The request is malformed: a member is missing, unknown, or of the wrong type.',
  },
  invalid_json: {
    status: 400,
    expose: true,
    description: 'The body is not valid JSON, or is nested too deeply.',
  },
  invalid_subject: {
    status: 400,
    expose: true,
    description: 'A subject identifier is not a valid RFC 9493 subject of a supported format.',
  },
  invalid_event_type: {
    status: 400,
    expose: true,
    description: 'The event type is unknown, or is sent by the broker itself and cannot be posted.',
  },
  invalid_event: {
    status: 400,
    expose: true,
    description: 'An event is not valid for its event type.',
  },
  invalid_upstream: {
    status: 400,
    expose: true,
    description: 'An upstream transmitter registration is invalid.',
  },
  delegation_cycle: {
    status: 400,
    expose: true,
    description: 'The delegation would form a cycle.',
  },
  delegation_too_deep: {
    status: 400,
    expose: true,
    description: 'The delegation chain would exceed the configured depth.',
  },
  invalid_token: {
    status: 401,
    expose: true,
    description: 'The bearer token is missing, unknown, expired or revoked.',
  },
  invalid_authorization: {
    status: 401,
    expose: true,
    description: 'The Authorization header is malformed.',
  },
  unauthorized: { status: 401, expose: true, description: 'Authentication is required.' },
  access_denied: {
    status: 403,
    expose: true,
    description: 'The caller may not perform this operation.',
  },
  insufficient_scope: {
    status: 403,
    expose: true,
    description: 'The token lacks the scope this operation needs.',
  },
  not_found: {
    status: 404,
    expose: true,
    description: 'No such resource (or it belongs to another receiver).',
  },
  unknown_delegator: {
    status: 404,
    expose: true,
    description: 'The named delegator agent is not registered or not live.',
  },
  method_not_allowed: {
    status: 405,
    expose: true,
    description: 'The method is not allowed on this resource.',
  },
  request_timeout: {
    status: 408,
    expose: true,
    description: 'The request was not received in time.',
  },
  conflict: {
    status: 409,
    expose: true,
    description: 'The resource changed or was removed concurrently.',
  },
  agent_conflict: {
    status: 409,
    expose: true,
    description: 'The agent is registered and live with another delegator.',
  },
  stream_limit_exceeded: {
    status: 409,
    expose: true,
    description: 'The receiver already has as many streams as it may.',
  },
  payload_too_large: { status: 413, expose: true, description: 'The body exceeds the size limit.' },
  unsupported_media_type: {
    status: 415,
    expose: true,
    description: 'The Content-Type is not application/json.',
  },
  too_many_requests: {
    status: 429,
    expose: true,
    description: 'Too many requests; retry after the given time.',
  },
  max_age_exceeded: {
    status: 400,
    expose: true,
    description: 'A token or event is older than allowed.',
  },
  request_header_fields_too_large: {
    status: 431,
    expose: true,
    description: 'The request line or headers are too large.',
  },
  server_error: {
    status: 500,
    expose: false,
    description: 'An unexpected error; details are in the broker log.',
  },
  upstream_unavailable: {
    status: 502,
    expose: true,
    description: 'An upstream transmitter could not be reached.',
  },
  overloaded: {
    status: 503,
    expose: true,
    description:
      'The broker is at capacity; nothing was acknowledged; retry after the given time (Retry-After).',
  },
  temporarily_unavailable: {
    status: 503,
    expose: true,
    description: 'Redis or a dependency is unavailable; nothing was acknowledged; retry later.',
  },
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export interface BrokerErrorOptions {
  /** Seconds the client should wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number
  /** The OAuth scope the request needs (`insufficient_scope`; sent in the `WWW-Authenticate` challenge). */
  scope?: string
  /** The protection space of a 401/403 challenge (`WWW-Authenticate: Bearer realm=...`). */
  realm?: string
  cause?: unknown
}

export class BrokerError extends Error {
  readonly status: CodeInfo['status']
  readonly expose: boolean
  readonly retryAfterSeconds: number | undefined
  readonly scope: string | undefined
  readonly realm: string | undefined

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: BrokerErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'BrokerError'
    const info: CodeInfo = ERROR_CODES[code]
    this.status = info.status
    this.expose = info.expose
    this.retryAfterSeconds = options.retryAfterSeconds
    this.scope = options.scope
    this.realm = options.realm
  }
}

/** Whether `err` is a BrokerError, optionally of one of `codes`. */
export function isBrokerError(err: unknown, ...codes: ErrorCode[]): err is BrokerError {
  return err instanceof BrokerError && (codes.length === 0 || codes.includes(err.code))
}
