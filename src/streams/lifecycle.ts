/**
 * A stream's life after the request that changes it has been validated: create, update, status changes
 * and deletion, with everything that must move with them (delivery state, subjects, scheduling, audit).
 * Used by the receiver API, the admin API, the inactivity sweeper and disable-after-failure alike.
 * Every write is conditional (streams/store.ts), so a racing delete is never undone by an update.
 */
import type { AuditLog } from '../audit/log.js'
import type { Outbox } from '../delivery/outbox.js'
import type { Scheduler } from '../delivery/scheduler.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import { dropsBacklog } from './delivery-policy.js'
import { isPush, type StreamRecord, type StreamStatus } from './model.js'
import type { StreamStore } from './store.js'

export interface LifecycleDeps {
  streams: StreamStore
  outbox: Outbox
  subjects: SubjectIndex
  scheduler: Scheduler
  audit?: AuditLog
  /** The stream may have SETs to deliver now (push: claim or wake; poll: wake long polls). */
  schedule(stream: StreamRecord): Promise<void>
}

export class StreamLifecycle {
  constructor(private readonly d: LifecycleDeps) {}

  async create(stream: StreamRecord): Promise<void> {
    if (!(await this.d.streams.save(stream, 'create'))) throw new Error(`stream id collision: ${stream.stream_id}`)
  }

  /** Writes a changed configuration; undefined when the stream was deleted meanwhile. */
  async update(next: StreamRecord, current: StreamRecord): Promise<StreamRecord | undefined> {
    if (!(await this.d.streams.save(next, 'update'))) return undefined
    if (isPush(current) && !isPush(next)) await this.d.scheduler.forget(next.stream_id)
    if (next.delivery.method !== current.delivery.method) await this.d.schedule(next)
    return next
  }

  /**
   * Changes a stream's status: disabled forgets what it held (SSF §8.1.2); enabled again delivers what a
   * paused stream held, in order. Undefined when the stream was deleted meanwhile.
   */
  async setStatus(current: StreamRecord, status: StreamStatus, reason: string | undefined, changedBy = 'receiver'): Promise<StreamRecord | undefined> {
    const next: StreamRecord = { ...current, status, updated_at: Math.floor(Date.now() / 1000) }
    delete next.reason
    if (reason !== undefined) next.reason = reason
    if (!(await this.d.streams.save(next, 'update'))) return undefined
    if (dropsBacklog(status)) await this.d.outbox.purge(current.stream_id)
    if (status === 'enabled' && current.status !== 'enabled') await this.d.schedule(next)
    this.d.audit?.submit({
      kind: 'stream.status_changed',
      stream_id: current.stream_id,
      status,
      previous_status: current.status,
      changed_by: changedBy,
      ...(reason !== undefined ? { reason } : {}),
    })
    return next
  }

  /** Deletes the stream and every key of its delivery state and subjects. False if it was already gone. */
  async remove(stream: StreamRecord): Promise<boolean> {
    const removed = await this.d.streams.remove(stream)
    await Promise.all([this.d.outbox.purgeAll(stream.stream_id), this.d.subjects.purge(stream.stream_id), this.d.scheduler.forget(stream.stream_id)])
    return removed
  }
}
