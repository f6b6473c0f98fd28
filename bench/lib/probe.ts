/**
 * Where a backlog sits while a scenario runs, read from the broker's Redis (read-only): ingest entries not
 * yet fanned out (the ingest log partitions), and SETs queued in the lanes of the given streams. Sampled
 * every 100 ms; the maxima say which stage fell behind.
 *
 * Also: Redis commands per unit of work from INFO commandstats, less what the same processes issue idle.
 */
import type { Redis } from 'ioredis'
import { INGEST_PARTITIONS, createKeyspace } from '../../src/redis/keyspace.js'

const keyspace = createKeyspace()

export interface ProbeResult {
  samples: number
  max_ingest_entries_waiting: number
  max_outbox_sets: number
}

export function startProbe(
  redis: Redis,
  streamIds: readonly string[],
  everyMs = 100,
  maxMs = 600_000,
): { stop(): Promise<ProbeResult> } {
  const result: ProbeResult = { samples: 0, max_ingest_entries_waiting: 0, max_outbox_sets: 0 }
  let stopped = false
  const deadline = Date.now() + maxMs
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const p = redis.pipeline()
        for (let k = 0; k < INGEST_PARTITIONS; k++) p.xlen(keyspace.ingest.partition(k))
        for (const sid of streamIds.slice(0, 100))
          p.xlen(keyspace.stream(sid).control)
            .xlen(keyspace.stream(sid).lane)
            .xlen(keyspace.stream(sid).priority)
        const res = (await p.exec()) ?? []
        const n = res.map(([, v]) => (typeof v === 'number' ? v : 0))
        const sum = (xs: number[]) => xs.reduce((s, v) => s + v, 0)
        result.samples++
        result.max_ingest_entries_waiting = Math.max(
          result.max_ingest_entries_waiting,
          sum(n.slice(0, INGEST_PARTITIONS)),
        )
        result.max_outbox_sets = Math.max(result.max_outbox_sets, sum(n.slice(INGEST_PARTITIONS)))
      } catch {
        // a probe must never fail the run
      }
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return result
    },
  }
}

/** The entry of commandCalls() that counts client writes Redis has read, not a command. */
export const READS = '(reads)'

/**
 * Calls per Redis command so far (INFO commandstats), and under READS the client writes Redis has read
 * (INFO stats total_reads_processed): about one per round trip or auto-pipelined flush of a client, the
 * unit that costs an event-loop wake-up on both sides.
 */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const [info, stats] = await Promise.all([redis.info('commandstats'), redis.info('stats')])
  const calls = new Map<string, number>()
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]))
  const reads = /^total_reads_processed:(\d+)/m.exec(stats)
  if (reads) calls.set(READS, Number(reads[1]))
  return calls
}

/** Commands per second per command while nothing is sent (timers, lease renewals, the probe if it runs). */
export interface IdleRate {
  perSec: Map<string, number>
  total_per_sec: number
  measured_ms: number
}

/** Reads the command counts `ms` apart with nothing else going on. */
export async function idleCommandRate(
  read: () => Promise<Map<string, number>>,
  ms: number,
): Promise<IdleRate> {
  const t0 = performance.now()
  const a = await read()
  await new Promise((r) => setTimeout(r, ms))
  const b = await read()
  const wall = performance.now() - t0
  const perSec = new Map<string, number>()
  let total = 0
  for (const [cmd, n] of b) {
    const d = n - (a.get(cmd) ?? 0)
    if (d > 0 && cmd !== 'info') {
      perSec.set(cmd, (d * 1000) / wall)
      if (cmd !== READS) total += (d * 1000) / wall
    }
  }
  return { perSec, total_per_sec: Number(total.toFixed(1)), measured_ms: Math.round(wall) }
}

/**
 * Redis commands issued between two readings, per unit of work, most frequent first (INFO itself
 * excluded). With `idle`, what the same processes issue idle over `idle.wallMs` is subtracted first.
 */
export function commandsPer(
  a: Map<string, number>,
  b: Map<string, number>,
  units: number,
  idle?: { rate: IdleRate; wallMs: number },
): {
  total_per_unit: number
  top: Record<string, number>
  idle_subtracted?: number
  round_trips_per_unit?: number
} {
  const diff: [string, number][] = []
  let subtracted = 0
  let reads: number | undefined
  for (const [cmd, n] of b) {
    let d = n - (a.get(cmd) ?? 0)
    if (idle) {
      const less = Math.min(d, ((idle.rate.perSec.get(cmd) ?? 0) * idle.wallMs) / 1000)
      d -= less
      if (cmd !== READS) subtracted += less
    }
    if (cmd === READS) reads = Math.max(0, d)
    else if (d > 0 && cmd !== 'info') diff.push([cmd, d])
  }
  diff.sort((x, y) => y[1] - x[1])
  const per = (n: number) => Number((n / Math.max(1, units)).toFixed(2))
  return {
    total_per_unit: per(diff.reduce((s, [, n]) => s + n, 0)),
    top: Object.fromEntries(diff.slice(0, 12).map(([c, n]) => [c, per(n)])),
    ...(idle ? { idle_subtracted: Math.round(subtracted) } : {}),
    ...(reads !== undefined ? { round_trips_per_unit: per(reads) } : {}),
  }
}
