/**
 * Push delivery (RFC 8935). Each broker process runs one dispatcher. A stream is delivered by the
 * process holding its lease (scheduler.ts): usually the one that just queued SETs for it, which claims it
 * on the spot; otherwise whichever process claims it from its scheduling shard. Leases are renewed while
 * a process works, so a dead process's streams are taken over after SSF_BROKER_LEASE_MS.
 *
 * Within a stream up to `pushConcurrencyPerStream` normal SETs are in flight at once (a sliding window),
 * and as many control and priority SETs again, never two about the same subject: SETs about one subject
 * arrive in the order they were queued. Lanes go control, priority, normal (lane-view.ts); a priority SET
 * waits while an earlier normal SET about its subject is queued. A transient
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
  type Appended,
  type Attempts,
  type DeliveryRecord,
  type Outbox,
  type QueuedSet,
} from './outbox.js'
import type { Scheduler } from './scheduler.js'
import { entryKey, LaneView, pickWindow } from './lane-view.js'
import { OwnAppends, type OwnAppend } from './own-appends.js'
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
  push(req: {
    url: string
    authorization?: string
    set: string
    urgent?: boolean
  }): Promise<PushOutcome>
}

/** A push that has come back, waiting to be recorded. */
interface Settled {
  item: QueuedSet
  outcome: PushOutcome
}

export class Dispatcher {
  readonly owner = randomId(9)
  #active = new Map<string, Promise<void>>()
  #lost = new Set<string>()
  /** Streams this process is draining that got SETs from this process since the drain last looked. */
  #dirty = new Set<string>()
  /** Wakes a drain waiting on its pushes when SETs are queued for its stream (it may have room). */
  #wakers = new Map<string, () => void>()
  /**
   * Per stream drained here, the one append this process made since the drain last looked ('unknown':
   * more than one, or SETs queued some other way): the drain may start from it instead of reading.
   */
  #appendedHere = new Map<string, OwnAppend | 'unknown'>()
  /** This process's appends, watched for reads of their lanes that make them unfit to start from. */
  readonly #ownAppends = new OwnAppends()
  /** Shards whose due streams could not be claimed for want of a free slot: claimed when one frees. */
  #starved = new Set<number>()
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
  queued(stream: StreamRecord, endBackoff = false): Promise<void> {
    return this.#queued(stream, endBackoff)
  }

  /** queued(), for the SETs of an append this process made and watches (`own`). */
  async #queued(stream: StreamRecord, endBackoff: boolean, own?: OwnAppend): Promise<void> {
    const sid = stream.stream_id
    // Draining here already: a local mark does what the Redis dirty set would, without a round trip.
    if (this.#drainingHere(sid) && !endBackoff) {
      const before = this.#dropAppended(sid)
      this.#appendedHere.set(sid, own && before === undefined ? own : 'unknown')
      this.#dirty.add(sid)
      this.#wakers.get(sid)?.()
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
   * so no holder can look before the SETs are there. When the lanes were empty before the append, the
   * drain starts from the appended SETs themselves instead of reading them back.
   */
  async queuedWhile(stream: StreamRecord, appending: Promise<Appended>): Promise<void> {
    const sid = stream.stream_id
    const own = this.#ownAppends.watch(sid)
    try {
      if (this.#drainingHere(sid) || !this.#canClaim()) {
        own.appended = await appending
        return await this.#queued(stream, false, own)
      }
      const [claim, appended] = await Promise.allSettled([
        this.scheduler.markDue(sid, this.owner, this.config.leaseMs, false, true),
        appending,
      ])
      if (appended.status === 'fulfilled') own.appended = appended.value
      if (claim.status === 'fulfilled' && claim.value === 'claimed')
        this.#startDrain(sid, OwnAppends.seed(own))
      if (appended.status === 'rejected') throw appended.reason
      if (claim.status === 'rejected' || claim.value === 'busy')
        return await this.#queued(stream, false, own)
    } finally {
      // Still watched only while a drain here holds it to start from.
      if (this.#appendedHere.get(sid) !== own) this.#ownAppends.forget(sid, own)
    }
  }

  /**
   * What this process appended to a stream it drains since the drain last looked, when that is all there
   * is: one append that found the lanes empty, not read since. Forgotten either way (the drain reads the
   * lanes otherwise).
   */
  #takeAppended(sid: string): Appended | undefined {
    const own = this.#dropAppended(sid)
    return own === 'unknown' ? undefined : OwnAppends.seed(own)
  }

  /** Removes the stream's mark of appends made here (and stops watching its append); returns it. */
  #dropAppended(sid: string): OwnAppend | 'unknown' | undefined {
    const own = this.#appendedHere.get(sid)
    this.#appendedHere.delete(sid)
    if (own !== undefined && own !== 'unknown') this.#ownAppends.forget(sid, own)
    return own
  }

