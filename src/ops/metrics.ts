/**
 * Prometheus metrics of one broker process (prom-client, its own registry).
 *
 * Counters and histograms count what this process did, from the activity bus; Prometheus sums them over
 * processes. Gauges of shared state (outbox depth, dead letters, streams by status) are read from Redis
 * through injected providers, so every process reports the same values; they are cached for a few
 * seconds so a scrape stays cheap, and a scrape never waits long on an unreachable Redis (the last values
 * are kept). No label takes unbounded values: no stream ids, subjects or jtis.
 *
 * With SSF_BROKER_PROCESSES > 1 the processes share a port; the one a scrape reaches answers for all of
 * them (cluster-metrics.ts), so one scrape target per machine is correct.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Activity } from '../observe/activity.js'
import { clusterExposition } from './cluster-metrics.js'

export interface StateGaugeProviders {
  /** SETs waiting for delivery, over all streams. */
  outboxSets(): Promise<number>
  deadLetters(): Promise<number>
  /** Stream count per status (`enabled`, `paused`, `disabled`). */
  streamsByStatus(): Promise<Record<string, number>>
}

export const STREAM_STATUSES = ['enabled', 'paused', 'disabled'] as const
const STATE_CACHE_MS = 5000
const STATE_TIMEOUT_MS = 1000

/** Seconds, from 5 ms to 5 minutes: deliveries are expected in milliseconds, retries take minutes. */
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class Metrics {
  readonly registry = new Registry()
  readonly ingested: Counter<'type'>
  readonly minted: Counter
  readonly pushAttempts: Counter<'outcome'>
  readonly pollAcks: Counter
  readonly dropped: Counter
  readonly shed: Counter
  readonly upstreamEvents: Counter<'upstream'>
  readonly deliverySeconds: Histogram
  readonly pushSeconds: Histogram
  readonly httpRequests: Counter<'method' | 'route' | 'status'>
  readonly httpSeconds: Histogram<'method' | 'route'>
  #unsubscribe: (() => void)[] = []
  readonly #exposition: () => Promise<string>

  /**
   * `ready`: the readiness verdict (as /readyz), exported as ssf_broker_ready for alerting; `loopLagMs`:
   * the smoothed event-loop lag that admission control of `POST /events` compares with its limit.
   */
  constructor(
    activity: Activity,
    state: StateGaugeProviders,
    ready?: () => Promise<boolean>,
    loopLagMs?: () => number,
  ) {
    const registers = [this.registry]
    this.#exposition = clusterExposition(this.registry) ?? (() => this.registry.metrics())
    collectDefaultMetrics({ register: this.registry })
    this.ingested = new Counter({
      name: 'ssf_broker_events_ingested_total',
      help: 'Events acknowledged to emitters, by event type URI.',
      labelNames: ['type'],
      registers,
    })
    this.minted = new Counter({
      name: 'ssf_broker_sets_minted_total',
      help: 'SETs signed and queued for a stream.',
      registers,
    })
    this.pushAttempts = new Counter({
      name: 'ssf_broker_push_attempts_total',
      help: 'Push delivery attempts by outcome: delivered, retry (tried again later), failed, dead_letter.',
      labelNames: ['outcome'],
      registers,
    })
    this.pollAcks = new Counter({
      name: 'ssf_broker_poll_acknowledged_total',
      help: 'SETs acknowledged by poll receivers.',
      registers,
    })
    this.dropped = new Counter({
      name: 'ssf_broker_sets_dropped_total',
      help: "SETs dropped because a stream's backlog was full.",
      registers,
    })
    this.shed = new Counter({
      name: 'ssf_broker_events_shed_total',
      help: 'Events of POST /events requests refused with 503 overloaded while the broker was at capacity (not acknowledged; emitters retry).',
      registers,
    })
    // Upstream ids label it: upstreams are few, registered by an operator.
    this.upstreamEvents = new Counter({
      name: 'ssf_broker_upstream_events_total',
      help: 'Events received from an upstream transmitter and ingested, by upstream id.',
      labelNames: ['upstream'],
      registers,
    })
    this.deliverySeconds = new Histogram({
      name: 'ssf_broker_event_delivery_seconds',
      help: "Time from the ingest acknowledgement to the receiver's 2xx (push) or acknowledgement (poll).",
      buckets: DELIVERY_BUCKETS,
      registers,
    })
    this.pushSeconds = new Histogram({
      name: 'ssf_broker_push_duration_seconds',
      help: 'Duration of one push request.',
      buckets: HTTP_BUCKETS,
      registers,
    })
    this.httpRequests = new Counter({
      name: 'ssf_broker_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    })
    this.httpSeconds = new Histogram({
      name: 'ssf_broker_http_request_duration_seconds',
      help: 'HTTP request duration until the response headers, by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: HTTP_BUCKETS,
      registers,
    })
    for (const outcome of ['delivered', 'retry', 'failed', 'dead_letter'])
      this.pushAttempts.inc({ outcome }, 0)

    const cached = cachedState(state)
    new Gauge({
      name: 'ssf_broker_outbox_sets',
      // Shared state: the same value in every process, so a machine's total is its maximum, not a sum.
      aggregator: 'max',
      help: 'SETs waiting for delivery, over all streams (shared state, read from Redis).',
      registers,
      async collect() {
        const s = await cached()
        if (s.outboxSets !== undefined) this.set(s.outboxSets)
      },
    })
    new Gauge({
      name: 'ssf_broker_dead_letters',
      // Shared state: the same value in every process, so a machine's total is its maximum, not a sum.
      aggregator: 'max',
      help: 'SETs in the dead-letter list (shared state, read from Redis).',
      registers,
      async collect() {
        const s = await cached()
        if (s.deadLetters !== undefined) this.set(s.deadLetters)
      },
    })
    new Gauge({
      name: 'ssf_broker_streams',
      // Shared state: the same value in every process, so a machine's total is its maximum, not a sum.
      aggregator: 'max',
      help: 'Streams by status (shared state, read from Redis).',
      labelNames: ['status'],
      registers,
      async collect() {
        const s = await cached()
        if (s.streams === undefined) return
        for (const status of new Set([...STREAM_STATUSES, ...Object.keys(s.streams)]))
          this.set({ status }, s.streams[status] ?? 0)
      },
    })

    if (loopLagMs)
      new Gauge({
        name: 'ssf_broker_admission_loop_lag_seconds',
        // One process lagging is what matters: its requests are the ones refused.
        aggregator: 'max',
        help: "This process's event-loop lag, smoothed, as admission control of POST /events reads it (SSF_BROKER_ADMISSION_LAG_MS).",
        registers,
        collect() {
          this.set(loopLagMs() / 1000)
        },
      })
    new Gauge({
      name: 'ssf_broker_ready',
      aggregator: 'min',
      help: '1 when this process is ready (Redis answers, the delivery loop runs), else 0; as GET /readyz.',
      registers,
      async collect() {
        this.set(ready ? ((await ready().catch(() => false)) ? 1 : 0) : 1)
      },
    })

    this.#unsubscribe.push(
      activity.on('ingested', (e) => this.ingested.inc({ type: e.type })),
      activity.on('minted', () => this.minted.inc()),
      activity.on('delivered', (e) => {
        this.deliverySeconds.observe(Math.max(0, e.latency_ms) / 1000)
        if (e.method === 'push') this.pushAttempts.inc({ outcome: 'delivered' })
        else this.pollAcks.inc()
        if (e.push_ms !== undefined) this.pushSeconds.observe(e.push_ms / 1000)
      }),
      activity.on('failed', (e) => {
        this.pushAttempts.inc({ outcome: e.outcome })
        if (e.push_ms !== undefined) this.pushSeconds.observe(e.push_ms / 1000)
      }),
      activity.on('dropped', (e) => this.dropped.inc(e.count)),
      activity.on('shed', (e) => this.shed.inc(e.events)),
      activity.on('upstream', (e) => this.upstreamEvents.inc({ upstream: e.upstream_id })),
    )
  }

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) })
    this.httpSeconds.observe({ method, route }, seconds)
  }

  contentType(): string {
    return this.registry.contentType
  }

  /** This process's metrics; in a cluster worker, the whole machine's (cluster-metrics.ts). */
  exposition(): Promise<string> {
    return this.#exposition()
  }

  close(): void {
    for (const off of this.#unsubscribe) off()
    this.registry.clear()
  }
}

