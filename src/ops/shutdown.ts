/**
 * Bounded waiting for shutdown steps: whatever has not finished after `ms` is left behind (logged), so a
 * stuck close (an unreachable Redis, a receiver that never answers) cannot keep the process alive.
 */
import type { Logger } from '../lib/log.js'

export async function closeWithin(
  ms: number,
  steps: Promise<unknown>[],
  log: Logger,
  what: string,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const all = Promise.allSettled(steps).then(() => true)
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const finished = await Promise.race([all, timeout])
  clearTimeout(timer)
  if (!finished) log.warn('shutdown: gave up waiting', { what, waited_ms: ms })
  return finished
}
