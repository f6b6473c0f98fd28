/**
 * Where a backlog sits while a scenario runs, read from the broker's Redis (read-only): ingest jobs not
 * yet fanned out (the BullMQ `fanout` queue: waiting + active), and SETs queued in the outboxes of the
 * given streams. Sampled every 100 ms; the maxima say which stage fell behind.
 */
import type { Redis } from 'ioredis'

const WAIT = 'ssf:bull:fanout:wait'
const ACTIVE = 'ssf:bull:fanout:active'
const outboxKey = (sid: string) => `ssf:ob:${sid}:q`

export interface ProbeResult {
  samples: number
  max_fanout_jobs_waiting: number
  max_fanout_jobs_active: number
  max_outbox_sets: number
}

export function startProbe(redis: Redis, streamIds: readonly string[], everyMs = 100, maxMs = 600_000): { stop(): Promise<ProbeResult> } {
  const result: ProbeResult = { samples: 0, max_fanout_jobs_waiting: 0, max_fanout_jobs_active: 0, max_outbox_sets: 0 }
  let stopped = false
  const deadline = Date.now() + maxMs
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      try {
        const p = redis.pipeline().llen(WAIT).llen(ACTIVE)
        for (const sid of streamIds.slice(0, 100)) p.zcard(outboxKey(sid))
        const res = (await p.exec()) ?? []
        const n = res.map(([, v]) => (typeof v === 'number' ? v : 0))
        result.samples++
        result.max_fanout_jobs_waiting = Math.max(result.max_fanout_jobs_waiting, n[0] ?? 0)
        result.max_fanout_jobs_active = Math.max(result.max_fanout_jobs_active, n[1] ?? 0)
        result.max_outbox_sets = Math.max(result.max_outbox_sets, n.slice(2).reduce((s, v) => s + v, 0))
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

/** Calls per Redis command so far (INFO commandstats). */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats')
  const calls = new Map<string, number>()
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]))
  return calls
}

/** Redis commands issued between two readings, per unit of work, most frequent first (the probe's own excluded approximately). */
export function commandsPer(a: Map<string, number>, b: Map<string, number>, units: number): { total_per_unit: number; top: Record<string, number> } {
  const diff: [string, number][] = []
  for (const [cmd, n] of b) {
    const d = n - (a.get(cmd) ?? 0)
    if (d > 0 && cmd !== 'info') diff.push([cmd, d])
  }
  diff.sort((x, y) => y[1] - x[1])
  const per = (n: number) => Number((n / Math.max(1, units)).toFixed(2))
  return { total_per_unit: per(diff.reduce((s, [, n]) => s + n, 0)), top: Object.fromEntries(diff.slice(0, 12).map(([c, n]) => [c, per(n)])) }
}
