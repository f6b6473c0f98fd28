/**
 * Scenario 4: revocation cascade. One event about a user with 1,000 delegated agents; the time until the
 * last agent SET arrives. Target: below 500 ms.
 *
 * Not written yet: the broker has no delegated agents or cascade. When it has, this file creates the
 * user, registers 1,000 agents on it with push streams (as scenario 3 does), posts one event about the
 * user and times the last agent SET (reusing the timing of s3-fanout.ts).
 */
import type { Scenario } from '../lib/types.js'

export const scenario: Scenario = {
  id: 4,
  key: 'revocation-cascade',
  title: 'Revocation cascade: one user, 1,000 delegated agents',
  async run(ctx) {
    const advertised = Object.keys(ctx.features.metadata).filter((k) => /agent|cascade|delegat/i.test(k))
    return {
      status: 'not_available',
      reason:
        advertised.length > 0
          ? `the broker advertises ${advertised.join(', ')}, but this scenario is not written yet`
          : 'the broker has no delegated agents / revocation cascade yet (nothing in its metadata); scenario to be written against that API',
      figures: [],
      details: { target: 'last agent SET < 500 ms' },
    }
  },
}
