/**
 * Scenario 12: the floor. What a minimal durable push relay (lib/floor-relay-proc.ts: one XADD, then sign
 * and push, nothing else) achieves on this machine, in this run, with the same load generator, receivers
 * (verifying every SET) and Redis as the broker: scenario 1's latencies, scenario 2's fan-out 10 rate,
 * scenario 3's one event to 1,000 sinks (also the shape of scenario 4's cascade), scenario 8's
 * revocations during a flood and scenario 9's unrelated sink. No target: it says how far below the
 * broker's figures the machine itself lets anything go. The broker sits idle meanwhile.
 */
import { makeEvent } from '../lib/emitter.js'
import { unrelatedStreamDuringBatches } from '../lib/fairness.js'
import { FloorRelay } from '../lib/floor-relay.js'
import { revocationsDuringFlood } from '../lib/priority-flood.js'
import { latencyAtRate } from '../lib/latency.js'
import { median } from '../lib/stats.js'
import { commandCalls } from '../lib/probe.js'
import { oneEventTrial } from '../lib/one-event-trial.js'
import { measureFanout } from '../lib/throughput.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'
import { RATES } from './s1-push-latency.js'
import { STREAMS } from './s3-fanout.js'

const FANOUT = 10
const RELAY = 'floor relay'

export const scenario: Scenario = {
  id: 12,
  key: 'floor',
  title: 'Floor: a minimal durable relay on this machine',
  async run(ctx) {
    const relay = await FloorRelay.start(ctx)
    const pids = () => ({ ...ctx.pids(), [RELAY]: relay.pid })
    const figures: Figure[] = []
    const details: Record<string, unknown> = {}
    let relayCpuMs = NaN
    try {
      // Scenario 1's rates, one sink.
      const runs = []
      for (const rate of RATES) {
        ctx.log(`  ${rate} events/s`)
        const key = ctx.txnPrefix(`fl1-${rate}`)
        await relay.setSinks([ctx.receivers.sinkUrl(key, 0)])
        runs.push(
          await latencyAtRate(
            { ...ctx, emitter: relay.emitter, pids },
            rate,
            () => Promise.resolve({ key, streamId: '', teardown: () => Promise.resolve() }),
            undefined,
            'relay',
          ),
        )
      }
      figures.push(...runs.flatMap((r) => r.figures))
      details.latency = runs.map((r) => r.details)

      // Scenario 2 at fan-out 10.
      ctx.log(`  fan-out ${FANOUT}`)
      const { broker: _idle, ...others } = ctx.pids()
      const throughput = await measureFanout(
        {
          quick: ctx.quick,
          receivers: ctx.receivers,
          emitters: [relay.emitter],
          createStreams: async (n, prefix) => {
            const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`)
            await relay.setSinks(keys.map((key, i) => ctx.receivers.sinkUrl(key, i)))
            return keys.map((key) => ({ streamId: '', key }))
          },
          deleteStreams: () => relay.setSinks([]),
          commandCalls: () => commandCalls(ctx.redis.client),
          pids: () => ({ ...others, [RELAY]: relay.pid }),
          underTest: RELAY,
          txnPrefix: (tag) => ctx.txnPrefix(`fl2${tag}`),
        },
        FANOUT,
      )
      figures.push(...throughput.figures, {
        name: `fan-out ${FANOUT}: relay CPU per SET`,
        value: throughput.cpuMsPerSet,
        unit: 'ms',
        ratio: { kind: 'none' },
      })
      details.throughput = throughput.details

      // Scenario 3: one event to 1,000 sinks.
      ctx.log(`  one event to ${STREAMS} sinks`)
      figures.push(...(await oneToMany(ctx, relay, details)))

      // Scenario 8: revocations during a flood, one sink taking both types.
      ctx.log('  revocations during a flood')
      await ctx.receivers.reset()
      await relay.setSinks([
        {
          url: ctx.receivers.sinkUrl(ctx.txnPrefix('fl8-'), 0),
          types: ['caep/session-presented', 'caep/session-revoked'],
        },
      ])
      const priority = await revocationsDuringFlood(ctx, relay.emitter, false)
      figures.push(...priority.figures.map(prefixed('priority')))
      details.priority = priority.details

      // Scenario 9: an unrelated sink during batches for another.
      ctx.log('  an unrelated sink during batches for another')
      await ctx.receivers.reset()
      await relay.setSinks([
        {
          url: ctx.receivers.sinkUrl(ctx.txnPrefix('fl9x-'), 0),
          types: ['caep/session-presented'],
        },
        {
          url: ctx.receivers.sinkUrl(ctx.txnPrefix('fl9y-'), 1),
          types: ['caep/device-compliance-change'],
        },
      ])
      const fairness = await unrelatedStreamDuringBatches(ctx, relay.emitter, false)
      figures.push(...fairness.figures.map(prefixed('fairness')))
      details.fairness = fairness.details
      await relay.setSinks([])
      details.failed_pushes = await relay.failures()
    } finally {
      relayCpuMs = await relay.stop()
    }
    return { status: 'ok', figures, details, childCpuMs: { [RELAY]: relayCpuMs } }
  },
}

const prefixed =
  (scenario: string) =>
  (figure: Figure): Figure => ({ ...figure, name: `${scenario}: ${figure.name}` })

async function oneToMany(
  ctx: BenchContext,
  relay: FloorRelay,
  details: Record<string, unknown>,
): Promise<Figure[]> {
  const prefix = ctx.txnPrefix('fl3-')
  await relay.setSinks(
    Array.from({ length: STREAMS }, (_, i) => ctx.receivers.sinkUrl(`${prefix}s${i}`, i)),
  )
  const trials = []
  for (let j = 0; j <= (ctx.quick ? 2 : 10); j++) {
    trials.push(
      await oneEventTrial(ctx.receivers, relay.emitter, makeEvent(`${prefix}${j}`, j), STREAMS),
    )
    await new Promise((r) => setTimeout(r, 100))
  }
  await relay.setSinks([])
  details.one_to_many = trials
  const warm = trials.slice(1)
  const fig = (name: string, value: number): Figure => ({
    name,
    value,
    unit: 'ms',
    ratio: { kind: 'batch', sets: STREAMS },
  })
  return [
    fig(
      `one event to ${STREAMS} sinks: last SET, warm median of ${warm.length}`,
      median(warm.map((t) => t.lastMs)),
    ),
    fig(`one event to ${STREAMS} sinks: last SET, cold`, trials[0]!.lastMs),
  ]
}
