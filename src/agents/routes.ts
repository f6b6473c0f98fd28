/**
 * Agent registry API (agent platforms: emitter role; operators: admin role).
 *
 *   POST   /agents               register an agent starting a task → 201 record (200 with the existing record
 *                                when the same agent is registered again for the same delegator)
 *   GET    /agents/{agent_id}    one agent with its delegation chain up to the root principal
 *   GET    /agents?subject=...   live agents acting for a subject (URL-encoded JSON subject), with paths
 *   DELETE /agents/{agent_id}    retire early → 204 (subscribers are told through `onRetired`)
 *
 * Emitters read every agent: delegation crosses platforms (an agent of one platform may delegate to an
 * agent of another), so the graph is shared. Only the client that registered an agent, or an admin, may
 * retire it.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import type { AuthEnv, Principal } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry, Role } from '../auth/clients.js'
import { HttpError, badRequest, forbidden, notFound } from '../http/errors.js'
import { readJsonBody } from '../http/json-body.js'
import { parseSubject } from '../subjects/subject.js'
import { AGENT_ID, type AgentRecord, type AgentRegistry } from './registry.js'

export interface AgentRoutesDeps {
  registry: AgentRegistry
  clients: ClientRegistry
  admin: BootstrapAdmin
  /** Called once per retirement by DELETE (reason "retired by <client>") or of an expired record a re-registration replaced (reason "expired"). */
  onRetired(record: AgentRecord, reason: string): Promise<void>
  /** Called after every successful registration (for the audit trail). */
  onRegistered?(record: AgentRecord, created: boolean, registeredBy: string): Promise<void>
  maxBodyBytes: number
}

/** Any one of the roles, tried in order (admin first: only it accepts the bootstrap admin token). */
function requireAnyRole(clients: ClientRegistry, admin: BootstrapAdmin, roles: readonly Role[]): MiddlewareHandler<AuthEnv> {
  const checks = roles.map((role) => requireRole(clients, admin, role))
  return async function requireAnyRoleCheck(c, next) {
    for (const check of checks) {
      let passed = false
      try {
        await check(c, async () => {
          passed = true
        })
      } catch (err) {
        if (err instanceof HttpError && err.status === 403) continue
        throw err
      }
      if (passed) return next()
    }
    throw forbidden(`this endpoint requires one of the roles ${roles.map((r) => `"${r}"`).join(', ')}`)
  }
}

function callerId(principal: Principal): string {
  return principal.kind === 'client' ? principal.client.client_id : 'bootstrap-admin'
}

function isAdmin(principal: Principal): boolean {
  return principal.kind === 'bootstrap-admin' || principal.client.roles.includes('admin')
}

export function agentRoutes(deps: AgentRoutesDeps): Hono<AuthEnv> {
  const app = new Hono<AuthEnv>()
  const emitter = requireRole(deps.clients, deps.admin, 'emitter')
  const reader = requireAnyRole(deps.clients, deps.admin, ['admin', 'emitter'])
  app.use('/agents', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })
  app.use('/agents/*', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })

  app.post('/agents', emitter, async (c) => {
    const body = await readJsonBody(c, deps.maxBodyBytes)
    const registeredBy = callerId(c.get('principal'))
    const { record, created, replaced } = await deps.registry.register(body, registeredBy)
    if (replaced) await deps.onRetired(replaced, 'expired')
    await deps.onRegistered?.(record, created, registeredBy)
    return c.json(record, created ? 201 : 200)
  })

  app.get('/agents', reader, async (c) => {
    const raw = c.req.query('subject')
    if (raw === undefined || raw === '') throw badRequest('subject: required, a URL-encoded JSON subject such as {"format":"email","email":"alice@example.com"}', 'invalid_subject')
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      throw badRequest('subject: must be a URL-encoded JSON subject identifier', 'invalid_subject')
    }
    const parsed = parseSubject(json)
    if (!parsed.ok) {
      const first = parsed.issues[0]
      throw badRequest(first ? `${first.path}: ${first.message}` : 'subject: invalid', 'invalid_subject')
    }
    const dependents = await deps.registry.dependents(parsed.subject)
    return c.json({ subject: parsed.subject, agents: dependents.map((d) => ({ ...d.record, path: d.path })) })
  })

  app.get('/agents/:agent_id', reader, async (c) => {
    const id = c.req.param('agent_id')
    const found = AGENT_ID.test(id) ? await deps.registry.get(id) : undefined
    if (!found) throw notFound('agent not found')
    return c.json({ ...found.record, chain: found.chain, principal: found.principal })
  })

  app.delete('/agents/:agent_id', reader, async (c) => {
    const id = c.req.param('agent_id')
    const found = AGENT_ID.test(id) ? await deps.registry.get(id) : undefined
    if (!found) throw notFound('agent not found')
    const principal = c.get('principal')
    if (!isAdmin(principal) && found.record.registered_by !== callerId(principal)) {
      throw forbidden('only the client that registered this agent, or an admin, can retire it')
    }
    const reason = `retired by ${callerId(principal)}`
    const retired = await deps.registry.retire(id, reason)
    // Already retired: nothing more to do (DELETE is idempotent). If telling subscribers fails, the
    // registry's expiry sweep tells them later (retire() queued the notification).
    if (retired) {
      await deps.onRetired(retired, reason)
      await deps.registry.notified(id)
    }
    return c.body(null, 204)
  })

  return app
}
