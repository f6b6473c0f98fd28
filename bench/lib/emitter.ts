/**
 * The load generator: an emitter posting events to `POST /events` over undici keep-alive, one event per
 * request at a fixed (open-loop) rate for latency, or in batches of up to 1000 for throughput.
 *
 * Like a well-behaved emitter, it waits out a 503 `overloaded` (the broker at capacity) for its
 * `Retry-After` and posts again; latencies are timed from the first attempt, so the wait counts.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'

export const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Requests answered 503 `overloaded` and posted again, over the whole run (the run reports each scenario's). */
export const overloaded = { requests: 0, events: 0 }
/** How long one request is retried for before its 503 is given to the caller. */
const OVERLOADED_GIVE_UP_MS = 120_000

/** Distinct subjects cycle over this many users: the broker sends SETs about one subject one at a time. */
export const SUBJECT_POOL = 10_000

export function makeEvent(txn: string, i: number): Record<string, unknown> {
  return {
    type: 'caep/session-revoked',
    subject: { format: 'email', email: `user${i % SUBJECT_POOL}@bench.example.com` },
    txn,
    event: {
      initiating_entity: 'policy',
      reason_admin: { en: 'Session revoked by ssf-broker benchmark' },
    },
  }
}

export class Emitter {
  readonly pool: Pool
  constructor(
    base: string,
    private readonly token: string,
    connections = 64,
  ) {
    this.pool = new Pool(base, {
      connections,
      pipelining: 1,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
      keepAliveTimeout: 60_000,
    })
  }

  /** One event alone (its own body) or a batch `{events}`; resolves with the HTTP status. */
  async post(events: Record<string, unknown>[]): Promise<number> {
    const body = events.length === 1 ? JSON.stringify(events[0]) : JSON.stringify({ events })
    const giveUpAt = now() + OVERLOADED_GIVE_UP_MS
    for (;;) {
      const res = await this.pool.request({
        method: 'POST',
        path: '/events',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      })
      const text = await res.body.text()
      if (res.statusCode !== 503 || now() > giveUpAt) return res.statusCode
      let code: unknown
      try {
        code = (JSON.parse(text) as { error?: unknown }).error
      } catch {
        return res.statusCode
      }
      const wait = Number(res.headers['retry-after'])
      if (code !== 'overloaded' || !Number.isFinite(wait)) return res.statusCode
      overloaded.requests++
      overloaded.events += events.length
      await sleep(wait * 1000)
    }
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

export interface RateRun {
  /** Actual send time of each accepted event's request, by txn. */
  sentAt: Map<string, number>
  offered: number
  accepted: number
  errors: number
  statuses: Record<string, number>
  /** How far behind schedule the latest send was (ms): > a few ms means the generator could not keep up. */
  maxLagMs: number
  /** Events sent / time from first to last send. */
  achievedRate: number
  /** Sending stopped early because it fell more than `giveUpLagMs` behind schedule. */
  saturated: boolean
  durationMs: number
}

/**
 * Open loop: event i is due at start + i/rate; each is posted alone. At most `maxInFlight` requests are
 * open; an event that finds them all busy waits (and that lag is reported).
 */
export async function sendAtRate(
  emitter: Emitter,
  opts: {
    rate: number
    durationMs: number
    txnPrefix: string
    firstIndex?: number
    maxInFlight?: number
    record?: (txn: string) => boolean
    giveUpLagMs?: number
  },
): Promise<RateRun> {
  const total = Math.max(1, Math.round((opts.rate * opts.durationMs) / 1000))
  const maxInFlight = opts.maxInFlight ?? 512
  const sentAt = new Map<string, number>()
  const statuses: Record<string, number> = {}
  let inFlight = 0
  let accepted = 0
  let errors = 0
  let maxLagMs = 0
  let lastSend = 0
  const pending = new Set<Promise<void>>()
  const start = now()
  const hardStop = start + opts.durationMs * 3 + 10_000
  const giveUpLagMs = opts.giveUpLagMs ?? Infinity
  let saturated = false
  let i = 0
  while (i < total) {
    const t = now()
    if (t > hardStop) break
    // The broker cannot take the rate: stop offering rather than queue up minutes of backlog.
    if (t - (start + (i * 1000) / opts.rate) > giveUpLagMs) {
      saturated = true
      break
    }
    const due = Math.min(total, Math.floor(((t - start) * opts.rate) / 1000) + 1)
    while (i < due && inFlight < maxInFlight) {
      const txn = `${opts.txnPrefix}${i}`
      const event = makeEvent(txn, (opts.firstIndex ?? 0) + i)
      const sched = start + (i * 1000) / opts.rate
      const sent = now()
      maxLagMs = Math.max(maxLagMs, sent - sched)
      lastSend = sent
      inFlight++
      const p: Promise<void> = emitter.post([event]).then(
        (status) => {
          statuses[status] = (statuses[status] ?? 0) + 1
          if (status === 202) {
            accepted++
            if (opts.record?.(txn) ?? true) sentAt.set(txn, sent)
          } else errors++
        },
        (err: unknown) => {
          errors++
          const k = (err as { code?: string }).code ?? 'error'
          statuses[k] = (statuses[k] ?? 0) + 1
        },
      )
      p.finally(() => {
        inFlight--
        pending.delete(p)
      })
      pending.add(p)
      i++
    }
    // Sleep until the next event is due (timers are ~1 ms coarse; never spin).
    const nextDue = start + (i * 1000) / opts.rate
    await sleep(Math.max(0, Math.min(50, nextDue - now() - 0.5)))
  }
  await Promise.all(pending)
  const durationMs = lastSend - start
  return {
    sentAt,
    offered: i,
    accepted,
    errors,
    statuses,
    maxLagMs,
    achievedRate: durationMs > 0 ? ((i - 1) * 1000) / durationMs : i,
    durationMs,
    saturated,
  }
}
