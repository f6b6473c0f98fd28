/**
 * Scenario 2: throughput. The highest sustained rate of SETs delivered and verified at fan-out 1, 10 and
 * 100 push streams, with no loss (closed loop with a bounded backlog, see lib/throughput.ts).
 * Targets at fan-out 10: at least 0.5 of the raw HTTP POST rate; at most 10 Redis commands per delivered
 * SET (INFO commandstats, idle traffic subtracted). Its Redis commands and broker CPU per SET are also
 * reported at the top of the results JSON.
 */
import { commandCalls, startProbe } from '../lib/probe.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import { measureFanout } from '../lib/throughput.js'
import type { Figure, Scenario } from '../lib/types.js'

const FANOUTS = [1, 10, 100]
const TARGET = { fanout: 10, ratio: 0.5, commandsPerSet: 10 }

export const scenario: Scenario = {
  id: 2,
  key: 'throughput',
  title: 'Throughput, no loss (push, fan-out 1/10/100)',
  async run(ctx) {
    const figures: Figure[] = []
    const runs: Record<string, unknown>[] = []
    for (const fanout of FANOUTS) {
      ctx.log(`  fan-out ${fanout}`)
      const r = await measureFanout(
        {
          quick: ctx.quick,
          receivers: ctx.receivers,
          emitters: [ctx.emitter],
          createStreams: (n, prefix) => createPushStreams(ctx, n, prefix),
          deleteStreams: (ids) => deleteStreams(ctx, ids),
          commandCalls: () => commandCalls(ctx.redis.client),
          pids: () => ctx.pids(),
          txnPrefix: (tag) => ctx.txnPrefix(`s2${tag}`),
          probe: (ids) => startProbe(ctx.redis.client, ids),
        },
        fanout,
      )
      const clean = r.lost === 0 && r.verifyFailures === 0
      if (fanout === TARGET.fanout) {
        r.figures[0]!.target = {
          text: `≥ ${TARGET.ratio} × HTTP POST rate, no loss`,
          pass: clean,
          minHttpRatio: TARGET.ratio,
        }
        r.figures.push(
          {
            name: `fan-out ${fanout}: Redis commands per SET (idle subtracted)`,
            value: r.redisCommandsPerSet,
            unit: 'count',
            ratio: { kind: 'none' },
            target: {
              text: `≤ ${TARGET.commandsPerSet}`,
              pass: r.redisCommandsPerSet <= TARGET.commandsPerSet,
            },
          },
          {
            name: `fan-out ${fanout}: broker CPU per SET`,
            value: r.cpuMsPerSet,
            unit: 'ms',
            ratio: { kind: 'none' },
          },
        )
      }
      figures.push(...r.figures)
      runs.push(r.details)
    }
    return { status: 'ok', figures, details: { runs } }
  },
}
