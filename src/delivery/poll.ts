/**
 * Poll delivery (RFC 8936). A poll first applies the receiver's `ack` and `setErrs` (released from the
 * stream's outbox and recorded), then hands out the oldest SETs not currently out with another poll.
 * Unacknowledged SETs are handed out again after SSF_BROKER_POLL_REDELIVERY_SECONDS, until acknowledged
 * or older than SSF_BROKER_DELIVERY_MAX_AGE_SECONDS (then dead-lettered).
 *
 * Long polling: with no SET available and `returnImmediately` not true, the request is held until a SET
 * for the stream is queued (woken by Redis pub/sub from whichever process queued it, not by a tick) or
 * SSF_BROKER_POLL_MAX_WAIT_SECONDS pass. A paused or disabled stream answers `{"sets": {}}` at once
 * (a paused stream still hands out control SETs: verification and stream-updated).
 */
import type { Redis } from 'ioredis'
import type { Config } from '../config/config.js'
import type { Outbox, DeliveryRecord, Lane, QueuedSet } from './outbox.js'
import type { StreamRecord } from '../streams/model.js'
import type { AuditEntryInput, AuditLog } from '../audit/log.js'
import type { Keyspace } from '../redis/keyspace.js'
import type { Activity } from '../observe/activity.js'
import { deliverableLanes } from '../streams/delivery-policy.js'

const DEFAULT_MAX_EVENTS = 100
export const MAX_EVENTS_CAP = 1000

export interface PollRequest {
  maxEvents?: number
  returnImmediately?: boolean
  ack?: string[]
  setErrs?: Record<string, { err: string; description?: string }>
}

export interface PollResponse {
  sets: Record<string, string>
  moreAvailable?: true
}

export class PollService {
  #waiters = new Map<string, Set<() => void>>()
  #subscriber: Redis | undefined
  #stopped = false

  constructor(
    private readonly redis: Redis,
    private readonly ks: Keyspace,
    private readonly outbox: Outbox,
    private readonly config: Config,
    private readonly activity: Activity,
    private readonly audit?: AuditLog,
  ) {}

