/**
 * `GET /admin/audit` (admin role): the audit trail (log.ts), newest first, paged, or exported as
 * JSON Lines.
 *
 *   ?txn=&subject=<URL-encoded JSON subject>&agent_id=&stream_id=&kind=<kind>[,<kind>...]
 *   &limit=1..1000 (default 100)&cursor=<next_cursor>&format=json|jsonl
 *
 * Keys combine (AND). `format=jsonl` streams every matching record (`limit`, when given, caps the total)
 * as `application/jsonl`, one record per line; `json` answers `{records, next_cursor?}`.
 *
 * `GET /admin/audit/verify`: checks the hash chain; `{ok, checked, ...}` (see AuditLog.verify).
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { operation } from '../http/route.js'
import { subjectQuery, z } from '../http/schema.js'
import type { AuditLog } from './log.js'
import { AUDIT_KINDS, type AuditFilter, type AuditKind } from './types.js'

export interface AuditRoutesDeps {
  audit: AuditLog
  clients: ClientRegistry
  admin: BootstrapAdmin
}

const idText = (description: string) =>
  z
    .string()
    .min(1, 'must be a non-empty string of at most 256 characters')
    .max(256, 'must be a non-empty string of at most 256 characters')
    .optional()
    .openapi({ description })

const AuditQuery = z
  .strictObject({
    txn: idText('Transaction id shared by an event and everything derived from it.'),
    subject: subjectQuery(undefined).openapi({
      description: 'URL-encoded JSON subject identifier.',
      example: '{"format":"email","email":"alice@example.com"}',
    }),
    agent_id: idText("An agent's id."),
    stream_id: idText("A stream's id."),
    kind: z
      .string()
      .transform((raw, ctx) => {
        const kinds = raw.split(',').map((k) => k.trim())
        const unknown = kinds.find((k) => !(AUDIT_KINDS as readonly string[]).includes(k))
        if (unknown !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: `unknown kind ${JSON.stringify(unknown.slice(0, 100))}; kinds are ${AUDIT_KINDS.join(', ')}`,
          })
        return kinds as AuditKind[]
      })
      .optional()
      .openapi({
        description: 'Comma-separated record kinds.',
        example: 'event.ingested,set.delivered',
      }),
    limit: z.string().optional().openapi({
      description: 'Page size (json, 1 to 1000, default 100) or total cap (jsonl).',
      example: '100',
    }),
    cursor: z
      .string()
      .regex(/^\d{1,20}$/, 'must be the next_cursor of a previous page')
      .optional()
      .openapi({ description: 'next_cursor of the previous page.' }),
    format: z
      .enum(['json', 'jsonl'], { error: 'must be "json" or "jsonl"' })
      .default('json')
      .openapi({ description: '`json` (default) or `jsonl` (JSON Lines, every matching record).' }),
  })
  .transform((q, ctx) => {
    if (q.limit === undefined) return { ...q, limit: undefined }
    const json = q.format === 'json'
    if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || (json && Number(q.limit) > 1000)) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit'],
        message: json ? 'must be a whole number from 1 to 1000' : 'must be a positive whole number',
      })
      return z.NEVER
    }
    return { ...q, limit: Number(q.limit) }
  })

const AuditRecord = z
  .looseObject({
    seq: z.number().int(),
    kind: z.enum(AUDIT_KINDS as unknown as [AuditKind, ...AuditKind[]]),
    at: z.number().int(),
    txn: z.string().optional(),
  })
  .openapi('AuditRecord')

const TAG = 'Audit'

export function auditRoutes(deps: AuditRoutesDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const auth = requireRole(deps.clients, deps.admin, 'admin')
  // The hash chain checked end to end (as `npm run audit:verify` does on Redis directly).
  operation(
    app,
    {
      method: 'get',
      path: '/admin/audit/verify',
      operationId: 'verifyAudit',
      tag: TAG,
      summary: 'Check the audit hash chain end to end',
      auth,
      responses: {
        200: {
          description: 'Verification result',
          schema: z.looseObject({ ok: z.boolean(), checked: z.number().int() }),
          example: { ok: true, checked: 1024 },
        },
      },
      errors: [401, 403, 503],
    },
    async (c) => {
      c.header('Cache-Control', 'no-store')
      return c.json(await deps.audit.verify())
    },
  )
  operation(
    app,
    {
      method: 'get',
      path: '/admin/audit',
      operationId: 'queryAudit',
      tag: TAG,
      summary: 'The audit trail, newest first (admin role)',
      description:
        "Every step from an ingested event to each receiver's confirmation. Filters combine. Records form a tamper-evident hash chain (verify with `node dist/audit/verify-cli.js`).",
      auth,
      query: AuditQuery,
      responses: {
        200: {
          description:
            'Records (`format=json`), or every matching record as JSON Lines (`format=jsonl`, `application/jsonl`)',
          schema: z.object({ records: z.array(AuditRecord), next_cursor: z.string().optional() }),
          example: {
            records: [{ seq: 1042, kind: 'event.ingested', at: 1767225600123, txn: 'txn-8d0e' }],
            next_cursor: '1041',
          },
        },
      },
      errors: [400, 401, 403, 503],
    },
    async (c, { query: q }) => {
      const filter: AuditFilter = {
        ...(q.txn !== undefined ? { txn: q.txn } : {}),
        ...(q.agent_id !== undefined ? { agent_id: q.agent_id } : {}),
        ...(q.stream_id !== undefined ? { stream_id: q.stream_id } : {}),
        ...(q.subject !== undefined ? { subject: q.subject } : {}),
        ...(q.kind !== undefined ? { kind: q.kind } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      }
      c.header('Cache-Control', 'no-store')
      if (q.format === 'json') return c.json(await deps.audit.query(filter))
      const lines = deps.audit.exportJsonl(filter)[Symbol.asyncIterator]()
      const encoder = new TextEncoder()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { value, done } = await lines.next()
            if (done) controller.close()
            else controller.enqueue(encoder.encode(value))
          } catch (err) {
            controller.error(err)
          }
        },
        async cancel() {
          await lines.return?.()
        },
      })
      return new Response(body, {
        status: 200,
        headers: {
          'Content-Type': 'application/jsonl; charset=utf-8',
          'Cache-Control': 'no-store',
        },
      })
    },
  )
  return app
}
