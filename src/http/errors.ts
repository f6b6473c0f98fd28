/**
 * The JSON error shape of every endpoint: `{"error": <code>, "error_description": <text>}`, following the
 * OAuth 2.0 convention SSF receivers already parse. Internal detail never reaches the wire.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status'

export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }

  body(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.message }
  }
}

export const unauthorized = (message = 'a valid bearer token is required') =>
  new HttpError(401, 'invalid_token', message, { 'WWW-Authenticate': `Bearer realm="ssf-broker", error="invalid_token", error_description="${message}"` })
export const forbidden = (message: string) => new HttpError(403, 'access_denied', message)
export const badRequest = (message: string, code = 'invalid_request') => new HttpError(400, code, message)
export const notFound = (message = 'not found') => new HttpError(404, 'not_found', message)
