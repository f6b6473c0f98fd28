/**
 * Scenario 6: time to revoke. From the emit to the moment the receiver SDK's middleware refuses the
 * agent's next request.
 *
 * Not written yet: the receiver SDK (`ssf-broker/receiver`, src/receiver) and its middleware are being
 * built. When they exist, this file runs a resource server with the middleware on loopback, has an
 * "agent" send requests to it in a tight bounded loop, emits a session-revoked event about the agent's
 * session, and reports the time until the first refused request.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Scenario } from '../lib/types.js'

export const scenario: Scenario = {
  id: 6,
  key: 'time-to-revoke',
  title: "Time to revoke: emit to the SDK middleware's first refusal",
  async run(ctx) {
    const sdk = ['dist/receiver/index.js', 'src/receiver/index.ts'].find((p) => existsSync(join(ctx.root, p)))
    return {
      status: 'not_available',
      reason: sdk
        ? `the receiver SDK exists (${sdk}) but this scenario is not written against its middleware yet`
        : 'the receiver SDK middleware (ssf-broker/receiver) is not built yet',
      figures: [],
      details: {},
    }
  },
}
