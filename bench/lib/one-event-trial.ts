/**
 * One event posted alone that becomes `sets` SETs (one per stream, or per agent): the time from sending
 * it until the first and the last of them have arrived at the receivers (Infinity if not all arrive
 * within 15 s). Shared by scenarios 3 and 4 and the floor relay's fan-out.
 */
import { now, type Emitter } from './emitter.js'
import type { Receivers } from './receivers.js'

export interface OneEventTrial {
  txn: string
  firstMs: number
  lastMs: number
  arrived: number
  status: number
}

export async function oneEventTrial(
  receivers: Receivers,
  emitter: Emitter,
  event: Record<string, unknown>,
  sets: number,
): Promise<OneEventTrial> {
  const txn = String(event.txn)
  const before = (await receivers.stats()).sets
  const sent = now()
  const status = await emitter.post([event])
  if (status !== 202) throw new Error(`POST /events answered ${status}`)
  // Cheap wait on the receiver's counter, then confirm on this event's own SETs (control SETs from the
  // broker could arrive in between and be counted).
  const deadline = Date.now() + 15_000
  await receivers.waitFor((s) => s.sets >= before + sets, 15_000, 2)
  let entry = (await receivers.collect({ txnPrefix: txn, byTxn: true })).byTxn?.[txn]
  while ((entry?.n ?? 0) < sets && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10))
    entry = (await receivers.collect({ txnPrefix: txn, byTxn: true })).byTxn?.[txn]
  }
  return {
    txn,
    firstMs: entry ? entry.first - sent : Infinity,
    lastMs: entry && entry.n >= sets ? entry.last - sent : Infinity,
    arrived: entry?.n ?? 0,
    status,
  }
}
