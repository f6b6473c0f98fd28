/**
 * The responses every operation shares, one per error status, referenced from each operation's
 * `responses` (`#/components/responses/<Name>`), with the challenge and retry headers they carry.
 */
import { ErrorBody } from './schema.js'
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi'

export const ERROR_RESPONSES = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
} as const

export type ErrorStatus = keyof typeof ERROR_RESPONSES

const RETRY_AFTER = {
  description: 'Seconds to wait before retrying.',
  schema: { type: 'integer' as const, minimum: 0 },
}
const CHALLENGE = {
  description: 'RFC 6750 §3 Bearer challenge.',
  schema: { type: 'string' as const },
}

const DOCS: Record<
  ErrorStatus,
  {
    description: string
    example: { error: string; error_description: string }
    headers?: Record<string, typeof RETRY_AFTER | typeof CHALLENGE>
  }
> = {
  400: {
    description:
      'Invalid request: unparseable body, unknown member, invalid value (`invalid_request`, `invalid_json`, `invalid_subject`, ...).',
    example: { error: 'invalid_request', error_description: 'colour: unknown member' },
  },
  401: {
    description: 'Missing or invalid bearer token (with a WWW-Authenticate challenge).',
    example: { error: 'invalid_token', error_description: 'the bearer token is not valid' },
    headers: { 'WWW-Authenticate': CHALLENGE },
  },
  403: {
    description:
      "The token's client lacks the required role, or an OAuth token lacks the scope (`insufficient_scope`, with a challenge).",
    example: {
      error: 'access_denied',
      error_description: 'this endpoint requires the "receiver" role',
    },
    headers: { 'WWW-Authenticate': CHALLENGE },
  },
  404: {
    description: "Not found (also: another receiver's stream).",
    example: { error: 'not_found', error_description: 'stream "2f1c" not found' },
  },
  409: {
    description:
      'Conflict with the current state (`conflict`, `agent_conflict`, `stream_limit_exceeded`).',
    example: { error: 'conflict', error_description: 'the stream changed concurrently; retry' },
  },
  413: {
    description: 'The body exceeds the size limit.',
    example: { error: 'payload_too_large', error_description: 'request body exceeds 65536 bytes' },
  },
  415: {
    description: 'Content-Type is not application/json.',
    example: {
      error: 'unsupported_media_type',
      error_description: 'Content-Type must be application/json, got "text/plain"',
    },
  },
  429: {
    description: 'Too frequent; see Retry-After.',
    example: {
      error: 'too_many_requests',
      error_description:
        'verification may be requested once every 30 s (min_verification_interval)',
    },
    headers: { 'Retry-After': RETRY_AFTER },
  },
  502: {
    description:
      'An upstream transmitter could not be reached or answered with an error (`upstream_unavailable`).',
    example: { error: 'upstream_unavailable', error_description: 'the upstream did not answer' },
  },
  503: {
    description:
      'Redis (or the authorization server) is unavailable (`temporarily_unavailable`), or the broker is at capacity (`overloaded`, `POST /events`); nothing was acknowledged; retry after Retry-After.',
    example: {
      error: 'temporarily_unavailable',
      error_description:
        "the broker's store did not answer in time; the request was not acknowledged, retry later",
    },
    headers: { 'Retry-After': RETRY_AFTER },
  },
}

/** Registers the Error schema, the bearer scheme and the shared error responses. */
export function registerSharedComponents(registry: OpenAPIRegistry): void {
  registry.register('Error', ErrorBody)
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description:
      'A broker client token (`ssf_<client_id>.<secret>`), the admin token, or (receiver endpoints) an OAuth 2.0 JWT access token. Never in the query string.',
  })
  for (const [status, name] of Object.entries(ERROR_RESPONSES)) {
    const doc = DOCS[Number(status) as ErrorStatus]
    registry.registerComponent('responses', name, {
      description: doc.description,
      ...(doc.headers ? { headers: doc.headers } : {}),
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/Error' },
          example: doc.example,
        },
      },
    })
  }
}
