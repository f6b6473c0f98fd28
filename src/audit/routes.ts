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
import { Hono } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import { badRequest } from '../http/errors.js'
import { parseSubject, type Subject } from '../subjects/subject.js'
import type { AuditLog } from './log.js'
import { AUDIT_KINDS, type AuditFilter, type AuditKind } from './types.js'

export interface AuditRoutesDeps {
  audit: AuditLog
  clients: ClientRegistry
  admin: BootstrapAdmin
}

const QUERY_PARAMS = ['txn', 'subject', 'agent_id', 'stream_id', 'kind', 'limit', 'cursor', 'format']

function text(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  if (value === '' || value.length > 256) throw badRequest(`${name}: must be a non-empty string of at most 256 characters`)
  return value
}

function subjectParam(raw: string | undefined): Subject | undefined {
  if (raw === undefined) return undefined
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    throw badRequest('subject: must be a URL-encoded JSON subject identifier such as {"format":"email","email":"alice@example.com"}', 'invalid_subject')
  }
  const parsed = parseSubject(json)
  if (!parsed.ok) {
    const first = parsed.issues[0]
    throw badRequest(first ? `${first.path}: ${first.message}` : 'subject: invalid', 'invalid_subject')
  }
  return parsed.subject
}

export function auditRoutes(deps: AuditRoutesDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  // The hash chain checked end to end (as `npm run audit:verify` does on Redis directly).
  app.get('/admin/audit/verify', requireRole(deps.clients, deps.admin, 'admin'), async (c) => {
    c.header('Cache-Control', 'no-store')
    return c.json(await deps.audit.verify())
  })
  app.get('/admin/audit', requireRole(deps.clients, deps.admin, 'admin'), async (c) => {
    const q = c.req.query()
    for (const key of Object.keys(q)) if (!QUERY_PARAMS.includes(key)) throw badRequest(`${key.slice(0, 100)}: unknown query parameter (use ${QUERY_PARAMS.join(', ')})`)
    const format = q.format ?? 'json'
    if (format !== 'json' && format !== 'jsonl') throw badRequest('format: must be "json" or "jsonl"')
    let limit: number | undefined
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || (format === 'json' && Number(q.limit) > 1000)) {
        throw badRequest(format === 'json' ? 'limit: must be a whole number from 1 to 1000' : 'limit: must be a positive whole number')
      }
      limit = Number(q.limit)
    }
    if (q.cursor !== undefined && !/^\d{1,20}$/.test(q.cursor)) throw badRequest('cursor: must be the next_cursor of a previous page')
    let kinds: AuditKind[] | undefined
    if (q.kind !== undefined) {
      kinds = q.kind.split(',').map((k) => k.trim()) as AuditKind[]
      const unknown = kinds.find((k) => !(AUDIT_KINDS as readonly string[]).includes(k))
      if (unknown !== undefined) throw badRequest(`kind: unknown kind ${JSON.stringify(unknown.slice(0, 100))}; kinds are ${AUDIT_KINDS.join(', ')}`)
    }
    const txn = text(q.txn, 'txn')
    const agentId = text(q.agent_id, 'agent_id')
    const streamId = text(q.stream_id, 'stream_id')
    const subject = subjectParam(q.subject)
    const filter: AuditFilter = {
      ...(txn !== undefined ? { txn } : {}),
      ...(agentId !== undefined ? { agent_id: agentId } : {}),
      ...(streamId !== undefined ? { stream_id: streamId } : {}),
      ...(subject !== undefined ? { subject } : {}),
      ...(kinds !== undefined ? { kind: kinds } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    }
    c.header('Cache-Control', 'no-store')
    if (format === 'json') return c.json(await deps.audit.query(filter))
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
    return new Response(body, { status: 200, headers: { 'Content-Type': 'application/jsonl; charset=utf-8', 'Cache-Control': 'no-store' } })
  })
  return app
}
