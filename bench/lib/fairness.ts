/**
 * Scenario 9's measurement, for the broker and for the floor relay: stream (or sink) X, taking
 * session-presented, gets 50 batches of 1,000 events, posted as fast as they are accepted (4 requests in
 * flight); meanwhile an unrelated Y, taking device-compliance-change (not a priority type), gets one event
 * every 100 ms, each timed from sending its ingest request to its SET's arrival, until X has received all
 * its SETs. Bounded: sending to Y stops after 120 s (quick: 30 s) whatever X's state, and a Y SET missing
 * then counts as infinitely late.
 */
import { now, type Emitter } from './emitter.js'
import { summarize } from './stats.js'
import { figureMaker } from './report.js'
import type { BenchContext, Figure } from './types.js'

const BATCH = 1000
const Y_EVERY_MS = 100
export const TARGET_MS = 100

/** With `targets`, Y's p99 carries scenario 9's target; `drained`: X got all its SETs within the bound. */
export async function unrelatedStreamDuringBatches(
  ctx: BenchContext,
  emitter: Emitter,
  targets: boolean,
): Promise<{ figures: Figure[]; details: Record<string, unknown>; drained: boolean }> {
  const batches = ctx.quick ? 5 : 50
  const capMs = ctx.quick ? 30_000 : 120_000
  const xPrefix = ctx.txnPrefix('fx-')
  const yPrefix = ctx.txnPrefix('fy-')
  const ySent = new Map<string, number>()
  /** When each accepted Y event's 202 came back. */
  const yAcked = new Map<string, number>()
  let xAccepted = 0
  let postErrors = 0
  const yEvent = (i: number) => ({
    type: 'caep/device-compliance-change',
    subject: { format: 'email', email: `device-owner${i}@bench.example.com` },
    txn: `${yPrefix}${i}`,
    event: { previous_status: 'compliant', current_status: 'not-compliant' },
  })
  // Warm-up: both streams deliver once before the clock starts.
  await emitter.post([yEvent(-1)])
  await emitter.post([
    {
      type: 'caep/session-presented',
      subject: { format: 'email', email: 'warm@bench.example.com' },
      txn: `${xPrefix}warm`,
      event: { fp_ua: 'ssf-broker-bench' },
    },
  ])
  await ctx.receivers.waitFor((s) => s.sets >= 2, 10_000)

  const start = now()
  let next = 0
  let acceptedAllAt: number | undefined
  const poster = async () => {
    while (next < batches) {
      const b = next++
      const events = Array.from({ length: BATCH }, (_, j) => ({
        type: 'caep/session-presented',
        subject: {
          format: 'email',
          email: `user${(b * BATCH + j) % 10_000}@bench.example.com`,
        },
        txn: `${xPrefix}${b * BATCH + j}`,
        event: { fp_ua: 'ssf-broker-bench' },
      }))
      try {
        if ((await emitter.post(events)) === 202) xAccepted += BATCH
        else postErrors++
      } catch {
        postErrors++
      }
    }
  }
  const flood = Promise.all(Array.from({ length: 4 }, poster)).then(
    () => void (acceptedAllAt = now()),
  )
  // Y: one event every 100 ms until X has everything (or the cap).
  let i = 0
  let xDoneAt: number | undefined
  let lastCheck = 0
  const yPending: Promise<void>[] = []
  while (now() - start < capMs) {
    const due = start + i * Y_EVERY_MS
    if (now() >= due) {
      const txn = `${yPrefix}${i}`
      const at = now()
      yPending.push(
        emitter.post([yEvent(i)]).then(
          (status) => {
            if (status === 202) {
              ySent.set(txn, at)
              yAcked.set(txn, now())
            } else postErrors++
          },
          () => {
            postErrors++
          },
        ),
      )
      i++
    }
    if (acceptedAllAt !== undefined && now() - lastCheck > 250) {
      lastCheck = now()
      const s = await ctx.receivers.collect({ txnPrefix: xPrefix })
      if (s.distinct >= xAccepted + 1) {
        xDoneAt = s.last ?? now()
        break
      }
    }
    await new Promise((r) =>
      setTimeout(r, Math.max(1, Math.min(20, start + i * Y_EVERY_MS - now()))),
    )
  }
  await flood
  await Promise.all(yPending)
  // The last Y events get the same bound as the others had.
  const yDeadline = Date.now() + 10_000
  let got = await ctx.receivers.collect({ txnPrefix: yPrefix, byTxn: true })
  while (Object.keys(got.byTxn ?? {}).length < ySent.size + 1 && Date.now() < yDeadline) {
    await new Promise((r) => setTimeout(r, 50))
    got = await ctx.receivers.collect({ txnPrefix: yPrefix, byTxn: true })
  }
  const lat = summarize(
    [...ySent].map(([txn, at]) => (got.byTxn?.[txn] ? got.byTxn[txn].first - at : Infinity)),
  )
  // Where Y's time goes: until its 202 (the ingest request), and from the 202 to its SET.
  const ack = summarize([...ySent].map(([txn, at]) => yAcked.get(txn)! - at))
  const afterAck = summarize(
    [...yAcked].map(([txn, at]) => (got.byTxn?.[txn] ? got.byTxn[txn].first - at : Infinity)),
  )
  const xGot = await ctx.receivers.collect({ txnPrefix: xPrefix })
  const xMissing = xAccepted + 1 - xGot.distinct
  const notes: string[] = []
  if (xDoneAt === undefined)
    notes.push(
      `X had ${xGot.distinct - 1} of ${xAccepted} SETs when sending to Y stopped at ${capMs / 1000} s`,
    )
  const yMissing = [...ySent.keys()].filter((t) => !got.byTxn?.[t]).length
  if (yMissing > 0) notes.push(`${yMissing} Y SETs missing (counted as infinite)`)
  const note = notes.length ? notes.join('; ') : undefined
  const fig = figureMaker(note, (name) =>
    name.startsWith('stream Y') ? { kind: 'latency' } : { kind: 'none' },
  )
  return {
    drained: xDoneAt !== undefined,
    figures: [
      fig(`stream Y latency, p50 of ${lat.count}`, lat.p50, 'ms'),
      fig(
        'stream Y latency, p99',
        lat.p99,
        'ms',
        targets
          ? { text: `p99 ≤ ${TARGET_MS} ms`, pass: lat.p99 <= TARGET_MS && yMissing === 0 }
          : undefined,
      ),
      fig('stream Y latency, max', lat.max, 'ms'),
      fig('stream Y: POST to its 202, p99', ack.p99, 'ms'),
      fig('stream Y: 202 to the SET, p99', afterAck.p99, 'ms'),
      fig(
        `stream X: ${batches} × ${BATCH} events accepted in`,
        (acceptedAllAt ?? NaN) - start,
        'ms',
      ),
      fig(
        'stream X: all SETs delivered after',
        xDoneAt !== undefined ? xDoneAt - start : Infinity,
        'ms',
      ),
    ],
    details: {
      batches,
      batch_events: BATCH,
      x_accepted: xAccepted,
      x_received: xGot.distinct - 1,
      x_missing: xMissing,
      x_verify_failures: xGot.failures,
      y_every_ms: Y_EVERY_MS,
      y_sent: ySent.size,
      y_missing: yMissing,
      y_latency_ms: lat,
      y_ack_ms: ack,
      y_after_ack_ms: afterAck,
      post_errors: postErrors,
      cap_ms: capMs,
    },
  }
}