interface StateSnapshot {
  outboxSets?: number
  deadLetters?: number
  streams?: Record<string, number>
}

/** One Redis read per STATE_CACHE_MS however many gauges and scrapes ask; failures keep the last values. */
function cachedState(state: StateGaugeProviders): () => Promise<StateSnapshot> {
  let last: StateSnapshot = {}
  let at = 0
  let pending: Promise<StateSnapshot> | undefined
  return () => {
    if (Date.now() - at < STATE_CACHE_MS) return Promise.resolve(last)
    pending ??= (async () => {
      const [outboxSets, deadLetters, streams] = await Promise.allSettled([
        withTimeout(state.outboxSets()),
        withTimeout(state.deadLetters()),
        withTimeout(state.streamsByStatus()),
      ])
      const next: StateSnapshot = { ...last }
      if (outboxSets.status === 'fulfilled') next.outboxSets = outboxSets.value
      if (deadLetters.status === 'fulfilled') next.deadLetters = deadLetters.value
      if (streams.status === 'fulfilled') next.streams = streams.value
      const allOk =
        outboxSets.status === 'fulfilled' &&
        deadLetters.status === 'fulfilled' &&
        streams.status === 'fulfilled'
      last = next
      // After a failure, try again at the next scrape rather than serving stale values for the full period.
      at = allOk ? Date.now() : 0
      return next
    })().finally(() => (pending = undefined))
    return pending
  }
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), STATE_TIMEOUT_MS)
    }),
  ]).finally(() => clearTimeout(timer))
}
