/**
 * Scenario 9: fairness. Stream X (session-presented) gets 50 batches of 1,000 events, posted as fast as
 * the broker accepts them (4 requests in flight); meanwhile an unrelated stream Y (device-compliance-change,
 * not a priority type) gets one event every 100 ms, each timed from sending its ingest request to its
 * SET's arrival, until X has received all its SETs. Target: Y's p99 ≤ 100 ms. Bounded: sending to Y stops
 * after 120 s (quick: 30 s) whatever X's state, and a Y SET missing then counts as infinitely late; X's
 * backlog is then dropped with a broker restart on an emptied Redis. The measurement is lib/fairness.ts.
 */
import { unrelatedStreamDuringBatches } from '../lib/fairness.js'
import { CAEP, createPushStreams, deleteStreams } from '../lib/streams.js'
import type { Scenario } from '../lib/types.js'

export const scenario: Scenario = {
  id: 9,
  key: 'fairness',
  title: 'Fairness: an unrelated stream during 50 batches of 1,000 events for another',
  async run(ctx) {
    await ctx.receivers.reset()
    const [x] = await createPushStreams(ctx, 1, ctx.txnPrefix('s9x-'), 1, [
      `${CAEP}session-presented`,
    ])
    const [y] = await createPushStreams(ctx, 1, ctx.txnPrefix('s9y-'), 1, [
      `${CAEP}device-compliance-change`,
    ])
    let drained = false
    try {
      const { drained: done, ...result } = await unrelatedStreamDuringBatches(
        ctx,
        ctx.emitter,
        true,
      )
      drained = done
      return { status: 'ok', ...result }
    } finally {
      await deleteStreams(ctx, [x!.streamId, y!.streamId])
      // A backlog left behind would slow the scenarios after this one: start them on a fresh broker and Redis.
      if (!drained) await ctx.restartBroker()
    }
  },
}
