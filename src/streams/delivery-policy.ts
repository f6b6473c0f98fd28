/**
 * What a stream's status means for its SETs, in one place: enabled delivers every lane; paused holds
 * (new SETs are queued, only control SETs go out); disabled drops (nothing is queued, what was held is
 * forgotten; SSF §8.1.2). Fan-out, the dispatcher, poll and the stream lifecycle ask here; no Lua script
 * decides by status (poll's hand-out script is given the lanes to serve).
 */
import type { Lane } from '../delivery/outbox.js'
import type { StreamStatus } from './model.js'

/** Whether new SETs are queued for a stream in this status. */
export const queuesSets = (status: StreamStatus): boolean => status !== 'disabled'

/** The lanes delivered now, in order. */
export function deliverableLanes(status: StreamStatus): readonly Lane[] {
  return status === 'enabled' ? ['c', 'p', 'n'] : status === 'paused' ? ['c'] : []
}

/** Whether a status change must forget what the stream holds. */
export const dropsBacklog = (status: StreamStatus): boolean => status === 'disabled'

/** Whether moving from one status to another lets SETs out that were held (then the stream is scheduled). */
export const deliversMore = (from: StreamStatus, to: StreamStatus): boolean =>
  deliverableLanes(to).length > deliverableLanes(from).length
