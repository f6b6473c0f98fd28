/**
 * Delivery outcomes as log lines, from the activity bus: debug per delivered SET, warn per failed push
 * attempt (retry, failed, dead_letter) with the stream, jti, outcome, HTTP status and latency.
 */
import type { Logger } from '../lib/log.js'
import type { Activity } from '../observe/activity.js'

export function logDeliveries(activity: Activity, log: Logger): () => void {
  const offs = [
    activity.on('delivered', (e) =>
      log.debug('SET delivered', {
        stream_id: e.stream_id,
        jti: e.jti,
        txn: e.txn,
        method: e.method,
        ...(e.status !== undefined ? { status: e.status } : {}),
        latency_ms: e.latency_ms,
        ...(e.push_ms !== undefined ? { push_ms: Math.round(e.push_ms) } : {}),
      }),
    ),
    activity.on('failed', (e) =>
      log.warn(
        e.outcome === 'retry'
          ? 'push attempt failed; will retry'
          : 'push failed; SET dead-lettered',
        {
          stream_id: e.stream_id,
          jti: e.jti,
          txn: e.txn,
          outcome: e.outcome,
          ...(e.status !== undefined ? { status: e.status } : {}),
          ...(e.push_ms !== undefined ? { latency_ms: Math.round(e.push_ms) } : {}),
          error: e.error,
        },
      ),
    ),
    activity.on('dropped', (e) =>
      log.warn('SETs dropped: stream backlog full', { stream_id: e.stream_id, count: e.count }),
    ),
  ]
  return () => offs.forEach((off) => off())
}
