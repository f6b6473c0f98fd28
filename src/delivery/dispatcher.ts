/**
 * Push delivery (RFC 8935). Each broker process runs one dispatcher. A stream is delivered by the
 * process holding its lease (scheduler.ts): usually the one that just queued SETs for it, which claims it
 * on the spot; otherwise whichever process claims it from its scheduling shard. Leases are renewed while
 * a process works, so a dead process's streams are taken over after SSF_BROKER_LEASE_MS.
 *
 * Within a stream up to `pushConcurrencyPerStream` SETs are in flight at once, never two about the same
 * subject: SETs about one subject arrive in the order they were queued. Lanes go control, priority,
 * normal; a priority SET waits while an earlier normal SET about its subject is queued. A transient
 * failure backs the whole stream off and, until a push succeeds again, each retry sends one SET: a probe
 * that does not hammer a receiver that is down. A permanent failure dead-letters that SET.
 */
import type { Redis } from 'ioredis'
import type { Config } from '../config/config.js'
import type { Logger } from '../lib/log.js'
import { randomId } from '../lib/ids.js'
import { schedShardOf, type Keyspace } from '../redis/keyspace.js'
import { isPush, type PushDelivery, type StreamRecord } from '../streams/model.js'
import type { RoutingCache } from '../streams/routing-cache.js'
import { deliverableLanes } from '../streams/delivery-policy.js'
import {
  queuedAt,
  type Attempts,
  type DeliveryRecord,
  type Outbox,
  type QueuedSet,
} from './outbox.js'
import type { Scheduler } from './scheduler.js'
import type { PushOutcome } from './push-client.js'
import { retryDelayMs } from './backoff.js'
import type { AuditEntryInput, AuditLog } from '../audit/log.js'
import type { Activity } from '../observe/activity.js'

/** Called when a stream's pushes have failed without a break for longer than allowed. */
export type SustainedFailureHandler = (
  stream: StreamRecord,
  failingSince: number,
  lastError: string,
) => Promise<void>

export interface Pusher {
  push(req: { url: string; authorization?: string; set: string }): Promise<PushOutcome>
}

/**
 * Picks, in order, up to `max` SETs about distinct subjects: control first, then priority SETs not
 * behind an earlier normal SET about their subject, then normal ones. A subject already picked (or
 * blocked) blocks its later SETs.
 */
export function pickWindow(
  head: { c: readonly QueuedSet[]; p: readonly QueuedSet[]; n: readonly QueuedSet[] },
  pending: ReadonlyMap<string, number>,
  max: number,
  normalComplete: boolean,
): QueuedSet[] {
  const blocked = new Set<string>()
  const window: QueuedSet[] = []
  const take = (item: QueuedSet) => {
    if (window.length >= max || blocked.has(item.sk)) return
    blocked.add(item.sk)
    window.push(item)
  }
  for (const item of head.c) take(item)
  const lastNormal = head.n.length > 0 ? head.n[head.n.length - 1]!.n : Infinity
  for (const item of head.p) {
    if ((pending.get(item.sk) ?? 0) > 0) {
      const earlierSeen = head.n.some((x) => x.sk === item.sk && x.n < item.n)
      // Normal SETs beyond the head all come after the head's last one; they may be earlier than this one.
      const earlierUnseen =
        !normalComplete &&
        lastNormal < item.n &&
        head.n.filter((x) => x.sk === item.sk).length < pending.get(item.sk)!
      // Waits (the earlier normal SET about its subject is picked below, in its turn).
      if (earlierSeen || earlierUnseen) continue
    }
    take(item)
  }
  for (const item of head.n) take(item)
  return window
}

export class Dispatcher {
  readonly owner = randomId(9)
  #active = new Map<string, Promise<void>>()
  #lost = new Set<string>()
  /** Streams this process is draining that got SETs from this process since the drain last looked. */
  #dirty = new Set<string>()
  #stopped = false
  #timers = new Map<number, NodeJS.Timeout>()
  #renewTimer: NodeJS.Timeout | undefined
  #sweepTimer: NodeJS.Timeout | undefined
  #subscriber: Redis | undefined
  /** Last time the scheduling sweep ran (ms): readiness. */
  loopAt = Date.now()

  constructor(
    private readonly redis: Redis,
    private readonly ks: Keyspace,
    private readonly outbox: Outbox,
    private readonly scheduler: Scheduler,
    private readonly routing: RoutingCache,
    private readonly pusher: Pusher,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly activity: Activity,
    private readonly onSustainedFailure?: SustainedFailureHandler,
    private readonly audit?: AuditLog,
  ) {}

