/**
 * Scenario 8: priority under a flood. One push stream receives a flood of `caep/session-presented` events
 * (3,000/s, posted in batches every 10 ms, about a pool of 1,000 users) and, meanwhile, a single
 * `caep/session-revoked` every 50 ms about users outside the flood, each timed from sending its ingest
 * request to its SET's arrival. Target: p99 of those revocations ≤ 25 ms. Every tenth revocation is about
 * a flooded user instead: it may not overtake that user's earlier SETs, and per-subject order is checked
 * over every SET of the run (see lib/order.ts). The measurement is lib/priority-flood.ts.
 *
 * Runs on a fresh broker started with SSF_BROKER_PRIORITY_EVENT_TYPES set to the CAEP and RISC types of its
 * default; a broker that refuses that setting is reported as not run.
 */
import { NotSupported } from '../lib/broker.js'
import { revocationsDuringFlood } from '../lib/priority-flood.js'
import { CAEP, createPushStreams } from '../lib/streams.js'
import type { Scenario } from '../lib/types.js'

const PRIORITY = [
  'caep/session-revoked',
  'caep/credential-change',
  'caep/token-claims-change',
  'risc/account-disabled',
  'risc/account-purged',
  'risc/credential-compromise',
  'risc/sessions-revoked',
  'risc/account-credential-change-required',
].join(',')

export const scenario: Scenario = {
  id: 8,
  key: 'priority',
  title: 'Priority: revocations during a 3,000/s session-presented flood (1 stream)',
  async run(ctx) {
    await ctx.restartBroker({ SSF_BROKER_PRIORITY_EVENT_TYPES: PRIORITY })
    try {
      await ctx.receivers.reset()
      await createPushStreams(ctx, 1, ctx.txnPrefix('s8-'), 1, [
        `${CAEP}session-presented`,
        `${CAEP}session-revoked`,
      ])
      return { status: 'ok', ...(await revocationsDuringFlood(ctx, ctx.emitter, true)) }
    } finally {
      // Back to the run's settings for the scenarios after this one.
      await ctx.restartBroker().catch((err: unknown) => {
        if (!(err instanceof NotSupported)) throw err
      })
    }
  },
}
