/**
 * The 503 the broker answers when its store (Redis) is unavailable or a request ran past its deadline:
 * `temporarily_unavailable` with `Retry-After`, saying that nothing was acknowledged. Logged as one line per
 * outage rather than one per request.
 */
import type { Context } from 'hono'
import type { Logger } from '../lib/log.js'
import { BrokerError } from '../errors.js'
import { RFC8935_ERRORS, errorResponse } from './errors.js'

export const RETRY_AFTER_SECONDS = 5
const QUIET_MS = 10_000

function description(c: Context): string {
  const what =
    c.req.method === 'POST' && c.req.path.endsWith('/events')
      ? 'the events were not acknowledged'
      : 'the request was not acknowledged'
  return `the broker's store did not answer in time; ${what}, retry later`
}

export { RFC8935_ERRORS }

export function unavailableResponse(c: Context): Response {
  return errorResponse(
    c,
    new BrokerError('temporarily_unavailable', description(c), {
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    }),
  )
}

/**
 * Logs the first 503 of an outage (the first after QUIET_MS without one), then at most one line per
 * QUIET_MS while it lasts, with how many 503s were answered in between.
 */
export class OutageLog {
  #since = 0
  #last = 0
  #lastLogged = 0
  #unlogged = 0

  constructor(private readonly log: Logger) {}

  unavailable(c: Context, reason: string, error?: unknown): void {
    const now = Date.now()
    if (now - this.#last > QUIET_MS) {
      this.#since = now
      this.#lastLogged = 0
      this.#unlogged = 0
    }
    this.#last = now
    if (now - this.#lastLogged < QUIET_MS) {
      this.#unlogged++
      return
    }
    this.log.warn('Redis unavailable: answering 503', {
      request_id: c.get('requestId') as string | undefined,
      reason,
      path: c.req.path,
      method: c.req.method,
      since: new Date(this.#since).toISOString(),
      answered_503_since_last_line: this.#unlogged,
      ...(error !== undefined ? { error: String(error) } : {}),
    })
    this.#lastLogged = now
    this.#unlogged = 0
  }
}
