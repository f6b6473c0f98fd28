/**
 * Registrations are ephemeral: an agent past its expiry is retired with reason "expired" and its
 * subscribers are told (the caller's `onRetired`); a retirement whose notification was never confirmed
 * (the notifier crashed or failed) is notified again after 30 s. Safe in every broker process at once:
 * of several sweepers, exactly one retires each agent.
 */
import type { AgentRecord } from './model.js'

export type OnRetired = (record: AgentRecord, reason: string) => Promise<void>

/** What the sweep needs of the registry. */
export interface Expiring {
  now(): number
  dueForExpiry(now: number, limit: number): Promise<string[]>
  retire(agentId: string, reason: string): Promise<AgentRecord | undefined>
  notified(agentId: string): Promise<void>
  claimUnnotified(now: number, limit: number): Promise<AgentRecord[]>
}

/**
 * Retires up to `limit` agents due at `now` (ms), calls `onRetired` for each this call retired and marks
 * it notified once that resolved. Returns the number of agents that were due.
 */
export async function sweepExpired(
  registry: Expiring,
  now: number,
  limit: number,
  onRetired: OnRetired,
): Promise<number> {
  const due = await registry.dueForExpiry(now, limit)
  for (const id of due) {
    const record = await registry.retire(id, 'expired')
    if (record) {
      await onRetired(record, 'expired')
      await registry.notified(id)
    }
  }
  return due.length
}

/**
 * Every `intervalMs` (default 500 ms; an agent is retired at most about that long after its expiry):
 * retires what has expired, `batch` at a time until nothing is due, and re-sends retirement
 * notifications that were never confirmed. Returns stop().
 */
export function startExpirySweep(
  registry: Expiring,
  onRetired: OnRetired,
  options: { intervalMs?: number; batch?: number; onError?: (err: unknown) => void } = {},
): () => void {
  const batch = options.batch ?? 500
  let running = false
  let stopped = false
  const tick = async () => {
    if (running || stopped) return
    running = true
    try {
      while (
        !stopped &&
        (await sweepExpired(registry, registry.now(), batch, onRetired)) === batch
      ) {
        // More were due: keep going.
      }
      for (const record of await registry.claimUnnotified(registry.now(), batch)) {
        if (stopped) break
        await onRetired(record, record.retired_reason ?? 'retired')
        await registry.notified(record.agent_id)
      }
    } catch (err) {
      options.onError?.(err)
    } finally {
      running = false
    }
  }
  const timer = setInterval(() => void tick(), options.intervalMs ?? 500)
  timer.unref()
  return () => {
    stopped = true
    clearInterval(timer)
  }
}
