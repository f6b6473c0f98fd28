/**
 * An operator changes a stream's status: the same change as the receiver's own status endpoint, and the
 * receiver is told by a stream-updated event (SSF §8.1.5), as for any change the transmitter makes. A
 * stream about to be disabled drops its queue, so that event is attempted once, directly, first.
 */
import type { StreamRecord, StreamStatus } from '../streams/model.js'
import { isPush, type PushDelivery } from '../streams/model.js'
import type { StreamLifecycle } from '../streams/lifecycle.js'
import type { ControlEvents } from '../streams/control-events.js'
import { EVENT_URIS } from '../events/catalog.js'
import type { Pusher } from '../delivery/dispatcher.js'
import type { Logger } from '../lib/log.js'

export type ChangeStatus = (stream: StreamRecord, status: StreamStatus, reason: string | undefined) => Promise<StreamRecord | undefined>

export function operatorStatusChange(deps: { lifecycle: StreamLifecycle; control: ControlEvents; pusher: Pusher; log: Logger }): ChangeStatus {
  return async (stream, status, reason) => {
    const told = reason ?? `status set to ${status} by the operator`
    if (status === 'disabled' && stream.status !== 'disabled' && isPush(stream)) {
      try {
        const set = await deps.control.sign(stream, EVENT_URIS.streamUpdated, { status, reason: told })
        const delivery = stream.delivery as PushDelivery
        await deps.pusher.push({ url: delivery.endpoint_url, set, ...(delivery.authorization_header !== undefined ? { authorization: delivery.authorization_header } : {}) })
      } catch (err) {
        deps.log.warn('stream-updated event before disabling could not be sent', { stream_id: stream.stream_id, error: err })
      }
    }
    const next = await deps.lifecycle.setStatus(stream, status, reason, 'admin')
    if (!next) return undefined
    if (status !== 'disabled' && stream.status !== status) await deps.control.streamUpdated(next, status, told)
    deps.log.info('stream status changed by the operator', { stream_id: stream.stream_id, status, previous_status: stream.status })
    return next
  }
}
