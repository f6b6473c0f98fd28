/**
 * Scenario 3: one event to 1,000 push streams; the time from sending the ingest request until the last
 * of the 1,000 SETs has arrived (and, for the record, the first). One cold trial (the broker's first
 * pushes to these streams) and then warm trials, one event at a time. Target: at most 200 ms.
 */
import { cpuBetween, snapshot, type CpuSnapshot } from '../lib/cpu.js'
import { makeEvent, now } from '../lib/emitter.js'
import { oneEventTrial, type OneEventTrial } from '../lib/one-event-trial.js'
import { commandCalls, commandsPer } from '../lib/probe.js'
import { median } from '../lib/stats.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import type { Figure, Scenario } from '../lib/types.js'

export const STREAMS = 1000
const TARGET_MS = 200

export const scenario: Scenario = {
  id: 3,
  key: 'fanout-1000',
  title: `Fan-out: one event to ${STREAMS.toLocaleString('en-US')} push streams`,
  async run(ctx) {
    const warmTrials = ctx.quick ? 2 : 10
    await ctx.receivers.reset()
    const t0 = now()
    const streams = await createPushStreams(ctx, STREAMS, ctx.txnPrefix('s3-'), 64)
    const createMs = now() - t0
    try {
      const prefix = ctx.txnPrefix('fo-')
      const keys = streams.map((s) => s.key)
      const trials: OneEventTrial[] = []
      let cpu0: CpuSnapshot | undefined
      let calls0 = new Map<string, number>()
      for (let j = 0; j <= warmTrials; j++) {
        if (j === 1) {
          cpu0 = snapshot(ctx.pids())
          calls0 = await commandCalls(ctx.redis.client)
        }
        trials.push(
          await oneEventTrial(ctx.receivers, ctx.emitter, makeEvent(`${prefix}${j}`, j), STREAMS),
        )
        await new Promise((r) => setTimeout(r, 100))
      }
      const cpu = cpuBetween(cpu0!, snapshot(ctx.pids()), {
        count: warmTrials * STREAMS,
        unit: 'SET',
      })
      const redisCommands = commandsPer(
        calls0,
        await commandCalls(ctx.redis.client),
        warmTrials * STREAMS,
      )
      const all = await ctx.receivers.collect({
        txnPrefix: prefix,
        expectKeys: keys,
        expectTxns: trials.map((t) => t.txn),
      })
      const cold = trials[0]!
      const warm = trials.slice(1)
      const warmLast = warm.map((t) => t.lastMs)
      const med = median(warmLast)
      const worst = Math.max(...warmLast)
      const lossNote =
        all.missing > 0 || all.failures > 0
          ? `LOSS: ${all.missing} missing, ${all.failures} failed verification`
          : undefined
      const fig = (name: string, value: number, target?: Figure['target']): Figure => ({
        name,
        value,
        unit: 'ms',
        ratio: { kind: 'batch', sets: STREAMS },
        ...(target ? { target } : {}),
        ...(lossNote ? { note: lossNote } : {}),
      })
      return {
        status: 'ok',
        figures: [
          fig(`last SET, warm median of ${warm.length}`, med, {
            text: `≤ ${TARGET_MS} ms`,
            pass: med <= TARGET_MS && all.missing === 0,
          }),
          fig(`last SET, warm max`, worst),
          fig('last SET, cold (first event)', cold.lastMs),
          fig('first SET, warm median', median(warm.map((t) => t.firstMs))),
        ],
        details: {
          streams: STREAMS,
          sink_ports: ctx.receivers.ports.length,
          stream_create_ms: createMs,
          trials,
          cpu_warm_trials: cpu,
          redis_commands_per_set: redisCommands,
          received: {
            distinct: all.distinct,
            duplicates: all.duplicates,
            missing: all.missing,
            missing_sample: all.missingSample,
            unexpected: all.unexpected,
            other: all.other,
            verify_failures: all.failures,
          },
        },
      }
    } finally {
      await deleteStreams(
        ctx,
        streams.map((s) => s.streamId),
        64,
      )
    }
  },
}
