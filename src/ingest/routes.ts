/**
 * `POST /events` (emitter role): validates, assigns each event an id, an ingest sequence and a `txn`,
 * stores the batch as one ingest job, and answers 202 only once that job is in Redis.
 */
import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { readJsonBody } from '../http/json-body.js'
import { HttpError } from '../http/errors.js'
import { randomId } from '../lib/ids.js'
import type { FanOutJob, } from './queue.js'
import type { IngestedEvent } from './fan-out.js'
import { validateEventsBody } from './validate.js'

const SEQ = 'ssf:seq'
const ENQUEUE_TIMEOUT_MS = 5000

export interface IngestDeps {
  redis: Redis
  queue: Queue<FanOutJob>
  clients: ClientRegistry
  admin: BootstrapAdmin
  maxBodyBytes: number
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(503, 'temporarily_unavailable', 'the event store is not reachable; nothing was accepted, retry later')), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function ingestRoutes(deps: IngestDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  app.post('/events', requireRole(deps.clients, deps.admin, 'emitter'), async (c) => {
    const body = await readJsonBody(c, deps.maxBodyBytes)
    const { events, batch } = validateEventsBody(body)
    const principal = c.get('principal')
    const clientId = principal.kind === 'client' ? principal.client.client_id : 'bootstrap-admin'
    const now = Math.floor(Date.now() / 1000)
    const ingested = await withTimeout(
      (async () => {
        const last = await deps.redis.incrby(SEQ, events.length)
        const first = last - events.length + 1
        const list: IngestedEvent[] = events.map((e, i) => ({
          id: randomId(16),
          seq: first + i,
          type: e.type,
          subject: e.subject,
          sk: e.sk,
          // CAEP receivers read event_timestamp; when the emitter gave none, the ingest time is the
          // closest truth the broker has (never earlier than the real event).
          event: e.family === 'caep' && e.event.event_timestamp === undefined ? { ...e.event, event_timestamp: now } : e.event,
          txn: e.txn ?? randomUUID(),
          received_at: Date.now(),
          client_id: clientId,
        }))
        await deps.queue.add('events', { events: list })
        return list
      })(),
      ENQUEUE_TIMEOUT_MS,
    )
    c.header('Cache-Control', 'no-store')
    return batch ? c.json({ txns: ingested.map((e) => e.txn) }, 202) : c.json({ txn: ingested[0]!.txn }, 202)
  })
  return app
}