  async start(): Promise<void> {
    this.#subscriber = this.redis.duplicate()
    this.#subscriber.on('error', () => {})
    this.#subscriber.on('message', (_channel: string, message: string) => {
      for (const sid of message.split(',')) this.#notify(sid)
    })
    await this.#subscriber.subscribe(this.ks.channels.pollWake)
  }

  stop(): void {
    this.#stopped = true
    this.#subscriber?.disconnect()
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake()
  }

  /** Wakes long polls on these streams, in every broker process. */
  async announce(sids: readonly string[]): Promise<void> {
    if (sids.length === 0) return
    await this.redis.publish(this.ks.channels.pollWake, sids.join(','))
  }

  #notify(sid: string): void {
    const waiters = this.#waiters.get(sid)
    if (!waiters) return
    this.#waiters.delete(sid)
    for (const wake of waiters) wake()
  }

  /** Resolves when a SET is queued for `sid`, after `ms`, or on abort; `cancel` stops listening. */
  #wait(sid: string, ms: number, signal: AbortSignal): { done: Promise<void>; cancel: () => void } {
    let finish!: () => void
    const done = new Promise<void>((resolve) => {
      let waiters = this.#waiters.get(sid)
      if (!waiters) this.#waiters.set(sid, (waiters = new Set()))
      finish = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', finish)
        waiters!.delete(finish)
        if (waiters!.size === 0 && this.#waiters.get(sid) === waiters) this.#waiters.delete(sid)
        resolve()
      }
      const timer = setTimeout(finish, ms)
      signal.addEventListener('abort', finish, { once: true })
      waiters.add(finish)
    })
    return { done, cancel: () => finish() }
  }

  async poll(
    stream: StreamRecord,
    request: PollRequest,
    signal: AbortSignal,
  ): Promise<PollResponse> {
    const sid = stream.stream_id
    await this.#release(sid, request)
    const lanes = deliverableLanes(stream.status)
    if (lanes.length === 0) {
      // Nothing is delivered and nothing held (SETs may have been queued while it was being disabled).
      await this.outbox.purge(sid)
      return { sets: {} }
    }
    if (request.maxEvents === 0) return { sets: {} }
    const max = Math.min(request.maxEvents ?? DEFAULT_MAX_EVENTS, MAX_EVENTS_CAP)
    // A stream that holds SETs back (paused) answers at once with what it may deliver.
    const holding = !lanes.includes('n')
    const deadline =
      Date.now() +
      (request.returnImmediately === true || holding ? 0 : this.config.pollMaxWaitSeconds * 1000)
    for (;;) {
      // Listen before looking, so a SET queued in between still wakes this poll. The 1 s cap also
      // notices SETs whose redelivery time has come.
      const wait = this.#wait(sid, Math.max(0, Math.min(1000, deadline - Date.now())), signal)
      const items = await this.#take(sid, max, lanes)
      // A hint (RFC 8936 §2.4): a full batch may well have more behind it.
      const more = items.length >= max
      if (items.length > 0 || Date.now() >= deadline || signal.aborted || this.#stopped) {
        wait.cancel()
        return {
          sets: Object.fromEntries(items.map((i) => [i.jti, i.set])),
          ...(more ? { moreAvailable: true as const } : {}),
        }
      }
      await wait.done
      // Shutting down: answer now, without another store read (the store may be what is going away).
      if (this.#stopped) return { sets: {} }
    }
  }

  async #take(sid: string, max: number, lanes: readonly Lane[]): Promise<QueuedSet[]> {
    const items = await this.outbox.pollTake(
      sid,
      max,
      this.config.pollRedeliverySeconds * 1000,
      lanes,
    )
    const oldest = Date.now() - this.config.deliveryMaxAgeSeconds * 1000
    const fresh: QueuedSet[] = []
    for (const item of items) {
      if (item.at < oldest) {
        await this.outbox.deadLetter(sid, item, { reason: 'max_age_exceeded (never acknowledged)' })
        await this.outbox.acknowledge(sid, [item.jti], (jti) => ({
          jti,
          at: Date.now(),
          outcome: 'dead_letter',
          attempt: 1,
          error: 'max_age_exceeded',
        }))
      } else fresh.push(item)
    }
    return fresh
  }

  async #release(sid: string, request: PollRequest): Promise<void> {
    const now = Date.now()
    const audit: AuditEntryInput[] = []
    const acked = await this.outbox.acknowledge(sid, request.ack ?? [], (jti) => ({
      jti,
      at: now,
      outcome: 'acked',
      attempt: 1,
    }))
    for (const { jti, txn, at } of acked) {
      audit.push({ kind: 'poll.ack', jti, stream_id: sid, txn })
      this.activity.emit('delivered', {
        txn,
        stream_id: sid,
        jti,
        at: now,
        latency_ms: now - at,
        method: 'poll',
      })
    }
    const errs = request.setErrs ?? {}
    const errored = await this.outbox.acknowledge(sid, Object.keys(errs), (jti) => {
      const e = errs[jti]!
      return {
        jti,
        at: now,
        outcome: 'set_error',
        attempt: 1,
        error: e.err,
        ...(e.description ? { description: e.description } : {}),
      }
    })
    for (const { jti, txn } of errored) {
      const e = errs[jti]!
      audit.push({
        kind: 'poll.set_error',
        jti,
        stream_id: sid,
        txn,
        err: e.err,
        ...(e.description ? { description: e.description } : {}),
      })
      this.activity.emit('failed', {
        txn,
        stream_id: sid,
        jti,
        at: now,
        outcome: 'failed',
        error: e.err,
      })
    }
    if (audit.length > 0) this.audit?.submit(audit)
  }
}
