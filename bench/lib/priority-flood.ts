/**
 * Scenario 8's measurement, for the broker and for the floor relay: one push stream (or sink) taking
 * `caep/session-presented` and `caep/session-revoked` gets a flood of session-presented events (3,000/s,
 * posted in batches every 10 ms, about a pool of 1,000 users) and, meanwhile, a single session-revoked
 * every 50 ms about users outside the flood, each timed from sending its ingest request to its SET's
 * arrival. Every tenth revocation is about a flooded user instead: it may not overtake that user's
 * earlier SETs, and per-subject order is checked over every SET of the run (see order.ts).
 */
import { now, type Emitter } from './emitter.js'
import { orderViolations, type Sent } from './order.js'
import { summarize } from './stats.js'
import { figureMaker } from './report.js'
import type { BenchContext, Figure } from './types.js'

const FLOOD_RATE = 3000
const BATCH_EVERY_MS = 10
const FLOOD_USERS = 1000
const REVOKE_EVERY_MS = 50
export const TARGET_P99_MS = 25

const user = (name: string) => ({ format: 'email', email: `${name}@bench.example.com` })

/** With `targets`, the p99 and per-subject order figures carry scenario 8's targets. */
export async function revocationsDuringFlood(
  ctx: BenchContext,
  emitter: Emitter,
  targets: boolean,
): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const floodMs = ctx.quick ? 2000 : 10_000
  const drainMs = ctx.quick ? 15_000 : 60_000
  const prefix = ctx.txnPrefix('pr-')
  const sent: Sent[] = []
  const revocations: { txn: string; sentAt: number; sameSubject: boolean }[] = []
  let postErrors = 0
  let floodEvents = 0
  const inFlight = new Set<Promise<void>>()
  const post = (
    events: Record<string, unknown>[],
    subjects: string[],
    onSent?: (t: number) => void,
  ) => {
    const t = now()
    onSent?.(t)
    const p = emitter.post(events).then(
      (status) => {
        const acked = now()
        if (status !== 202) {
          postErrors++
          return
        }
        events.forEach((e, j) =>
          sent.push({ txn: e.txn as string, subject: subjects[j]!, sentAt: t, ackedAt: acked }),
        )
      },
      () => {
        postErrors++
      },
    )
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
  }

  // Warm-up: connections and the stream's first deliveries, not measured.
  await emitter.post([
    {
      type: 'caep/session-revoked',
      subject: user('warm'),
      txn: `${prefix}warm`,
      event: { initiating_entity: 'policy' },
    },
  ])
  await ctx.receivers.waitFor((s) => s.sets >= 1, 10_000)

  const start = now()
  const perBatch = Math.round((FLOOD_RATE * BATCH_EVERY_MS) / 1000)
  let batches = 0
  let revokes = 0
  let maxLagMs = 0
  while (now() - start < floodMs) {
    const t = now() - start
    // Open loop, at most 64 requests open: a broker that cannot take the rate makes the flood lag (reported).
    while (batches * BATCH_EVERY_MS <= t && inFlight.size < 64) {
      const events = Array.from({ length: perBatch }, (_, j) => {
        const i = floodEvents + j
        return {
          type: 'caep/session-presented',
          subject: user(`flood${i % FLOOD_USERS}`),
          txn: `${prefix}f.${i}`,
          event: { fp_ua: 'ssf-broker-bench' },
        }
      })
      post(
        events,
        events.map((e) => (e.subject as { email: string }).email),
      )
      floodEvents += perBatch
      batches++
    }
    maxLagMs = Math.max(maxLagMs, t - batches * BATCH_EVERY_MS)
    if (revokes * REVOKE_EVERY_MS <= t) {
      const sameSubject = revokes % 10 === 9
      const name = sameSubject ? `flood${(revokes * 7) % FLOOD_USERS}` : `victim${revokes}`
      const txn = `${prefix}r.${revokes}`
      post(
        [
          {
            type: 'caep/session-revoked',
            subject: user(name),
            txn,
            event: { initiating_entity: 'policy' },
          },
        ],
        [`${name}@bench.example.com`],
        (at) => revocations.push({ txn, sentAt: at, sameSubject }),
      )
      revokes++
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  const floodEnd = now()
  await Promise.all([...inFlight])
  const expected = sent.length
  const deadline = Date.now() + drainMs
  let got = await ctx.receivers.collect({ txnPrefix: prefix, byTxn: true })
  while (Object.keys(got.byTxn ?? {}).length < expected + 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200))
    got = await ctx.receivers.collect({ txnPrefix: prefix, byTxn: true })
  }
  const arrivals = got.byTxn ?? {}
  const accepted = new Set(sent.map((s) => s.txn))
  const lat = (list: typeof revocations) =>
    summarize(
      list
        .filter((r) => accepted.has(r.txn))
        .map((r) => (arrivals[r.txn] ? arrivals[r.txn]!.first - r.sentAt : Infinity)),
    )
  const other = lat(revocations.filter((r) => !r.sameSubject))
  // Where a revocation's time goes: until its 202 (the HTTP request), and from the 202 to its SET.
  const sentByTxn = new Map(sent.map((s) => [s.txn, s]))
  const otherAcks = revocations
    .filter((r) => !r.sameSubject)
    .flatMap((r) => {
      const s = sentByTxn.get(r.txn)
      return s ? [s] : []
    })
  const ack = summarize(otherAcks.map((s) => s.ackedAt - s.sentAt))
  const afterAck = summarize(
    otherAcks.map((s) => (arrivals[s.txn] ? arrivals[s.txn]!.first - s.ackedAt : Infinity)),
  )
  const same = lat(revocations.filter((r) => r.sameSubject))
  const floodTxns = sent.filter((s) => s.txn.startsWith(`${prefix}f.`))
  const floodArrived = floodTxns.filter((s) => arrivals[s.txn]).length
  const lastFlood = Math.max(...floodTxns.map((s) => arrivals[s.txn]?.first ?? -Infinity))
  const order = orderViolations(sent, arrivals)
  const missing = sent.filter((s) => !arrivals[s.txn]).length
  const notes: string[] = []
  if (missing > 0)
    notes.push(
      `${missing} of ${expected} SETs missing after ${drainMs / 1000} s (late revocations count as infinite)`,
    )
  if (maxLagMs > 100) notes.push(`flood fell ${Math.round(maxLagMs)} ms behind its schedule`)
  const note = notes.length ? notes.join('; ') : undefined
  const fig = figureMaker(note, (_name, unit) =>
    unit === 'ms' ? { kind: 'latency' } : { kind: 'none' },
  )
  return {
    figures: [
      fig(`revocations (other users), p50 of ${other.count}`, other.p50, 'ms'),
      fig(
        'revocations (other users), p99',
        other.p99,
        'ms',
        targets
          ? { text: `p99 ≤ ${TARGET_P99_MS} ms`, pass: other.p99 <= TARGET_P99_MS && missing === 0 }
          : undefined,
      ),
      fig('revocations (other users), max', other.max, 'ms'),
      fig('revocations (other users), POST to its 202, p50', ack.p50, 'ms'),
      fig('revocations (other users), POST to its 202, p99', ack.p99, 'ms'),
      fig('revocations (other users), 202 to the SET, p50', afterAck.p50, 'ms'),
      fig('revocations (other users), 202 to the SET, p99', afterAck.p99, 'ms'),
      fig(`revocations about flooded users, p50 of ${same.count}`, same.p50, 'ms'),
      fig(
        'flood: session-presented SETs delivered',
        floodArrived > 1 && lastFlood > start ? (floodArrived * 1000) / (lastFlood - start) : 0,
        '/s',
      ),
      fig(
        `per-subject order: violations in ${order.compared.toLocaleString('en-US')} ordered pairs`,
        order.violations,
        'count',
        targets ? { text: '0', pass: order.violations === 0 && order.compared > 0 } : undefined,
      ),
    ],
    details: {
      flood_rate_per_s: FLOOD_RATE,
      flood_ms: floodMs,
      flood_events_offered: floodEvents,
      flood_batch_events: perBatch,
      flood_max_lag_ms: Math.round(maxLagMs),
      flood_posting_ms: Math.round(floodEnd - start),
      revocations_offered: revokes,
      events_accepted: expected,
      post_errors: postErrors,
      revocation_latency_other_users_ms: other,
      revocation_ack_other_users_ms: ack,
      revocation_after_ack_other_users_ms: afterAck,
      revocation_latency_flooded_users_ms: same,
      flood_arrived: floodArrived,
      flood_drain_ms: Number.isFinite(lastFlood) ? Math.round(lastFlood - floodEnd) : null,
      missing,
      order,
      received: {
        distinct: got.distinct,
        duplicates: got.duplicates,
        other: got.other,
        verify_failures: got.failures,
      },
    },
  }
}
