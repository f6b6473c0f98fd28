/**
 * One bounded wait per request. A request that has not been answered `ms` after it arrived gets the 503
 * of unavailable.ts, however many Redis commands it was still waiting for (each command has its own
 * timeout, and several in a row would add up). The handler keeps running in the background; whatever it
 * completes later is not reported to the caller, who was told it was not acknowledged.
 *
 * A long poll (RFC 8936) legitimately waits longer: once it has been authorised, its handler suspends the
 * deadline and is bounded by the poll's own wait and command timeouts.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { unavailableResponse, type OutageLog } from './unavailable.js'

export const REQUEST_DEADLINE_MS = 5000

const suspenders = new WeakMap<Request, () => void>()

/** Lifts the deadline of this request (long polls only). */
export function suspendRequestDeadline(c: Context): void {
  suspenders.get(c.req.raw)?.()
}

export function requestDeadline(ms: number, outages: OutageLog): MiddlewareHandler {
  return async function deadline(c, next) {
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), ms)
    })
    suspenders.set(c.req.raw, () => clearTimeout(timer))
    try {
      const outcome = await Promise.race([next().then(() => 'done' as const), expired])
      if (outcome === 'expired') {
        outages.unavailable(c, `no answer within ${ms} ms`)
        return unavailableResponse(c)
      }
      return undefined
    } finally {
      clearTimeout(timer)
      suspenders.delete(c.req.raw)
    }
  }
}
