/**
 * `POST /events` (emitter role): validates, assigns each event an id, an ingest sequence and a `txn`,
 * appends the batch to the durable ingest log, and answers 202 only once it is there.
 */
import { Hono } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { readJsonBody } from '../http/json-body.js'
import { HttpError } from '../http/errors.js'
import { validateEventsBody } from './validate.js'
import type { EventAcceptor } from './pipeline.js'
import type { AuditLog } from '../audit/log.js'
import { remoteAddress } from '../http/remote-address.js'
import type { Activity } from '../observe/activity.js'

const ENQUEUE_TIMEOUT_MS = 5000

export interface IngestDeps {
  ingest: EventAcceptor
  clients: ClientRegistry
  admin: BootstrapAdmin
  maxBodyBytes: number
  audit?: AuditLog
  activity?: Activity
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(503, 'temporarily_unavailable', 'the event store did not answer; the events were not acknowledged, retry later')), ms)
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
    const remoteAddr = remoteAddress(c)
    const ingested = await withTimeout(deps.ingest.accept(events, clientId), ENQUEUE_TIMEOUT_MS)
    deps.audit?.submit(
      ingested.map((e) => ({ kind: 'event.ingested' as const, txn: e.txn, type: e.type, subject: e.subject, client_id: clientId, event_id: e.id, ...(remoteAddr ? { remote_addr: remoteAddr } : {}) })),
    )
    const at = Date.now()
    for (const e of ingested) deps.activity?.emit('ingested', { txn: e.txn, type: e.type, event_id: e.id, at })
    c.header('Cache-Control', 'no-store')
    return batch ? c.json({ txns: ingested.map((e) => e.txn) }, 202) : c.json({ txn: ingested[0]!.txn }, 202)
  })
  return app
}
