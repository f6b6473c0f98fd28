/**
 * Sustained delivery rate at a fan-out, shared by scenario 2 (one broker on one Redis) and scenario 11
 * (1-3 brokers on a Redis Cluster).
 *
 * Closed loop with a bounded backlog: the emitters post batches (`{"events": [...]}`, round-robin over the
 * brokers) whenever fewer than `window` SETs are posted but not yet received, so the brokers always have
 * work and never an unbounded queue. The rate is SETs received per second between the end of the warm-up
 * and the end of posting; then posting stops, everything drains, and every expected (stream, event) pair
 * must have arrived. Redis commands per SET are counted over the whole run with the idle commands of the
 * same processes (measured just before, streams in place) subtracted; broker CPU per SET over the
 * measurement window.
 */
import { cpuBetween, snapshot } from './cpu.js'
import { makeEvent, now, type Emitter } from './emitter.js'
import { commandsPer, idleCommandRate } from './probe.js'
import type { ProbeResult } from './probe.js'
import type { Receivers } from './receivers.js'
import type { PushStream } from './streams.js'
import type { Figure } from './types.js'

export interface FanoutRig {
  quick: boolean
  receivers: Receivers
  emitters: Emitter[]
  createStreams(n: number, keyPrefix: string): Promise<PushStream[]>
  deleteStreams(ids: string[]): Promise<unknown>
  commandCalls(): Promise<Map<string, number>>
  /** Processes whose CPU is accounted; those named `broker...` (or `underTest...`) are the ones measured. */
  pids(): Record<string, number>
  /** Name prefix of the processes whose CPU per SET is reported (default `broker`). */
  underTest?: string
  txnPrefix(tag: string): string
  probe?(streamIds: string[]): { stop(): Promise<ProbeResult> }
}

export interface FanoutRun {
  rate: number
  lost: number
  verifyFailures: number
  redisCommandsPerSet: number
  cpuMsPerSet: number
  figures: Figure[]
  details: Record<string, unknown>
}

/** Events per batch: about 500-1000 SETs per ingest request. */
const batchFor = (fanout: number) => (fanout === 1 ? 500 : fanout <= 10 ? 100 : 10)