  /** Appends of this process still watched (for tests: none are left behind once delivery is idle). */
  get watchedAppends(): number {
    return this.#ownAppends.size
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
    // Lingering drains let go at once.
    for (const wake of this.#wakers.values()) wake()
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
    if (this.#stopped) return
    if (free <= 0) {
      // Looked at again as soon as a drain here ends (not only at the next sweep).
      this.#starved.add(shard)
      return
    }
    this.#starved.delete(shard)
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

  #startDrain(sid: string, seed?: Appended): void {
    if (this.#active.has(sid)) return
    this.#lost.delete(sid)
    const run = this.#drain(sid, seed)
      .catch(async (err: unknown) => {
        this.log.error('delivery loop failed; stream retried shortly', {
          stream_id: sid,
          error: String(err),
        })
        await this.scheduler.release(sid, this.owner, 'backoff', Date.now() + 1000).catch(() => {})
      })
      .finally(() => {
        this.#active.delete(sid)
        this.#wakers.delete(sid)
        this.#dropAppended(sid)
        for (const shard of this.#starved) this.#claimSoon(shard, 0)
        this.#starved.clear()
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

  /**
   * Delivers one stream while this process holds it: a sliding window of pushes. A SET is sent as soon as
   * a slot and its subject are free. A delivered SET gives back its slot and its subject the moment its
   * push comes back; its completion is recorded in the background, with whatever else came back
   * meanwhile, in one script call (which also says whether the lanes hold anything not yet read), while
   * the window keeps sending. A failed push keeps its slot until it is recorded, and nothing more is sent
   * until then: it may back the stream off. What was read is kept (less what is done) until it is used up
   * or SETs are queued again, so a window is not read twice.
   */
  async #drain(sid: string, seed?: Appended): Promise<void> {
    const windowSize = this.config.pushConcurrencyPerStream
    const readCount = windowSize * 4
    const inFlight = new Map<string, QueuedSet>()
    /** Subjects with a SET in flight: their later SETs wait. */
    const busy = new Set<string>()
    /** Outcomes not recorded yet, in the order they came back. */
    let settled: Settled[] = []
    /** Delivered SETs out of the window whose completion is not recorded yet: still in the lanes. */
    let unrecorded = 0
    let recording: Promise<void> | undefined
    let recordFailure: { error: unknown } | undefined
    // Something happened (a push came back, a record finished, SETs were queued): the next wait returns.
    let poked = false
    let signal: (() => void) | undefined
    const poke = () => {
      poked = true
      const resolve = signal
      signal = undefined
      resolve?.()
    }
    this.#wakers.set(sid, poke)
    const wait = async () => {
      if (!poked) await new Promise<void>((resolve) => (signal = resolve))
      poked = false
    }
    // Whether the stream may be in a run of failures: then one SET at a time, a probe (from the first read).
    let failing: boolean | undefined = seed?.failing
    let view = seed ? LaneView.ofAppended(seed.queued) : new LaneView()
    /** The lanes are known to hold nothing but the SETs in flight (until SETs are queued again). */
    let quiet = false
    let backoff: { until: number; error: string } | undefined
    let stream: StreamRecord | undefined
    const settle = (done: Settled) => {
      if (done.outcome.kind === 'delivered') {
        // The receiver has it: its slot and its subject are free for the next SETs at once.
        inFlight.delete(entryKey(done.item))
        busy.delete(done.item.sk)
        view.forget([done.item])
        unrecorded++
      }
      settled.push(done)
      poke()
    }
    const record = async () => {
      // Pushes that come back in the same turn of the event loop are recorded together (and those that
      // come back while a record is written, in the next one).
      await new Promise((r) => setImmediate(r))
      const batch = settled
      settled = []
      if (batch.length === 0) return
      const kept = batch.filter((s) => s.outcome.kind !== 'delivered')
      // What is left is worth counting only when nothing else is in flight (the drain may go idle).
      const result = await this.#record(
        stream!,
        batch,
        failing === true,
        kept.length === inFlight.size,
      )
      unrecorded -= batch.length - kept.length
      for (const { item } of kept) {
        inFlight.delete(entryKey(item))
        busy.delete(item.sk)
      }
      view.forget(result.gone)
      if (result.anyDelivered) failing = false
      if (result.backoffUntil !== undefined)
        backoff = {
          until: Math.max(backoff?.until ?? 0, result.backoffUntil),
          error: result.lastError ?? 'unknown',
        }
      // Everything left in the lanes is in flight or delivered and being recorded: nothing to read
      // unless SETs are queued meanwhile.
      if (result.left !== undefined) quiet = result.left <= inFlight.size + unrecorded
    }
    /** Starts recording what came back, unless a record is being written (one at a time). */
    const startRecord = (): Promise<void> =>
      (recording ??= record()
        .catch((error: unknown) => void (recordFailure ??= { error }))
        .finally(() => {
          recording = undefined
          poke()
        }))
    /** Waits until everything that came back is recorded; a failed record fails the drain. */
    const flush = async () => {
      while (recording || settled.length > 0) await startRecord()
      if (recordFailure) throw recordFailure.error
    }
    const settleAll = async () => {
      while (inFlight.size > 0) {
        if (settled.length === 0) await wait()
        await flush()
      }
      await flush()
    }
    for (;;) {
      if (recordFailure) throw recordFailure.error
      if (this.#lost.has(sid)) {
        await settleAll()
        return
      }
      if (this.#stopped) {
        await settleAll()
        // Hand the stream back at once so another process can continue without waiting for the lease.
        await this.scheduler.release(sid, this.owner, 'backoff')
        return
      }
      stream = this.routing.get(sid)
      let lanes = stream && isPush(stream) ? deliverableLanes(stream.status) : []
      if (!stream || stream.status !== 'enabled' || lanes.length === 0) {
        await settleAll()
        view = new LaneView()
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
      if (backoff) {
        await settleAll()
        await this.#noteFailure(stream, backoff.error)
        await this.scheduler.release(sid, this.owner, 'backoff', backoff.until)
        return
      }
      // A failed push (or any, while the stream may be failing) is recorded before anything else is sent:
      // it may back the stream off.
      if (
        settled.length > 0 &&
        (failing !== false || settled.some((s) => s.outcome.kind !== 'delivered'))
      ) {
        await flush()
        continue
      }
      const room = (failing === false ? 2 * windowSize : 1) - inFlight.size
      if (room > 0) {
        // SETs queued meanwhile come after what was read: read on first, so a revocation goes at once.
        const dirty = this.#dirty.has(sid)
        let picked = dirty || failing === undefined ? [] : this.#pick(view, inFlight, busy, failing)
        if (picked.length === 0 && (dirty || !quiet)) {
          this.#dirty.delete(sid)
          const appended = this.#takeAppended(sid)
          if (appended && failing === false && inFlight.size === 0 && view.unsent(inFlight) === 0) {
            // Nothing held, nothing in flight, and this process's append found the lanes empty: its
            // SETs are the whole queue (as when a drain starts from the SETs that woke it).
            view = LaneView.ofAppended(appended.queued)
            if (appended.failing) failing = true
          } else {
            // A lane is read on only while few of its SETs are held: SETs queued meanwhile come after
            // those, so a flood in any lane is read a window at a time, not all at once (which would make
            // every pick walk it), and a revocation behind a flood of normal SETs is still read at once.
            const reading = lanes.filter((l) => view.unsent(inFlight, l) < readCount)
            // (Held SETs were read, or appended here, so whether the stream is failing is known.)
            if (reading.length === 0 && failing !== undefined) view.readLater(lanes)
            else {
              this.#ownAppends.lanesRead(sid)
              const read = await this.outbox.head(sid, reading, readCount, view.after)
              failing ??= read.failing
              // Each SET is delivered as routed when it was minted or later: the cache is brought at
              // least to the newest version among them (no Redis read when it is there already).
              if ((await this.#catchUp(read)) && this.routing.get(sid) !== stream) {
                // Read afresh, once delivered SETs are out of the lanes (else they would be read again).
                await flush()
                view = new LaneView()
                continue
              }
              view.merge(read, reading, readCount)
            }
          }
          picked = this.#pick(view, inFlight, busy, failing)
        }
        for (const item of picked) this.#send(stream, item, inFlight, busy, settle)
        // Everything read is in flight and nothing lies beyond: the lanes hold nothing else.
        quiet = !view.anyPartial(lanes) && view.unsent(inFlight) === 0
        // Nothing held could be sent and nothing is in flight: read the lanes afresh (once delivered SETs
        // are out of them).
        if (inFlight.size === 0 && !quiet) {
          await flush()
          view = new LaneView()
        }
      }
      if (inFlight.size === 0) {
        // Idle only once every outcome is recorded.
        if (recording || settled.length > 0) {
          await flush()
          continue
        }
        if (!quiet || this.#dirty.has(sid)) continue
        if (await this.#linger(sid, wait)) continue
        if ((await this.scheduler.release(sid, this.owner, 'idle')) === 'more') {
          quiet = false
          continue
        }
        return
      }
      if (settled.length > 0) void startRecord()
      await wait()
    }
  }

  /**
   * An idle drain keeps its lease a few ms longer: SETs this process queues for the stream meanwhile go out
   * at once, without a release and a new claim (two script calls per event on a busy stream). SETs queued
   * by another process wait at most that long (they mark the stream dirty; the release sees it). Not while
   * streams wait for a slot here, nor while stopping. Says whether SETs were queued meanwhile.
   */
  async #linger(sid: string, wait: () => Promise<void>): Promise<boolean> {
    const ms = this.config.pushLingerMs
    if (ms === 0 || this.#stopped || this.#lost.has(sid) || this.#starved.size > 0) return false
    if (this.#active.size >= this.config.pushStreamsInFlight) return false
    let timer: NodeJS.Timeout | undefined
    const woken = await Promise.race([
      wait().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ])
    clearTimeout(timer)
    return woken || this.#dirty.has(sid)
  }

  /** The SETs to send next: one at a time while failing, else up to the window (twice for urgent ones). */
  #pick(
    view: LaneView,
    inFlight: ReadonlyMap<string, QueuedSet>,
    busy: ReadonlySet<string>,
    failing: boolean,
  ): QueuedSet[] {
    const windowSize = failing ? 1 : this.config.pushConcurrencyPerStream
    let normals = 0
    for (const item of inFlight.values()) if (item.lane === 'n') normals++
    return pickWindow(
      view,
      {
        total: (failing ? 1 : 2 * windowSize) - inFlight.size,
        normal: windowSize - normals,
      },
      busy,
    )
  }

  /** Starts one push; `settle` gets its outcome (a push never rejects: an error is a retry). */
  #send(
    stream: StreamRecord,
    item: QueuedSet,
    inFlight: Map<string, QueuedSet>,
    busy: Set<string>,
    settle: (done: Settled) => void,
  ): void {
    const delivery = stream.delivery as PushDelivery
    inFlight.set(entryKey(item), item)
    busy.add(item.sk)
    void this.pusher
      .push({
        url: delivery.endpoint_url,
        ...(delivery.authorization_header !== undefined
          ? { authorization: delivery.authorization_header }
          : {}),
        set: item.set,
        urgent: item.lane !== 'n',
      })
      .catch((err: unknown): PushOutcome => ({ kind: 'retry', error: String(err), latencyMs: 0 }))
      .then((outcome) => settle({ item, outcome }))
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

  /**
   * Records pushes that came back: delivered ones leave the lanes, refused ones are dead-lettered,
   * failed ones keep their attempt counts. Says when the stream should be tried again if any must be
   * retried, which SETs are done with, and how many SETs the lanes still hold.
   */
  async #record(
    stream: StreamRecord,
    batch: readonly Settled[],
    failing: boolean,
    countLeft: boolean,
  ): Promise<{
    backoffUntil?: number
    lastError?: string
    anyDelivered: boolean
    gone: QueuedSet[]
    left?: number
  }> {
    const sid = stream.stream_id
    const previous = failing
      ? await this.outbox.attempts(
          sid,
          batch.map((s) => s.item.jti),
        )
      : new Map<string, Attempts>()
    const now = Date.now()
    const gone: QueuedSet[] = []
    const done: QueuedSet[] = []
    const records: DeliveryRecord[] = []
    const retried = new Map<string, Attempts>()
    const audit: AuditEntryInput[] = []
    let backoffUntil: number | undefined
    let lastError: string | undefined
    for (const { item, outcome } of batch) {
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
        gone.push(item)
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
    const [left] = await Promise.all([
      this.outbox.complete(sid, done, records, countLeft),
      this.outbox.setAttempts(sid, retried),
      failing && done.length > 0 ? this.outbox.clearFailing(sid) : undefined,
    ])
    if (audit.length > 0) this.audit?.submit(audit)
    return {
      ...(backoffUntil !== undefined ? { backoffUntil } : {}),
      ...(lastError !== undefined ? { lastError } : {}),
      anyDelivered: done.length > 0,
      gone: [...gone, ...done],
      ...(left !== undefined ? { left } : {}),
    }
  }
}