  async start(): Promise<void> {
    this.#subscriber = this.redis.duplicate()
    this.#subscriber.on('error', () => {})
    this.#subscriber.on('message', (_channel: string, message: string) => {
      for (const shard of message.split(',')) this.#claimSoon(Number(shard), 0)
    })
    await this.#subscriber.subscribe(this.ks.channels.wake)
    this.#renewTimer = setInterval(
      () => void this.#renew(),
      Math.max(100, Math.floor(this.config.leaseMs / 3)),
    )
    // Every shard is looked at at least once a second: lapsed leases and retries fall due there.
    this.#sweepTimer = setInterval(() => {
      this.loopAt = Date.now()
      for (let k = 0; k < this.scheduler.shards; k++)
        if (!this.#timers.has(k)) this.#claimSoon(k, 0)
    }, 1000)
    for (let k = 0; k < this.scheduler.shards; k++) this.#claimSoon(k, 0)
  }

  /** A push stream got SETs: deliver it from here if nobody does, else make sure its holder sees them. */
  async queued(stream: StreamRecord, endBackoff = false): Promise<void> {
    const sid = stream.stream_id
    // Draining here already: a local mark does what the Redis dirty set would, without a round trip.
    if (this.#drainingHere(sid) && !endBackoff) {
      this.#dirty.add(sid)
      return
    }
    const claim = this.#canClaim()
    const result = await this.scheduler.markDue(
      sid,
      claim ? this.owner : undefined,
      this.config.leaseMs,
      endBackoff,
    )
    if (result === 'claimed') this.#startDrain(sid)
    else if (result === 'due')
      await this.redis.publish(this.ks.channels.wake, String(schedShardOf(sid)))
  }

  /**
   * queued(), for SETs still being appended: the claim is asked for alongside the append (one round trip
   * less before the first push), and the drain starts reading once `appending` is done. Only a claim is
   * asked at first; anything else (held elsewhere, no room here) is marked the usual way after the append,
   * so no holder can look before the SETs are there.
   */
  async queuedWhile(stream: StreamRecord, appending: Promise<unknown>): Promise<void> {
    const sid = stream.stream_id
    if (this.#drainingHere(sid) || !this.#canClaim()) {
      await appending
      return this.queued(stream)
    }
    const [claim, appended] = await Promise.allSettled([
      this.scheduler.markDue(sid, this.owner, this.config.leaseMs, false, true),
      appending,
    ])
    if (claim.status === 'fulfilled' && claim.value === 'claimed') this.#startDrain(sid)
    if (appended.status === 'rejected') throw appended.reason
    if (claim.status === 'rejected' || claim.value === 'busy') return this.queued(stream)
  }

  #drainingHere(sid: string): boolean {
    return this.#active.has(sid) && !this.#lost.has(sid) && !this.#stopped
  }

  #canClaim(): boolean {
    return !this.#stopped && this.#active.size < this.config.pushStreamsInFlight
  }

  async stop(graceMs = 5000): Promise<void> {
    this.#stopped = true
    clearInterval(this.#renewTimer)
    clearInterval(this.#sweepTimer)
    for (const t of this.#timers.values()) clearTimeout(t)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(this.#active.values()),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ])
    clearTimeout(timer)
    this.#subscriber?.disconnect()
  }

  /** Claims due streams of a shard after `ms` (one pending look per shard). */
  #claimSoon(shard: number, ms: number): void {
    if (this.#stopped) return
    const existing = this.#timers.get(shard)
    if (existing && ms > 0) return
    if (existing) clearTimeout(existing)
    this.#timers.set(
      shard,
      setTimeout(() => {
        this.#timers.delete(shard)
        void this.#claim(shard)
      }, ms),
    )
  }

  async #claim(shard: number): Promise<void> {
    const free = this.config.pushStreamsInFlight - this.#active.size
    if (free <= 0 || this.#stopped) return
    try {
      const { sids, nextDue } = await this.scheduler.claim(
        shard,
        this.owner,
        this.config.leaseMs,
        free,
      )
      for (const sid of sids) this.#startDrain(sid)
      if (sids.length === free) this.#claimSoon(shard, 50)
      else if (nextDue !== undefined)
        this.#claimSoon(shard, Math.min(1000, Math.max(5, nextDue - Date.now())))
    } catch (err) {
      this.log.debug('claiming streams failed; retrying', { shard, error: String(err) })
      this.#claimSoon(shard, 500)
    }
  }

  #startDrain(sid: string): void {
    if (this.#active.has(sid)) return
    this.#lost.delete(sid)
    const run = this.#drain(sid)
      .catch(async (err: unknown) => {
        this.log.error('delivery loop failed; stream retried shortly', {
          stream_id: sid,
          error: String(err),
        })
        await this.scheduler.release(sid, this.owner, 'backoff', Date.now() + 1000).catch(() => {})
      })
      .finally(() => {
        this.#active.delete(sid)
        // SETs queued here while the drain was letting go: schedule them the usual way.
        if (this.#dirty.delete(sid)) {
          const stream = this.routing.get(sid)
          if (stream)
            this.queued(stream).catch((err: unknown) =>
              this.log.warn('scheduling a stream failed', { stream_id: sid, error: String(err) }),
            )
        }
      })
    this.#active.set(sid, run)
  }

  async #renew(): Promise<void> {
    const sids = [...this.#active.keys()]
    if (sids.length === 0) return
    try {
      const held = await this.scheduler.renew(this.owner, this.config.leaseMs, sids)
      for (const sid of sids) if (!held.has(sid)) this.#lost.add(sid)
    } catch (err) {
      this.log.debug('renewing delivery leases failed', { error: String(err) })
    }
  }

  async #drain(sid: string): Promise<void> {
    const windowSize = this.config.pushConcurrencyPerStream
    // Whether the stream may be in a run of failures (attempt counts and the failing mark to clear).
    let failing = true
    for (;;) {
      if (this.#lost.has(sid)) return
      if (this.#stopped) {
        // Hand the stream back at once so another process can continue without waiting for the lease.
        await this.scheduler.release(sid, this.owner, 'backoff')
        return
      }
      let stream = this.routing.get(sid)
      let lanes = stream && isPush(stream) ? deliverableLanes(stream.status) : []
      if (!stream || stream.status !== 'enabled' || lanes.length === 0) {
        // Dropping, purging or holding needs the current record, not this process's possibly older copy.
        await this.routing.sync()
        stream = this.routing.get(sid)
        if (!stream || !isPush(stream)) {
          // Deleted while this drain wrote to its queue: what the drain wrote goes too.
          if (!stream) await this.outbox.purgeAll(sid)
          await this.scheduler.release(sid, this.owner, 'drop')
          return
        }
        lanes = deliverableLanes(stream.status)
        if (lanes.length === 0) {
          // Disabled drops what it held (SETs may have been queued while it was being disabled).
          await this.outbox.purge(sid)
          await this.scheduler.release(sid, this.owner, 'drop')
          return
        }
      }
      const readCount = windowSize * 4
      this.#dirty.delete(sid)
      const head = await this.outbox.head(sid, lanes, readCount)
      if (head.c.length + head.p.length + head.n.length === 0) {
        if (this.#dirty.has(sid)) continue
        if ((await this.scheduler.release(sid, this.owner, 'idle')) === 'more') continue
        return
      }
      // Each SET is delivered as routed when it was minted or later: the cache is brought at least to the
      // newest version among them (no Redis read when it is there already; a SET of unknown version reads it).
      if (await this.#catchUp(head)) {
        if (this.routing.get(sid) !== stream) continue
      }
      const window = pickWindow(
        head,
        head.pending,
        failing ? 1 : windowSize,
        head.n.length < readCount,
      )
      const result = await this.#deliverWindow(stream, window, failing)
      if (result.anyDelivered) failing = false
      if (result.backoffUntil !== undefined) {
        failing = true
        await this.#noteFailure(stream, result.lastError ?? 'unknown')
        await this.scheduler.release(sid, this.owner, 'backoff', result.backoffUntil)
        return
      }
    }
  }

  /** Brings the routing cache up to the SETs read; says whether it had to change anything. */
  async #catchUp(head: {
    c: readonly QueuedSet[]
    p: readonly QueuedSet[]
    n: readonly QueuedSet[]
  }): Promise<boolean> {
    let newest = -1
    let unknown = false
    for (const lane of [head.c, head.p, head.n]) {
      for (const item of lane) {
        if (item.v === undefined) unknown = true
        else if (item.v > newest) newest = item.v
      }
    }
    const before = this.routing.version
    if (unknown) await this.routing.sync()
    else await this.routing.syncTo(newest)
    return this.routing.version !== before
  }

  /** Remembers since when a stream fails; past SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS, hands it over. */
  async #noteFailure(stream: StreamRecord, lastError: string): Promise<void> {
    const limit = this.config.disableAfterFailingSeconds
    if (limit === 0 || !this.onSustainedFailure) return
    const since = await this.outbox.failingSince(stream.stream_id, Date.now())
    if (Date.now() - since < limit * 1000) return
    await this.outbox.clearFailing(stream.stream_id)
    this.log.warn('stream disabled after sustained delivery failure', {
      stream_id: stream.stream_id,
      failing_since: new Date(since).toISOString(),
      last_error: lastError,
    })
    await this.onSustainedFailure(stream, since, lastError)
  }

  /** Sends one window of SETs; says when the stream should be tried again if any must be retried. */
  async #deliverWindow(
    stream: StreamRecord,
    window: readonly QueuedSet[],
    failing: boolean,
  ): Promise<{ backoffUntil?: number; lastError?: string; anyDelivered: boolean }> {
    const sid = stream.stream_id
    const delivery = stream.delivery as PushDelivery
    const previous = failing
      ? await this.outbox.attempts(
          sid,
          window.map((s) => s.jti),
        )
      : new Map<string, Attempts>()
    const outcomes = await Promise.all(
      window.map((item) =>
        this.pusher.push({
          url: delivery.endpoint_url,
          ...(delivery.authorization_header !== undefined
            ? { authorization: delivery.authorization_header }
            : {}),
          set: item.set,
        }),
      ),
    )
    const now = Date.now()
    const done: QueuedSet[] = []
    const records: DeliveryRecord[] = []
    const retried = new Map<string, Attempts>()
    const audit: AuditEntryInput[] = []
    let backoffUntil: number | undefined
    let lastError: string | undefined
    for (const [i, outcome] of outcomes.entries()) {
      const item = window[i]!
      const before = previous.get(item.jti)
      const attempt = (before?.a ?? 0) + 1
      const pushMs = Math.round(outcome.latencyMs)
      const base = {
        jti: item.jti,
        at: now,
        attempt,
        latency_ms: pushMs,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      }
      const entry = {
        kind: 'delivery.attempt' as const,
        at: now,
        jti: item.jti,
        stream_id: sid,
        txn: item.txn,
        type: item.type,
        queued_at: queuedAt(item),
        attempt,
        latency_ms: pushMs,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      }
      if (outcome.kind === 'delivered') {
        done.push(item)
        records.push({ ...base, outcome: 'delivered' })
        audit.push({ ...entry, outcome: 'delivered' })
        this.activity.emit('delivered', {
          txn: item.txn,
          stream_id: sid,
          jti: item.jti,
          at: now,
          latency_ms: now - item.at,
          method: 'push',
          push_ms: pushMs,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        })
        continue
      }
      const attempts: Attempts = { a: attempt, f: before?.f ?? now }
      const tooOld = now - item.at > this.config.deliveryMaxAgeSeconds * 1000
      if (outcome.kind === 'failed' || tooOld) {
        const reason =
          outcome.kind === 'failed' ? outcome.error : `max_age_exceeded (${outcome.error})`
        const record: DeliveryRecord = { ...base, outcome: 'dead_letter', error: reason }
        await this.outbox.deadLetter(
          sid,
          item,
          {
            reason,
            ...(outcome.status !== undefined ? { status: outcome.status } : {}),
            ...(outcome.kind === 'failed' && outcome.err !== undefined ? { err: outcome.err } : {}),
            ...(outcome.kind === 'failed' && outcome.description !== undefined
              ? { description: outcome.description }
              : {}),
          },
          attempts,
          record,
        )
        audit.push({ ...entry, outcome: 'dead_letter', error: reason })
        this.log.warn('SET dead-lettered', {
          stream_id: sid,
          jti: item.jti,
          outcome: 'dead_letter',
          status: outcome.status,
          latency_ms: pushMs,
          reason,
        })
        // 'failed': the receiver refused it for good; 'dead_letter': given up after the maximum age.
        this.activity.emit('failed', {
          txn: item.txn,
          stream_id: sid,
          jti: item.jti,
          at: now,
          outcome: outcome.kind === 'failed' ? 'failed' : 'dead_letter',
          error: reason,
          push_ms: pushMs,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        })
        continue
      }
      retried.set(item.jti, attempts)
      records.push({ ...base, outcome: 'retry', error: outcome.error })
      audit.push({ ...entry, outcome: 'retry', error: outcome.error })
      this.log.warn('push failed; will retry', {
        stream_id: sid,
        jti: item.jti,
        outcome: 'retry',
        status: outcome.status,
        latency_ms: pushMs,
        attempt,
        error: outcome.error,
      })
      this.activity.emit('failed', {
        txn: item.txn,
        stream_id: sid,
        jti: item.jti,
        at: now,
        outcome: 'retry',
        error: outcome.error,
        push_ms: pushMs,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
      })
      lastError = outcome.error
      // A Retry-After of 0 (or in the past) still waits a little, so a receiver cannot make us spin.
      const delay =
        outcome.retryAfterMs !== undefined
          ? Math.max(outcome.retryAfterMs, Math.min(this.config.retryBaseMs, 1000))
          : retryDelayMs(attempt, this.config.retryBaseMs, this.config.retryMaxMs)
      backoffUntil = Math.max(backoffUntil ?? 0, now + delay)
    }
    await Promise.all([
      this.outbox.complete(sid, done, records),
      this.outbox.setAttempts(sid, retried),
      failing && done.length > 0 ? this.outbox.clearFailing(sid) : undefined,
    ])
    if (audit.length > 0) this.audit?.submit(audit)
    return {
      ...(backoffUntil !== undefined ? { backoffUntil } : {}),
      ...(lastError !== undefined ? { lastError } : {}),
      anyDelivered: done.length > 0,
    }
  }
}
