/**
 * Scenario 2: throughput. The highest sustained rate of SETs delivered and verified at fan-out 1, 10 and
 * 100 push streams, with no loss.
 *
 * Closed loop with a bounded backlog: the emitter posts batches (`{"events": [...]}`) whenever fewer than
 * `window` SETs are posted but not yet received, so the broker always has work and never an unbounded
 * queue. The rate is SETs received per second between the end of the warm-up and the end of the run;
 * then posting stops, everything drains, and every expected (stream, event) pair must have arrived.
 * Target: at fan-out 10, at least 0.35 of the raw HTTP POST rate.
 */
import { cpuBetween, snapshot } from '../lib/cpu.js'
import { makeEvent, now } from '../lib/emitter.js'
import { commandCalls, commandsPer, startProbe } from '../lib/probe.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'

const FANOUTS = [1, 10, 100]
const TARGET = { fanout: 10, ratio: 0.35 }
const POSTS_IN_FLIGHT = 4

/** Events per batch: about 500-1000 SETs per ingest request. */
const batchFor = (fanout: number) => (fanout === 1 ? 500 : fanout === 10 ? 100 : 10)

async function runFanout(ctx: BenchContext, fanout: number): Promise<{ figures: Figure[]; details: Record<string, unknown> }> {
  const warmMs = ctx.quick ? 700 : 3000
  const measureMs = ctx.quick ? 1500 : 10_000
  const drainMs = ctx.quick ? 10_000 : 30_000
  const batch = batchFor(fanout)
  const window = Math.max(3 * batch * fanout, 3000)
  await ctx.receivers.reset()
  const streams = await createPushStreams(ctx, fanout, ctx.txnPrefix(`s2f${fanout}-`))
  try {
    const prefix = ctx.txnPrefix(`tp${fanout}-`)
    const accepted: string[] = []
    let postedSets = 0
    let received = 0
    let postErrors = 0
    let next = 0
    const samples: { t: number; received: number }[] = []
    const start = now()
    const endAt = start + warmMs + measureMs
    const hardStop = endAt + 10_000
    let stop = false

    // Progress from the receiver process every 10 ms.
    const progress = (async () => {
      while (!stop && now() < hardStop) {
        const s = await ctx.receivers.stats()
        received = s.sets
        samples.push({ t: now(), received })
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    progress.catch(() => {}) // awaited below; never an unhandled rejection meanwhile

    const poster = async () => {
      while (now() < endAt) {
        if (postedSets - received > window - batch * fanout) {
          await new Promise((r) => setTimeout(r, 2))
          continue
        }
        const first = next
        next += batch
        const txns = Array.from({ length: batch }, (_, j) => `${prefix}${first + j}`)
        postedSets += batch * fanout
        try {
          const status = await ctx.emitter.post(txns.map((txn, j) => makeEvent(txn, first + j)))
          if (status === 202) accepted.push(...txns)
          else {
            postErrors++
            postedSets -= batch * fanout
          }
        } catch {
          postErrors++
          postedSets -= batch * fanout
        }
      }
    }
    const calls0 = await commandCalls(ctx.redis.client)
    const probe = startProbe(ctx.redis.client, streams.map((s) => s.streamId))
    let cpuWarm = snapshot(ctx.pids())
    const warmTimer = setTimeout(() => (cpuWarm = snapshot(ctx.pids())), warmMs)
    await Promise.all(Array.from({ length: POSTS_IN_FLIGHT }, poster))
    clearTimeout(warmTimer)
    const cpuEnd = snapshot(ctx.pids())
    const postedEnd = now()
    // Drain: everything accepted must arrive.
    const expected = accepted.length * fanout
    while (received < expected && now() < postedEnd + drainMs) await new Promise((r) => setTimeout(r, 20))
    stop = true
    await progress
    const backlog = await probe.stop()
    const redisCommands = commandsPer(calls0, await commandCalls(ctx.redis.client), expected)
    const lastSample = samples[samples.length - 1]
    const got = await ctx.receivers.collect({ txnPrefix: prefix, expectKeys: streams.map((s) => s.key), expectTxns: accepted })

    // Sustained rate: SETs received between the end of the warm-up and the end of posting.
    const at = (t: number) => {
      let best = samples[0]!
      for (const s of samples) if (Math.abs(s.t - t) < Math.abs(best.t - t)) best = s
      return best
    }
    const a = at(start + warmMs)
    const b = at(endAt)
    const rate = b.t > a.t ? ((b.received - a.received) * 1000) / (b.t - a.t) : 0
    const lost = got.missing
    const cpu = cpuBetween(cpuWarm, cpuEnd, { count: Math.round((rate * (cpuEnd.at - cpuWarm.at)) / 1000), unit: 'SET' })
    const overall = got.last !== null ? (got.distinct * 1000) / (got.last - start) : 0
    const target = fanout === TARGET.fanout ? { text: `≥ ${TARGET.ratio} × HTTP POST rate, no loss`, pass: lost === 0 && got.failures === 0, minHttpRatio: TARGET.ratio } : undefined
    const note = lost > 0 || got.failures > 0 ? `LOSS: ${lost} missing, ${got.failures} failed verification` : 'no loss'
    const figures: Figure[] = [
      { name: `fan-out ${fanout}: SETs delivered+verified`, value: rate, unit: '/s', ratio: { kind: 'rate' }, ...(target ? { target } : {}), note },
      { name: `fan-out ${fanout}: events ingested`, value: rate / fanout, unit: '/s', ratio: { kind: 'none' } },
    ]
    return {
      figures,
      details: {
        fanout,
        batch_events: batch,
        posts_in_flight: POSTS_IN_FLIGHT,
        backlog_window_sets: window,
        warmup_ms: warmMs,
        measured_ms: measureMs,
        events_accepted: accepted.length,
        post_errors: postErrors,
        sets_expected: expected,
        sustained_sets_per_sec: rate,
        cpu_during_measurement: cpu,
        backlog,
        redis_commands_per_set: redisCommands,
        whole_run_sets_per_sec: overall,
        drain_ms: lastSample ? lastSample.t - postedEnd : null,
        received: { distinct: got.distinct, duplicates: got.duplicates, extra_jti_per_pair: got.extraPerPair, missing: got.missing, missing_sample: got.missingSample, unexpected: got.unexpected, other: got.other, verify_failures: got.failures, verify_failure_sample: got.failureSample },
      },
    }
  } finally {
    await deleteStreams(ctx, streams.map((s) => s.streamId))
  }
}

export const scenario: Scenario = {
  id: 2,
  key: 'throughput',
  title: 'Throughput, no loss (push, fan-out 1/10/100)',
  async run(ctx) {
    const figures: Figure[] = []
    const runs: Record<string, unknown>[] = []
    for (const fanout of FANOUTS) {
      ctx.log(`  fan-out ${fanout}`)
      const r = await runFanout(ctx, fanout)
      figures.push(...r.figures)
      runs.push(r.details)
    }
    return { status: 'ok', figures, details: { runs } }
  },
}
