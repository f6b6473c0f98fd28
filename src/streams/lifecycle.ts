/**
 * A stream's life after the request that changes it has been validated: create (within the receiver's
 * quota), update, status changes with the stream-updated events they send, disable-after-failure, and
 * deletion with every key of the stream. The one owner of these, used by the receiver API, the admin API
 * (client deletion included), the inactivity sweeper and the dispatcher alike.
 *
 * Every record write is conditional (streams/store.ts): an update applies to the record it was made
 * from, or is re-applied to the newer one, and never to a deleted stream. Writes to a stream's other
 * keys (queues, scheduling, subjects) happen before a check that the stream still exists; a deletion
 * removes the record first and those keys after, so whichever comes second cleans up: nothing of a
 * deleted stream stays behind.
 */
import type { AuditLog } from '../audit/log.js'
import type { Pusher } from '../delivery/dispatcher.js'
import type { Outbox } from '../delivery/outbox.js'
import type { Scheduler } from '../delivery/scheduler.js'
import { BrokerError } from '../errors.js'
import { EVENT_URIS } from '../events/catalog.js'
import type { Logger } from '../lib/log.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import type { ControlEvents } from './control-events.js'
import { deliversMore, dropsBacklog } from './delivery-policy.js'
import { isPush, type PushDelivery, type StreamRecord, type StreamStatus } from './model.js'
import type { StreamStore } from './store.js'

export interface LifecycleDeps {
  streams: StreamStore
  outbox: Outbox
  subjects: SubjectIndex
  scheduler: Scheduler
  control: ControlEvents
  /** Sends one SET straight to a push endpoint: the stream-updated event sent before a stream is disabled. */
  pusher: Pusher
  log: Logger
  audit?: AuditLog
  /** SSF_BROKER_MAX_STREAMS_PER_RECEIVER */
  maxStreamsPerClient: number
  /** The stream may have SETs to deliver now (push: claim or wake; poll: wake long polls). */
  schedule(stream: StreamRecord): Promise<void>
}

/** Who changes a status: the receiver itself is not told; an operator's or the broker's change is (SSF §8.1.5). */
export type ChangedBy = 'receiver' | 'admin' | 'broker'

/** Tries of a conditional update that keeps meeting newer changes, before answering 409. */
const WRITE_ATTEMPTS = 10

type Changes = Map<keyof StreamRecord, unknown>

/** The members `next` changes relative to `from` (undefined: removed). */
function changesBetween(from: StreamRecord, next: StreamRecord): Changes {
  const changes: Changes = new Map()
  for (const name of new Set([...Object.keys(from), ...Object.keys(next)]) as Set<
    keyof StreamRecord
  >) {
    if (JSON.stringify(from[name]) !== JSON.stringify(next[name])) changes.set(name, next[name])
  }
  return changes
}

function applyChanges(record: StreamRecord, changes: Changes): StreamRecord {
  const next: Record<string, unknown> = { ...record }
  for (const [name, value] of changes) {
    if (value === undefined) delete next[name]
    else next[name] = value
  }
  return next as unknown as StreamRecord
}

