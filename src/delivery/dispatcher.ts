/**
 * Push delivery (RFC 8935). Each broker process runs one dispatcher. It claims due streams from
 * `ssf:ready` under a lease, drains each stream's outbox, and renews its leases while it works; when a
 * process dies, its leases lapse and any other process (or its own restart) takes the streams over.
 *
 * Within a stream up to `pushConcurrencyPerStream` SETs are in flight at once, but never two about the
 * same subject: SETs about one subject arrive in the order they were ingested (SSF §8.1.2 ordering for
 * held events). A transient failure backs the whole stream off (the receiver is likely down as a whole);
 * a permanent one dead-letters that SET and delivery goes on.
 *
 * Wake-ups are immediate: a local call from the fan-out in this process, or a Redis pub/sub message from
 * another one. The timer only serves retries and lapsed leases.
 */
import type { Redis } from 'ioredis'
import type { Config } from '../config/config.js'
import type { Logger } from '../lib/log.js'
import { randomId } from '../lib/ids.js'
import type { StreamStore } from '../streams/store.js'
import { isPush, type PushDelivery, type StreamRecord } from '../streams/model.js'
import { READY, failingKey, type DeliveryRecord, type Outbox, type OutboxItem } from './outbox.js'
import type { PushOutcome } from './push-client.js'
import { retryDelayMs } from './backoff.js'
import type { AuditLog } from '../audit/log.js'
import type { Activity } from '../observe/activity.js'

export const WAKE_CHANNEL = 'ssf:wake'
const STREAM_RECHECK_MS = 250

/** Called when a stream's pushes have failed without a break for longer than allowed. */
export type SustainedFailureHandler = (stream: StreamRecord, failingSince: number, lastError: string) => Promise<void>


export interface Pusher {
  push(req: { url: string; authorization?: string; set: string }): Promise<PushOutcome>
}

/** Picks, in order, up to `max` SETs about distinct subjects; a subject already picked blocks its later SETs. */
export function pickWindow(head: readonly OutboxItem[], max: number): OutboxItem[] {
  const subjects = new Set<string>()
  const window: OutboxItem[] = []
  for (const item of head) {
    if (window.length >= max) break
    if (subjects.has(item.sk)) continue
    subjects.add(item.sk)
    window.push(item)
  }
  return window
}

export class Dispatcher {
  readonly owner = randomId(9)
  #active = new Map<string, Promise<void>>()
  #lost = new Set<string>()
  #stopped = false
  #signal: (() => void) | undefined
  /** A wake that came while the loop was busy; the next wait returns at once. */
  #woken = false
  #loop: Promise<void> | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #subscriber: Redis | undefined
  /** When the delivery loop last went round (ms); readiness checks it. */
  loopAt = 0

  constructor(
    private readonly redis: Redis,
    private readonly outbox: Outbox,
    private readonly streams: StreamStore,
    private readonly pusher: Pusher,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly onSustainedFailure?: SustainedFailureHandler,
    private readonly audit?: AuditLog,
    private readonly activity?: Activity,
  ) {}

