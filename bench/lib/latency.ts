/**
 * Latency under steady load, shared by scenario 1 (push) and scenario 5 (poll): events posted one per
 * request at a fixed rate about distinct subjects, each timed from the moment its ingest request was
 * sent to the moment its SET had arrived at the receiver. A SET that never arrives counts as infinitely
 * late, so loss can only make the percentiles worse.
 */
import { cpuBetween, snapshot } from './cpu.js'
import { sendAtRate } from './emitter.js'
import { commandCalls, commandsPer, startProbe } from './probe.js'
import { summarize } from './stats.js'
import type { BenchContext, Figure } from './types.js'

export interface Sink {
  key: string
  streamId: string
  teardown(): Promise<void>
}

export interface LatencyRun {
  rate: number
  figures: Figure[]
  details: Record<string, unknown>
  lost: number
}

export async function latencyAtRate(
  ctx: BenchContext,
  rate: number,
  setup: (tag: string) => Promise<Sink>,
  target?: { p99Ms: number },
  /** What takes the events in, as the notes name it. */
  taker = 'broker',
): Promise<LatencyRun> {
  const warmMs = ctx.quick ? 300 : 1500
  const measureMs = ctx.quick ? 1000 : 8000
  const drainMs = ctx.quick ? 5000 : 20_000
  // When the broker cannot take the rate, sending stops once this far behind schedule.
  const giveUpLagMs = ctx.quick ? 500 : 2000
  await ctx.receivers.reset()
  const sink = await setup(`r${rate}`)
  try {
    // Warm-up: connections, JIT, the stream's first claim. Not measured.
    const warmPrefix = ctx.txnPrefix(`warm${rate}-`)
    const warm = await sendAtRate(ctx.emitter, {
      rate,
      durationMs: warmMs,
      txnPrefix: warmPrefix,
      firstIndex: 500_000,
      giveUpLagMs,
    })
    await waitForTxns(ctx, warmPrefix, [sink.key], warm.accepted, drainMs)

    const prefix = ctx.txnPrefix(`lat${rate}-`)
    const cpu0 = snapshot(ctx.pids())
    const calls0 = await commandCalls(ctx.redis.client)
    const probe = startProbe(ctx.redis.client, [sink.streamId])
    const sent = await sendAtRate(ctx.emitter, {
      rate,
      durationMs: measureMs,
      txnPrefix: prefix,
      giveUpLagMs,
    })
    const drained = await waitForTxns(ctx, prefix, [sink.key], sent.accepted, drainMs)
    const cpu = cpuBetween(cpu0, snapshot(ctx.pids()), { count: sent.accepted, unit: 'event' })
    const backlog = await probe.stop()
    const redisCommands = commandsPer(calls0, await commandCalls(ctx.redis.client), sent.accepted)
    const got = await ctx.receivers.collect({
      txnPrefix: prefix,
      expectKeys: [sink.key],
      expectTxns: [...sent.sentAt.keys()],
      byTxn: true,
    })
    const latencies: number[] = []
    for (const [txn, at] of sent.sentAt) {
      const arrival = got.byTxn?.[txn]
      latencies.push(arrival ? arrival.first - at : Infinity)
    }
    const s = summarize(latencies)
    const lost = got.missing
    const notes: string[] = []
    if (sent.saturated)
      notes.push(
        `${taker} saturated: sending fell ${giveUpLagMs / 1000} s behind, ${sent.offered} events at ${Math.round(sent.achievedRate)}/s`,
      )
    if (lost > 0)
      notes.push(
        `${lost} of ${sent.accepted} SETs lost or later than ${drainMs / 1000} s (counted as infinite)`,
      )
    const note = notes.length > 0 ? notes.join('; ') : undefined
    const fig = (name: string, value: number, t?: Figure['target']): Figure => ({
      name: `${rate}/s ${name}`,
      value,
      unit: 'ms',
      ratio: { kind: 'latency' },
      ...(t ? { target: t } : {}),
      ...(note ? { note } : {}),
    })
    const figures = [
      fig('p50', s.p50),
      fig('p95', s.p95),
      fig(
        'p99',
        s.p99,
        target
          ? { text: `p99 ≤ ${target.p99Ms} ms`, pass: s.p99 <= target.p99Ms && lost === 0 }
          : undefined,
      ),
      fig('max', s.max),
    ]
    return {
      rate,
      lost,
      figures,
      details: {
        rate,
        warmup_ms: warmMs,
        measured_ms: measureMs,
        offered: sent.offered,
        accepted: sent.accepted,
        ingest_errors: sent.errors,
        ingest_statuses: sent.statuses,
        achieved_rate: sent.achievedRate,
        saturated: sent.saturated,
        give_up_lag_ms: giveUpLagMs,
        max_send_lag_ms: sent.maxLagMs,
        drained_within_timeout: drained,
        cpu,
        backlog,
        redis_commands_per_event: redisCommands,
        delivered_rate:
          got.last !== null && got.first !== null && got.last > got.first
            ? ((got.distinct - 1) * 1000) / (got.last - got.first)
            : null,
        latency_ms: s,
        received: {
          distinct: got.distinct,
          duplicates: got.duplicates,
          missing: got.missing,
          missing_sample: got.missingSample,
          other: got.other,
          verify_failures: got.failures,
          verify_failure_sample: got.failureSample,
          poll_errors: got.pollErrors,
          poll_error_sample: got.pollErrorSample,
        },
      },
    }
  } finally {
    await sink.teardown()
  }
}

/** Waits (bounded) until every expected SET of `prefix` arrived on `keys`; true if all did. */
export async function waitForTxns(
  ctx: BenchContext,
  prefix: string,
  keys: string[],
  perKey: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  const expected = perKey * keys.length
  for (;;) {
    const got = await ctx.receivers.collect({ txnPrefix: prefix })
    if (got.distinct >= expected) return true
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, expected - got.distinct > 1000 ? 200 : 20))
  }
}
