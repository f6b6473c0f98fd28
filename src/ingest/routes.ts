/**
 * `POST /events` (emitter role): validates, assigns each event an id, an ingest sequence and a `txn`,
 * appends the batch to the durable ingest log, and answers 202 only once it is there.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { BrokerError } from '../errors.js'
import { operation } from '../http/route.js'
import { SubjectDoc, z } from '../http/schema.js'
import { MAX_BATCH, postedEvents, validateInSlices } from './validate.js'
import type { EventAcceptor } from './pipeline.js'
import type { AuditLog } from '../audit/log.js'
import { remoteAddress } from '../http/remote-address.js'
import type { Admission } from './admission.js'

const ENQUEUE_TIMEOUT_MS = 5000

export interface IngestDeps {
  ingest: EventAcceptor
  clients: ClientRegistry
  admin: BootstrapAdmin
  maxBodyBytes: number
  audit?: AuditLog
  /** Refuses normal-priority requests while the broker is at capacity (admission.ts). */
  admission?: Admission
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new BrokerError(
            'temporarily_unavailable',
            'the event store did not answer; the events were not acknowledged, retry later',
          ),
        ),
      ms,
    )
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const EXAMPLE_EVENT = {
  type: 'caep/session-revoked',
  subject: { format: 'email', email: 'alice@example.com' },
  event: { reason_admin: { en: 'Suspicious sign-in' } },
  txn: 'txn-8d0e',
}

/** Documented members of one event; each is checked by validate.ts, per event type. */
const EventDoc = z
  .object({
    type: z.string().openapi({
      description: 'Event-type URI or alias such as caep/session-revoked.',
      example: 'caep/session-revoked',
    }),
    subject: SubjectDoc,
    event: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: "The event's own members (checked against its type)." }),
    txn: z.string().max(256).optional().openapi({
      description:
        'Transaction id; assigned when absent, shared by everything derived from the event.',
    }),
  })
  .strict()
  .openapi('Event', { example: EXAMPLE_EVENT })

const EventBatchDoc = z
  .object({ events: z.array(EventDoc).min(1).max(MAX_BATCH) })
  .strict()
  .openapi('EventBatch', { example: { events: [EXAMPLE_EVENT] } })

/**
 * The envelope: a JSON object. Checked with zod here; the events in it by validate.ts, which names the
 * event and member at fault (one pass, on the delivery hot path).
 */
const EventsEnvelope = z.record(z.string(), z.unknown(), { error: 'body: must be a JSON object' })

const Accepted = z
  .union([z.object({ txn: z.string() }), z.object({ txns: z.array(z.string()) })])
  .openapi('Accepted', {
    description: 'One `txn` for a single event, `txns` (in order) for a batch.',
    example: { txns: ['txn-8d0e', '0b7c2f9e4a1d4e6f'] },
  })

export function ingestRoutes(deps: IngestDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  operation(
    app,
    {
      method: 'post',
      path: '/events',
      operationId: 'ingestEvents',
      tag: 'Events',
      summary: 'Ingest one event or a batch; 202 once durable',
      description: `One event, or \`{"events": [...]}\` of up to ${MAX_BATCH}. All or nothing: one bad event refuses the request, naming the event and member at fault. While the broker is at capacity (its event loop lags by more than SSF_BROKER_ADMISSION_LAG_MS), a request for streams it is far behind on that holds no priority event type (SSF_BROKER_PRIORITY_EVENT_TYPES) is refused with 503 \`overloaded\` and \`Retry-After\`, nothing acknowledged; a request holding one is always taken.`,
      auth: requireRole(deps.clients, deps.admin, 'emitter'),
      body: {
        schema: EventsEnvelope,
        document: z.union([EventDoc, EventBatchDoc]),
        maxBytes: deps.maxBodyBytes,
        example: EXAMPLE_EVENT,
      },
      responses: { 202: { description: 'Accepted: durable in the ingest log', schema: Accepted } },
      errors: [400, 401, 403, 413, 415, 503],
    },
    async (c, { body }) => {
      const posted = postedEvents(body)
      deps.admission?.check(posted.inputs)
      const { events, batch } = await validateInSlices(posted)
      const principal = c.get('principal')
      const clientId = principal.kind === 'client' ? principal.client.client_id : 'bootstrap-admin'
      const remoteAddr = remoteAddress(c)
      const ingested = await withTimeout(deps.ingest.accept(events, clientId), ENQUEUE_TIMEOUT_MS)
      deps.audit?.submit(
        ingested.map((e) => ({
          kind: 'event.ingested' as const,
          txn: e.txn,
          type: e.type,
          subject: e.subject,
          client_id: clientId,
          event_id: e.id,
          ...(remoteAddr ? { remote_addr: remoteAddr } : {}),
        })),
      )
      c.header('Cache-Control', 'no-store')
      return batch
        ? c.json({ txns: ingested.map((e) => e.txn) }, 202)
        : c.json({ txn: ingested[0]!.txn }, 202)
    },
  )
  return app
}