export async function measureFanout(
  rig: FanoutRig,
  fanout: number,
  label = `fan-out ${fanout}`,
): Promise<FanoutRun> {
  const warmMs = rig.quick ? 700 : 3000
  const measureMs = rig.quick ? 1500 : 10_000
  const drainMs = rig.quick ? 10_000 : 30_000
  const idleMs = rig.quick ? 500 : 1500
  const batch = batchFor(fanout)
  const window = Math.max(3 * batch * fanout, 3000)
  const postsInFlight = Math.max(4, 2 * rig.emitters.length)
  await rig.receivers.reset()
  const streams = await rig.createStreams(fanout, rig.txnPrefix(`f${fanout}-`))
  try {
    const prefix = rig.txnPrefix(`tp${fanout}-`)
    const accepted: string[] = []
    let postedSets = 0
    let received = 0
    let postErrors = 0
    let next = 0
    let turn = 0
    const samples: { t: number; received: number }[] = []
    // Idle commands with the streams in place and the probe running, as during the run.
    const probe = rig.probe?.(streams.map((s) => s.streamId))
    const idle = await idleCommandRate(() => rig.commandCalls(), idleMs)
    const start = now()
    const endAt = start + warmMs + measureMs
    const hardStop = endAt + drainMs + 10_000
    let stop = false

    // Progress from the receiver process every 10 ms.
    const progress = (async () => {
      while (!stop && now() < hardStop) {
        const s = await rig.receivers.stats()
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
        const emitter = rig.emitters[turn++ % rig.emitters.length]!
        try {
          const status = await emitter.post(txns.map((txn, j) => makeEvent(txn, first + j)))
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
    const calls0 = await rig.commandCalls()
    const t0 = now()
    let cpuWarm = snapshot(rig.pids())
    const warmTimer = setTimeout(() => (cpuWarm = snapshot(rig.pids())), warmMs)
    await Promise.all(Array.from({ length: postsInFlight }, poster))
    clearTimeout(warmTimer)
    const cpuEnd = snapshot(rig.pids())
    const postedEnd = now()
    // Drain: everything accepted must arrive.
    const expected = accepted.length * fanout
    while (received < expected && now() < postedEnd + drainMs)
      await new Promise((r) => setTimeout(r, 20))
    stop = true
    await progress
    const backlog = probe ? await probe.stop() : undefined
    const calls1 = await rig.commandCalls()
    const redisCommands = commandsPer(calls0, calls1, expected, { rate: idle, wallMs: now() - t0 })
    const redisCommandsRaw = commandsPer(calls0, calls1, expected)
    const lastSample = samples[samples.length - 1]
    const got = await rig.receivers.collect({
      txnPrefix: prefix,
      expectKeys: streams.map((s) => s.key),
      expectTxns: accepted,
    })

    // Sustained rate: SETs received between the end of the warm-up and the end of posting.
    const at = (t: number) => {
      let best = samples[0]!
      for (const s of samples) if (Math.abs(s.t - t) < Math.abs(best.t - t)) best = s
      return best
    }
    const a = at(start + warmMs)
    const b = at(endAt)
    const rate = b.t > a.t ? ((b.received - a.received) * 1000) / (b.t - a.t) : 0
    const setsMeasured = Math.round((rate * (cpuEnd.at - cpuWarm.at)) / 1000)
    const cpu = cpuBetween(cpuWarm, cpuEnd, { count: setsMeasured, unit: 'SET' })
    let brokerCpuMs = 0
    for (const name of Object.keys(cpuEnd.ms))
      if (name.startsWith(rig.underTest ?? 'broker') && cpuWarm.pids[name] === cpuEnd.pids[name])
        brokerCpuMs += cpuEnd.ms[name]! - (cpuWarm.ms[name] ?? NaN)
    const cpuMsPerSet = setsMeasured > 0 ? brokerCpuMs / setsMeasured : NaN
    const overall = got.last !== null ? (got.distinct * 1000) / (got.last - start) : 0
    const note =
      got.missing > 0 || got.failures > 0
        ? `LOSS: ${got.missing} missing, ${got.failures} failed verification`
        : 'no loss'
    return {
      rate,
      lost: got.missing,
      verifyFailures: got.failures,
      redisCommandsPerSet: redisCommands.total_per_unit,
      cpuMsPerSet,
      figures: [
        {
          name: `${label}: SETs delivered+verified`,
          value: rate,
          unit: '/s',
          ratio: { kind: 'rate' },
          note,
        },
        {
          name: `${label}: events ingested`,
          value: rate / fanout,
          unit: '/s',
          ratio: { kind: 'none' },
        },
      ],
      details: {
        fanout,
        batch_events: batch,
        posts_in_flight: postsInFlight,
        brokers: rig.emitters.length,
        backlog_window_sets: window,
        warmup_ms: warmMs,
        measured_ms: measureMs,
        events_accepted: accepted.length,
        post_errors: postErrors,
        sets_expected: expected,
        sustained_sets_per_sec: rate,
        cpu_during_measurement: cpu,
        cpu_ms_per_set: Number(cpuMsPerSet.toFixed(4)),
        ...(backlog ? { backlog } : {}),
        idle_redis_commands_per_sec: idle.total_per_sec,
        redis_commands_per_set: redisCommands,
        redis_commands_per_set_with_idle: redisCommandsRaw.total_per_unit,
        whole_run_sets_per_sec: overall,
        drain_ms: lastSample ? lastSample.t - postedEnd : null,
        received: {
          distinct: got.distinct,
          duplicates: got.duplicates,
          extra_jti_per_pair: got.extraPerPair,
          missing: got.missing,
          missing_sample: got.missingSample,
          unexpected: got.unexpected,
          other: got.other,
          verify_failures: got.failures,
          verify_failure_sample: got.failureSample,
        },
      },
    }
  } finally {
    await rig.deleteStreams(streams.map((s) => s.streamId))
  }
}