  async start(): Promise<void> {
    this.#subscriber = this.redis.duplicate({ connectionName: 'ssf-broker:wake' })
    this.#subscriber.on('error', () => {})
    this.#subscriber.on('message', () => this.wake())
    await this.#subscriber.subscribe(WAKE_CHANNEL)
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.config.leaseMs / 3)))
    this.#loop = this.#run()
  }

  /** Something became due: look now rather than at the next timer. */
  wake(): void {
    const signal = this.#signal
    this.#signal = undefined
    if (signal) signal()
    else this.#woken = true
  }

  /** Tells every broker process (this one included) that streams became due. */
  async announce(): Promise<void> {
    this.wake()
    await this.redis.publish(WAKE_CHANNEL, '1')
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#renewTimer)
    this.wake()
    await this.#loop
    await Promise.allSettled(this.#active.values())
    this.#subscriber?.disconnect()
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.loopAt = Date.now()
      let claimedAll = false
      const free = this.config.pushStreamsInFlight - this.#active.size
      if (free > 0) {
        try {
          const sids = await this.outbox.claim(this.owner, this.config.leaseMs, free)
          for (const sid of sids) this.#startDrain(sid)
          claimedAll = sids.length === free
        } catch (err) {
          this.log.warn('claiming streams failed; retrying', { error: String(err) })
        }
      }
      if (claimedAll || this.#stopped) {
        if (!this.#stopped) await this.#waitForSignal(1000)
        continue
      }
      await this.#waitForSignal(await this.#untilNextDue())
    }
  }

  async #untilNextDue(): Promise<number> {
    try {
      const next = await this.redis.zrange(READY, 0, 0, 'WITHSCORES')
      if (next.length < 2) return 1000
      return Math.min(1000, Math.max(5, Number(next[1]) - Date.now()))
    } catch {
      return 500
    }
  }

  #waitForSignal(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#signal = undefined
        resolve()
      }, ms)
      this.#signal = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  #startDrain(sid: string): void {
    if (this.#active.has(sid)) return
    this.#lost.delete(sid)
    const run = this.#drain(sid)
      .catch(async (err: unknown) => {
        this.log.error('delivery loop failed; stream retried shortly', { stream_id: sid, error: String(err) })
        await this.outbox.release(sid, this.owner, 'backoff', Date.now() + 1000).catch(() => {})
      })
      .finally(() => {
        this.#active.delete(sid)
        this.wake()
      })
    this.#active.set(sid, run)
  }

  async #renew(): Promise<void> {
    const sids = [...this.#active.keys()]
    try {
      const held = await this.outbox.renew(this.owner, this.config.leaseMs, sids)
      for (const sid of sids) if (!held.has(sid)) this.#lost.add(sid)
    } catch (err) {
      this.log.warn('renewing delivery leases failed', { error: String(err) })
    }
  }

  async #drain(sid: string): Promise<void> {
    const windowSize = this.config.pushConcurrencyPerStream
    // The stream record is re-read at most every STREAM_RECHECK_MS while draining: a status change or a
    // new endpoint is seen within that time, without a read per window.
    let stream: StreamRecord | undefined
    let readAt = 0
    // Whether a "failing since" mark may exist (another process may have set one before this drain).
    let mayBeFailing = true
    for (;;) {
      if (this.#lost.has(sid)) return
      if (this.#stopped) {
        // Hand the stream back at once so another process can continue without waiting for the lease.
        await this.outbox.release(sid, this.owner, 'backoff')
        return
      }
      if (Date.now() - readAt >= STREAM_RECHECK_MS) {
        stream = await this.streams.get(sid)
        readAt = Date.now()
      }
      if (!stream || !isPush(stream)) {
        await this.outbox.unready(sid)
        return
      }
      if (stream.status === 'disabled') {
        await this.outbox.release(sid, this.owner, 'idle')
        return
      }
      // A paused stream still sends its control SETs (verification, stream-updated), nothing else.
      const head = await this.outbox.head(sid, windowSize * 4, stream.status === 'paused')
      if (head.length === 0) {
        if ((await this.outbox.release(sid, this.owner, 'idle')) === 'more') continue
        return
      }
      const window = pickWindow(head, windowSize)
      const { backoffUntil, lastError, anyDelivered } = await this.#deliverWindow(stream, window, mayBeFailing)
      if (anyDelivered) mayBeFailing = false
      if (backoffUntil !== undefined) {
        mayBeFailing = true
        await this.#noteFailure(stream, lastError ?? 'unknown')
        await this.outbox.release(sid, this.owner, 'backoff', backoffUntil)
        return
      }
    }
  }

  /** Remembers since when a stream fails; past SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS, hands it over. */
  async #noteFailure(stream: StreamRecord, lastError: string): Promise<void> {
    const limit = this.config.disableAfterFailingSeconds
    if (limit === 0 || !this.onSustainedFailure) return
    await this.redis.set(failingKey(stream.stream_id), String(Date.now()), 'NX')
    const since = Number(await this.redis.get(failingKey(stream.stream_id)))
    if (Date.now() - since < limit * 1000) return
    await this.redis.del(failingKey(stream.stream_id))
    this.log.warn('stream disabled after sustained delivery failure', { stream_id: stream.stream_id, failing_since: new Date(since).toISOString(), last_error: lastError })
    await this.onSustainedFailure(stream, since, lastError)
  }

  /** Sends one window of SETs; says when the stream should be tried again if any must be retried. */
  async #deliverWindow(stream: StreamRecord, window: readonly OutboxItem[], clearFailing: boolean): Promise<{ backoffUntil?: number; lastError?: string; anyDelivered: boolean }> {
    const sid = stream.stream_id
    const delivery = stream.delivery as PushDelivery
    const outcomes = await Promise.all(
      window.map((item) =>
        this.pusher.push({
          url: delivery.endpoint_url,
          ...(delivery.authorization_header !== undefined ? { authorization: delivery.authorization_header } : {}),
          set: item.set,
        }),
      ),
    )
    const now = Date.now()
    const delivered: string[] = []
    const records: DeliveryRecord[] = []
    let backoffUntil: number | undefined
    let lastError: string | undefined
    for (const [i, outcome] of outcomes.entries()) {
      const item = window[i]!
      const attempt = (item.a ?? 0) + 1
      const base = { jti: item.jti, at: now, attempt, latency_ms: Math.round(outcome.latencyMs), ...(outcome.status !== undefined ? { status: outcome.status } : {}) }
      if (outcome.kind === 'delivered') {
        delivered.push(item.jti)
        records.push({ ...base, outcome: 'delivered' })
        this.activity?.emit('delivered', { txn: item.txn, stream_id: sid, jti: item.jti, at: now, latency_ms: now - (item.t ?? item.f ?? now), method: 'push', ...(outcome.status !== undefined ? { status: outcome.status } : {}), push_ms: outcome.latencyMs })
        continue
      }
      const retried: OutboxItem = { ...item, a: attempt, f: item.f ?? now }
      const tooOld = now - retried.f! > this.config.deliveryMaxAgeSeconds * 1000
      if (outcome.kind === 'failed' || tooOld) {
        const reason = outcome.kind === 'failed' ? outcome.error : `max_age_exceeded (${outcome.error})`
        await this.outbox.deadLetter(sid, retried, {
          reason,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
          ...(outcome.kind === 'failed' && outcome.err !== undefined ? { err: outcome.err } : {}),
          ...(outcome.kind === 'failed' && outcome.description !== undefined ? { description: outcome.description } : {}),
        })
        records.push({ ...base, outcome: 'dead_letter', error: reason })
        this.activity?.emit('failed', { txn: item.txn, stream_id: sid, jti: item.jti, at: now, outcome: tooOld ? 'dead_letter' : 'failed', ...(outcome.status !== undefined ? { status: outcome.status } : {}), error: reason, push_ms: outcome.latencyMs })
        this.log.warn('SET dead-lettered', { stream_id: sid, jti: item.jti, reason })
        continue
      }
      await this.outbox.updateItem(sid, retried)
      records.push({ ...base, outcome: 'retry', error: outcome.error })
      this.activity?.emit('failed', { txn: item.txn, stream_id: sid, jti: item.jti, at: now, outcome: 'retry', ...(outcome.status !== undefined ? { status: outcome.status } : {}), error: outcome.error, push_ms: outcome.latencyMs })
      lastError = outcome.error
      // A Retry-After of 0 (or in the past) still waits a little, so a receiver cannot make us spin.
      const delay = outcome.retryAfterMs !== undefined ? Math.max(outcome.retryAfterMs, Math.min(this.config.retryBaseMs, 1000)) : retryDelayMs(attempt, this.config.retryBaseMs, this.config.retryMaxMs)
      backoffUntil = Math.max(backoffUntil ?? 0, now + delay)
    }
    await this.outbox.complete(sid, delivered, records, clearFailing && delivered.length > 0)
    this.audit?.submit(
      records.map((r, i) => ({
        kind: 'delivery.attempt' as const,
        at: r.at,
        jti: r.jti,
        stream_id: sid,
        txn: window[i]!.txn,
        outcome: r.outcome,
        attempt: r.attempt,
        ...(r.status !== undefined ? { status: r.status } : {}),
        ...(r.latency_ms !== undefined ? { latency_ms: r.latency_ms } : {}),
        ...(r.error !== undefined ? { error: r.error } : {}),
      })),
    )
    return { ...(backoffUntil !== undefined ? { backoffUntil } : {}), ...(lastError !== undefined ? { lastError } : {}), anyDelivered: delivered.length > 0 }
  }
}
