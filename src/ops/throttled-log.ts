/**
 * A repeating warning (a connection error every reconnect attempt while Redis is away) logged once per
 * interval, with how many were suppressed since, instead of flooding the log.
 */
import type { Logger } from '../lib/log.js'

export function throttledWarn(log: Logger, msg: string, intervalMs = 10_000): (fields?: Record<string, unknown>) => void {
  let last = 0
  let suppressed = 0
  return (fields) => {
    const now = Date.now()
    if (now - last < intervalMs) {
      suppressed++
      return
    }
    log.warn(msg, { ...fields, ...(suppressed > 0 ? { suppressed } : {}) })
    last = now
    suppressed = 0
  }
}
