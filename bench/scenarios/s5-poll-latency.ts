/**
 * Scenario 5: the latency of scenario 1 for a long-polling receiver (RFC 8936): one outstanding poll
 * request (`returnImmediately: false`), acknowledging the previous batch in the next request; the time
 * a SET is received is when the poll response carrying it had arrived.
 */
import { latencyAtRate } from '../lib/latency.js'
import { createPollStream, deleteStreams, localUrl, POLL } from '../lib/streams.js'
import type { Scenario } from '../lib/types.js'
import { RATES } from './s1-push-latency.js'

const MAX_EVENTS = 100

export const scenario: Scenario = {
  id: 5,
  key: 'poll-latency',
  title: 'Poll latency under steady load (1 long-polling receiver)',
  async run(ctx) {
    if (!ctx.features.poll) {
      return {
        status: 'not_available',
        reason: `the broker's metadata does not list ${POLL} in delivery_methods_supported`,
        figures: [],
        details: {},
      }
    }
    const runs = []
    for (const rate of RATES) {
      ctx.log(`  ${rate} events/s`)
      runs.push(
        await latencyAtRate(ctx, rate, async (tag) => {
          const stream = await createPollStream(ctx)
          const key = ctx.txnPrefix(`s5${tag}-`)
          await ctx.receivers.startPoll({
            key,
            url: localUrl(ctx, stream.url),
            token: ctx.tokens.receiver,
            maxEvents: MAX_EVENTS,
            maxMs: 300_000,
          })
          return {
            key,
            streamId: stream.streamId,
            teardown: async () => {
              await ctx.receivers.stopPoll(key)
              await deleteStreams(ctx, [stream.streamId])
            },
          }
        }),
      )
    }
    return {
      status: 'ok',
      figures: runs.flatMap((r) => r.figures),
      details: {
        one_event_per_request: true,
        poll: { maxEvents: MAX_EVENTS, returnImmediately: false, outstanding_polls: 1 },
        runs: runs.map((r) => r.details),
      },
    }
  },
}
