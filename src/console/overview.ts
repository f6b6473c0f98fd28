/**
 * The console's Overview figures, from this process's metrics registry (the same numbers `/metrics`
 * exposes): counters since the process started, event→delivery quantiles estimated from the delivery
 * histogram, and the shared gauges (outbox depth, dead letters, streams by status). The console turns
 * two snapshots into rates.
 */
import type { Metrics } from '../ops/metrics.js'
import type { Readiness } from '../ops/health.js'
import type { Overview } from './overview-types.js'

export type { Overview }

type MetricJson = {
  name: string
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[]
}

/** histogram_quantile over cumulative buckets: linear within the bucket that holds the rank. */
export function bucketQuantile(
  q: number,
  buckets: { le: number; count: number }[],
): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.le - b.le)
  const total = sorted.at(-1)?.count ?? 0
  if (total === 0) return undefined
  const rank = q * total
  let lower = 0
  let below = 0
  for (const bucket of sorted) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return lower
      const inBucket = bucket.count - below
      return inBucket === 0 ? bucket.le : lower + ((bucket.le - lower) * (rank - below)) / inBucket
    }
    lower = bucket.le
    below = bucket.count
  }
  return lower
}

export async function overviewSnapshot(
  metrics: Metrics,
  ready: () => Promise<Readiness>,
): Promise<Overview> {
  const [json, readiness] = await Promise.all([
    metrics.registry.getMetricsAsJSON() as Promise<MetricJson[]>,
    ready(),
  ])
  const byName = new Map(json.map((m) => [m.name, m.values]))
  const sum = (
    name: string,
    filter: (labels: Record<string, string | number>) => boolean = () => true,
  ) =>
    (byName.get(name) ?? [])
      .filter((v) => filter(v.labels))
      .reduce((total, v) => total + v.value, 0)
  const outcome =
    (...names: string[]) =>
    (labels: Record<string, string | number>) =>
      names.includes(String(labels.outcome))
  const streams: Record<string, number> = {}
  for (const v of byName.get('ssf_broker_streams') ?? []) streams[String(v.labels.status)] = v.value
  const buckets = (byName.get('ssf_broker_event_delivery_seconds') ?? [])
    .filter((v) => v.metricName?.endsWith('_bucket'))
    .map((v) => ({ le: v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), count: v.value }))
  const toMs = (seconds: number | undefined) =>
    seconds === undefined ? undefined : Math.round(seconds * 1000 * 10) / 10
  const p50 = toMs(bucketQuantile(0.5, buckets))
  const p99 = toMs(bucketQuantile(0.99, buckets))
  return {
    at: Date.now(),
    ready: readiness.ready,
    checks: readiness.checks,
    ingested_total: sum('ssf_broker_events_ingested_total'),
    minted_total: sum('ssf_broker_sets_minted_total'),
    delivered_total:
      sum('ssf_broker_push_attempts_total', outcome('delivered')) +
      sum('ssf_broker_poll_acknowledged_total'),
    failed_total: sum('ssf_broker_push_attempts_total', outcome('failed', 'dead_letter')),
    retries_total: sum('ssf_broker_push_attempts_total', outcome('retry')),
    outbox_sets: sum('ssf_broker_outbox_sets'),
    dead_letters: sum('ssf_broker_dead_letters'),
    streams,
    delivery_latency_ms: {
      count: buckets.find((b) => !Number.isFinite(b.le))?.count ?? 0,
      ...(p50 !== undefined ? { p50 } : {}),
      ...(p99 !== undefined ? { p99 } : {}),
    },
  }
}
