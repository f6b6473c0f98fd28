/**
 * Scenario 10: recovery after a receiver outage. One push stream's receiver answers 503 (no Retry-After)
 * for 20 s (quick: 4 s) while events for it arrive at 50/s; then it answers 202 again. Figures: the time
 * from the moment it answers 2xx again until every SET held during the outage has arrived (target ≤ 3 s),
 * the time until the broker's first request after it came back, and how hard the broker knocked during the
 * outage (requests per second refused). Bounded: at most 90 s (quick: 40 s) after the outage ends.
 */
import { sendAtRate, now } from '../lib/emitter.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import { figureMaker } from '../lib/report.js'
import type { Scenario } from '../lib/types.js'

const RATE = 50
const TARGET_MS = 3000

export const scenario: Scenario = {
  id: 10,
  key: 'recovery',
  title: 'Recovery: held SETs after a 503 outage of the receiver',
  async run(ctx) {
    const outageMs = ctx.quick ? 4000 : 20_000
    const waitMs = ctx.quick ? 40_000 : 90_000
    await ctx.receivers.reset()
    const [stream] = await createPushStreams(ctx, 1, ctx.txnPrefix('s10-'), 1)
    const key = stream!.key
    try {
      // Warm-up: one SET delivered while the receiver is up.
      const warm = ctx.txnPrefix('rw-')
      await ctx.emitter.post([
        {
          type: 'caep/session-revoked',
          subject: { format: 'email', email: 'warm@bench.example.com' },
          txn: warm,
          event: { initiating_entity: 'policy' },
        },
      ])
      await ctx.receivers.waitFor((s) => s.sets >= 1, 10_000)

      const prefix = ctx.txnPrefix('rc-')
      await ctx.receivers.sinkStatus(key, 503)
      const down = now()
      const sent = await sendAtRate(ctx.emitter, {
        rate: RATE,
        durationMs: outageMs,
        txnPrefix: prefix,
      })
      // Keep the outage its full length even if sending finished early.
      const left = down + outageMs - now()
      if (left > 0) await new Promise((r) => setTimeout(r, left))
      const outage = await ctx.receivers.sinkStatus(key, null)
      const up = now()
      const expected = [...sent.sentAt.keys()]
      const deadline = Date.now() + waitMs
      let got = await ctx.receivers.collect({
        txnPrefix: prefix,
        expectKeys: [key],
        expectTxns: expected,
      })
      while (got.distinct < expected.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
        got = await ctx.receivers.collect({
          txnPrefix: prefix,
          expectKeys: [key],
          expectTxns: expected,
        })
      }
      const allAt = got.distinct >= expected.length && got.last !== null ? got.last : Infinity
      const firstAt = got.first ?? Infinity
      const outageSpan = (up - down) / 1000
      const note =
        got.missing > 0
          ? `${got.missing} of ${expected.length} held SETs still missing ${waitMs / 1000} s after the receiver came back`
          : undefined
      const fig = figureMaker(note, () => ({ kind: 'none' }))
      return {
        status: 'ok',
        figures: [
          fig(`receiver back → all ${expected.length} held SETs arrived`, allAt - up, 'ms', {
            text: `≤ ${TARGET_MS} ms`,
            pass: allAt - up <= TARGET_MS && got.missing === 0 && got.failures === 0,
          }),
          fig('receiver back → first SET arrived', firstAt - up, 'ms'),
          fig('first SET → all held SETs arrived', allAt - firstAt, 'ms'),
          fig(
            `requests refused during the ${Math.round(outageSpan)} s outage`,
            outage.refused,
            'count',
          ),
        ],
        details: {
          outage_ms: Math.round(up - down),
          rate_per_s: RATE,
          events_accepted: sent.accepted,
          ingest_errors: sent.errors,
          refused_requests: outage.refused,
          refused_per_s: Number((outage.refused / outageSpan).toFixed(2)),
          last_refused_before_up_ms: outage.last !== null ? Math.round(up - outage.last) : null,
          received: {
            distinct: got.distinct,
            duplicates: got.duplicates,
            missing: got.missing,
            missing_sample: got.missingSample,
            verify_failures: got.failures,
          },
        },
      }
    } finally {
      await ctx.receivers.sinkStatus(key, null).catch(() => {})
      await deleteStreams(ctx, [stream!.streamId])
    }
  },
}
