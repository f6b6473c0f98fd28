/**
 * Retention: removes, oldest first in chain order, the records older than the retention, and moves the
 * anchor forward so the remaining chain still verifies. Stops at the first newer record (the chain stays
 * contiguous). Each script call does a bounded amount of work, however long the trail is.
 */
import type { AuditStore } from './store.js'

/** Work per script call: batches removed plus their index entries (then at most one batch is read). */
const STEP_BUDGET = 2000

export async function pruneTrail(
  store: AuditStore,
  retentionSeconds: number,
  now: number,
): Promise<number> {
  const cutoff = now - retentionSeconds * 1000
  let total = 0
  for (;;) {
    const { removed, more } = await store.pruneStep(cutoff, STEP_BUDGET)
    total += removed
    if (!more) return total
  }
}
