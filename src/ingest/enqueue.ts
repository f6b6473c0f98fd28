/**
 * Turns validated events into durable ingest jobs: an id, an ingest sequence (delivery order across all
 * broker processes), a `txn` and, for CAEP events without one, an `event_timestamp`. Used by
 * `POST /events` and by the broker itself (agent retirement notices).
 */
import { randomUUID } from 'node:crypto'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { randomId } from '../lib/ids.js'
import type { IngestedEvent } from './fan-out.js'
import type { FanOutJob } from './queue.js'
import type { ValidEvent } from './validate.js'

const SEQ = 'ssf:seq'

export async function enqueueEvents(redis: Redis, queue: Queue<FanOutJob>, events: readonly ValidEvent[], clientId: string): Promise<IngestedEvent[]> {
  const now = Math.floor(Date.now() / 1000)
  const last = await redis.incrby(SEQ, events.length)
  const first = last - events.length + 1
  const list: IngestedEvent[] = events.map((e, i) => ({
    id: randomId(16),
    seq: first + i,
    type: e.type,
    subject: e.subject,
    sk: e.sk,
    // CAEP receivers read event_timestamp; when the emitter gave none, the ingest time is the closest
    // truth the broker has (never earlier than the real event).
    event: e.family === 'caep' && e.event.event_timestamp === undefined ? { ...e.event, event_timestamp: now } : e.event,
    txn: e.txn ?? randomUUID(),
    received_at: Date.now(),
    client_id: clientId,
  }))
  await queue.add('events', { events: list })
  return list
}
