/**
 * Scenario 1: latency under steady load. Events are posted one per request at fixed rates to one push
 * stream; p50/p95/p99/max of ingest-request-sent to SET-received. Target: p99 ≤ 10 ms at 1000/s.
 */
import { latencyAtRate } from '../lib/latency.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import type { Scenario } from '../lib/types.js'

export const RATES = [200, 1000, 5000]
const TARGET = { rate: 1000, p99Ms: 10 }

export const scenario: Scenario = {
  id: 1,
  key: 'push-latency',
  title: 'Push latency under steady load (1 stream)',
  async run(ctx) {
    const runs = []
    for (const rate of RATES) {
      ctx.log(`  ${rate} events/s`)
      runs.push(
        await latencyAtRate(
          ctx,
          rate,
          async (tag) => {
            const [stream] = await createPushStreams(ctx, 1, ctx.txnPrefix(`s1${tag}-`))
            return {
              key: stream!.key,
              streamId: stream!.streamId,
              teardown: async () => void (await deleteStreams(ctx, [stream!.streamId])),
            }
          },
          rate === TARGET.rate ? { p99Ms: TARGET.p99Ms } : undefined,
        ),
      )
    }
    return {
      status: 'ok',
      figures: runs.flatMap((r) => r.figures),
      details: {
        one_event_per_request: true,
        subjects: 'distinct (10,000 users cycled)',
        runs: runs.map((r) => r.details),
      },
    }
  },
}