export class StreamLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  /** Stores a new stream; 409 stream_limit_exceeded when its receiver holds as many as it may. */
  async create(stream: StreamRecord): Promise<void> {
    const result = await this.d.streams.create(stream, this.d.maxStreamsPerClient)
    if (result === 'limit_reached') {
      throw new BrokerError(
        'stream_limit_exceeded',
        `a receiver may hold at most ${this.d.maxStreamsPerClient} streams; delete one before creating another`,
      )
    }
    if (result === 'exists') throw new Error(`stream id collision: ${stream.stream_id}`)
  }

  /**
   * Writes a changed configuration (`next`, made from `current`); what `next` changes is applied to a
   * newer record if one was written meanwhile. Undefined when the stream was deleted meanwhile.
   */
  async update(next: StreamRecord, current: StreamRecord): Promise<StreamRecord | undefined> {
    const written = await this.#write(current, next)
    if (!written) return undefined
    const [before, after] = written
    if (after.delivery.method !== before.delivery.method) {
      if (isPush(before)) await this.d.scheduler.forget(after.stream_id)
      await this.d.schedule(after)
      await this.settle(after.stream_id)
    }
    return after
  }

  /**
   * Changes a stream's status: disabled forgets what it held (SSF §8.1.2); a status that delivers more
   * delivers what was held, in order. Unless the receiver asked for it, the receiver is told by a
   * stream-updated event: queued in the control lane, or, before disabling (which drops the queue), sent
   * once straight to a push endpoint. Undefined when the stream was deleted meanwhile.
   */
  async setStatus(
    current: StreamRecord,
    status: StreamStatus,
    reason: string | undefined,
    changedBy: ChangedBy = 'receiver',
  ): Promise<StreamRecord | undefined> {
    const next: StreamRecord = { ...current, status, updated_at: Math.floor(Date.now() / 1000) }
    delete next.reason
    if (reason !== undefined) next.reason = reason
    const told =
      changedBy === 'receiver'
        ? undefined
        : (reason ??
          `status set to ${status} by the ${changedBy === 'admin' ? 'operator' : 'broker'}`)
    if (told !== undefined && dropsBacklog(status) && !dropsBacklog(current.status))
      await this.#tellDirectly(current, status, told)
    const written = await this.#write(current, next)
    if (!written) return undefined
    const [before, after] = written
    if (dropsBacklog(after.status)) await this.d.outbox.purge(after.stream_id)
    if (deliversMore(before.status, after.status)) await this.d.schedule(after)
    if (told !== undefined && !dropsBacklog(status) && before.status !== status)
      await this.d.control.streamUpdated(after, status, told)
    await this.settle(after.stream_id)
    this.d.audit?.submit({
      kind: 'stream.status_changed',
      stream_id: after.stream_id,
      status,
      previous_status: before.status,
      changed_by: changedBy,
      ...(reason !== undefined ? { reason } : {}),
    })
    if (changedBy !== 'receiver')
      this.d.log.info('stream status changed', {
        stream_id: after.stream_id,
        status,
        previous_status: before.status,
        changed_by: changedBy,
      })
    return after
  }

  /** A push stream failing since `since` is disabled, its receiver told why (the dispatcher's hand-over). */
  async disableAfterFailure(stream: StreamRecord, since: number, lastError: string): Promise<void> {
    const current = await this.d.streams.get(stream.stream_id)
    if (!current || dropsBacklog(current.status)) return
    const reason = `disabled after sustained delivery failure: failing since ${new Date(since).toISOString()}, last error ${lastError}`
    await this.setStatus(current, 'disabled', reason, 'broker')
  }

  /** Deletes the stream and every key of it. False if it was already gone. */
  async remove(stream: StreamRecord): Promise<boolean> {
    const removed = await this.d.streams.remove(stream)
    await this.purge(stream.stream_id)
    return removed
  }

  /** Deletes every stream of a client (being deleted itself), including one a late create adds meanwhile. */
  async removeAllOf(clientId: string): Promise<void> {
    for (;;) {
      const streams = await this.d.streams.listForClient(clientId)
      if (streams.length === 0) return
      for (const stream of streams) await this.remove(stream)
    }
  }

  /** Removes a deleted stream's keys: queued SETs and delivery state, subjects, scheduling. */
  async purge(sid: string): Promise<void> {
    await Promise.all([
      this.d.outbox.purgeAll(sid),
      this.d.subjects.purge(sid),
      this.d.scheduler.forget(sid),
    ])
  }

  /** Called after writing to a stream's keys: if the stream was deleted meanwhile, removes what is left. */
  async settle(sid: string): Promise<void> {
    if (!(await this.d.streams.exists(sid))) await this.purge(sid)
  }

  /**
   * The conditional write: `next` replaces the record it was made from, or what it changes is applied to
   * the newer record. Returns the record replaced and the one written; undefined when the stream is gone.
   */
  async #write(
    from: StreamRecord,
    next: StreamRecord,
  ): Promise<[StreamRecord, StreamRecord] | undefined> {
    const changes = changesBetween(from, next)
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const result = await this.d.streams.update(next, from)
      if (result === 'saved') return [from, next]
      if (result === 'gone') return undefined
      const latest = await this.d.streams.get(from.stream_id)
      if (!latest) return undefined
      from = latest
      next = applyChanges(latest, changes)
    }
    throw new BrokerError(
      'conflict',
      'the stream kept changing while this change was written; try again',
    )
  }

  async #tellDirectly(stream: StreamRecord, status: StreamStatus, reason: string): Promise<void> {
    if (!isPush(stream)) return
    try {
      const set = await this.d.control.sign(stream, EVENT_URIS.streamUpdated, { status, reason })
      const delivery = stream.delivery as PushDelivery
      await this.d.pusher.push({
        url: delivery.endpoint_url,
        set,
        ...(delivery.authorization_header !== undefined
          ? { authorization: delivery.authorization_header }
          : {}),
      })
    } catch (err) {
      this.d.log.warn('stream-updated event before disabling could not be sent', {
        stream_id: stream.stream_id,
        error: err,
      })
    }
  }
}
