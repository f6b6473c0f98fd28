/**
 * Builders of the broker's errors for the HTTP edge, and their one rendering: `BrokerError` (src/errors.ts)
 * to status, JSON body `{"error", "error_description"}` (or RFC 8935's `{"err", "description"}` on the
 * upstream push path), `WWW-Authenticate` (RFC 6750 §3) and `Retry-After`. Internal detail never reaches
 * the wire: codes with `expose: false` send a generic text.
 */
import type { Context } from 'hono'
import { BrokerError, ERROR_CODES, type ErrorCode } from '../errors.js'

export const REALM = 'ssf-broker'

/** Set by a route that answers in the RFC 8935 error shape (`{err, description}`), as a SET receiver does. */
export const RFC8935_ERRORS = 'rfc8935Errors'

/**
 * Kept for modules not yet throwing BrokerError directly: a BrokerError whose status follows its code
 * (the `status` argument must agree with it) and whose `Retry-After` header becomes `retryAfterSeconds`.
 */
export class HttpError extends BrokerError {
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    const retry = headers['Retry-After'] ?? headers['retry-after']
    super(
      code as ErrorCode,
      message,
      retry === undefined ? {} : { retryAfterSeconds: Number(retry) },
    )
    if (ERROR_CODES[code as ErrorCode]?.status !== status)
      throw new Error(`error code ${code} is not a ${status}`)
  }
}

export const unauthorized = (message = 'a valid bearer token is required') =>
  new BrokerError('invalid_token', message)
export const forbidden = (message: string) => new BrokerError('access_denied', message)
export const badRequest = (message: string, code: ErrorCode = 'invalid_request') =>
  new HttpError(400, code, message)
export const notFound = (message = 'not found') => new BrokerError('not_found', message)

/** A quoted-string parameter value of a challenge: no quote or backslash can end it early. */
const quoted = (value: string) => `"${value.replace(/["\\\r\n]/g, "'")}"`

/** The RFC 6750 challenge for a 401, or a 403 `insufficient_scope`; undefined for other errors. */
function challenge(err: BrokerError): string | undefined {
  const realm = `Bearer realm=${quoted(err.realm ?? REALM)}`
  if (err.status === 401)
    return `${realm}, error="invalid_token", error_description=${quoted(err.message)}`
  if (err.code === 'insufficient_scope')
    return `${realm}, error="insufficient_scope"${err.scope !== undefined ? `, scope=${quoted(err.scope)}` : ''}`
  return undefined
}

/** The one answer for a BrokerError. */
export function errorResponse(c: Context, err: BrokerError): Response {
  const description = err.expose ? err.message : 'internal error'
  const rfc8935 =
    (c as Context<{ Variables: Record<string, unknown> }>).get(RFC8935_ERRORS) === true
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-store',
  }
  const www = challenge(err)
  if (www !== undefined) headers['www-authenticate'] = www
  if (err.retryAfterSeconds !== undefined)
    headers['retry-after'] = String(Math.max(0, Math.ceil(err.retryAfterSeconds)))
  const body = rfc8935
    ? { err: err.code, description }
    : { error: err.code, error_description: description }
  return new Response(JSON.stringify(body), { status: err.status, headers })
}
