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
import type { MiddlewareHandler } from 'hono'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { AuthEnv, Principal } from '../auth/middleware.js'
import { requireRole } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry, Role } from '../auth/clients.js'
import { setResponseHeader } from '../http/response-header.js'
import { forbidden, notFound } from '../http/errors.js'
import { isBrokerError } from '../errors.js'
import { operation } from '../http/route.js'
import { SubjectDoc, subjectQuery, z } from '../http/schema.js'
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
function requireAnyRole(
  clients: ClientRegistry,
  admin: BootstrapAdmin,
  roles: readonly Role[],
): MiddlewareHandler<AuthEnv> {
  const checks = roles.map((role) => requireRole(clients, admin, role))
  return async function requireAnyRoleCheck(c, next) {
    for (const check of checks) {
      let passed = false
      try {
        await check(c, async () => {
          passed = true
        })
      } catch (err) {
        if (isBrokerError(err) && err.status === 403) continue
        throw err
      }
      if (passed) return next()
    }
    throw forbidden(
      `this endpoint requires one of the roles ${roles.map((r) => `"${r}"`).join(', ')}`,
    )
  }
}

function callerId(principal: Principal): string {
  return principal.kind === 'client' ? principal.client.client_id : 'bootstrap-admin'
}

function isAdmin(principal: Principal): boolean {
  return principal.kind === 'bootstrap-admin' || principal.client.roles.includes('admin')
}

const TAG = 'Agents'
const AGENT = 'Xq3v9b0Jm2kR7tLw1yZc5NfH8dA'
const USER = { format: 'email', email: 'alice@example.com' }
const REGISTRATION = {
  agent: { format: 'uri', uri: 'spiffe://example.org/agent/triage' },
  delegator: USER,
  task: 'triage inbox',
  scopes: ['mail.read'],
  expires_in: 3600,
}

/** Documented members of a registration; the registry checks them (agents/registry.ts). */
const RegistrationDoc = z
  .object({
    agent: SubjectDoc,
    delegator: SubjectDoc.optional().openapi({
      description: 'A user subject, or a live registered agent (by subject).',
    }),
    delegator_agent_id: z.string().optional().openapi({
      description:
        'A live registered agent, by its agent_id (instead of, or naming the same agent as, delegator).',
    }),
    task: z.string().openapi({ description: 'What the agent was started for.' }),
    scopes: z.array(z.string()),
    expires_in: z
      .number()
      .int()
      .min(1)
      .openapi({ description: 'Lifetime in seconds (required: registrations are ephemeral).' }),
    sid: z.string().optional(),
    token_jti: z.string().optional().openapi({
      description:
        "The jti of the agent's access token: an event about that token reaches the agent.",
    }),
  })
  .strict()
  .openapi('AgentRegistration', { example: REGISTRATION })

const AgentRecordDoc = z
  .looseObject({
    agent_id: z.string(),
    agent: SubjectDoc,
    delegator: SubjectDoc,
    delegator_agent_id: z.string().optional(),
    task: z.string(),
    scopes: z.array(z.string()),
    registered_by: z.string(),
  })
  .openapi('Agent', {
    example: { agent_id: AGENT, ...REGISTRATION, registered_by: 'c_7f3a9d2e41b8' },
  })

const AgentParams = z.object({
  agent_id: z.string().openapi({ description: "The agent's id.", example: AGENT }),
})

export function agentRoutes(deps: AgentRoutesDeps): OpenAPIHono<AuthEnv> {
  const app = new OpenAPIHono<AuthEnv>()
  const emitter = requireRole(deps.clients, deps.admin, 'emitter')
  const reader = requireAnyRole(deps.clients, deps.admin, ['admin', 'emitter'])
  const agent = async (_c: unknown, { params }: { params: { agent_id: string } }) => {
    const found = AGENT_ID.test(params.agent_id)
      ? await deps.registry.get(params.agent_id)
      : undefined
    if (!found) throw notFound('agent not found')
    return found
  }
  app.use('/agents', async (c, next) => {
    await next()
    setResponseHeader(c, 'Cache-Control', 'no-store')
  })
  app.use('/agents/*', async (c, next) => {
    await next()
    setResponseHeader(c, 'Cache-Control', 'no-store')
  })

  operation(
    app,
    {
      method: 'post',
      path: '/agents',
      operationId: 'registerAgent',
      tag: TAG,
      summary: 'Register an agent starting a task (emitter role)',
      description:
        'Idempotent: the same agent for the same delegator answers 200 with the existing record while it is live. The delegator is a user subject, or a live registered agent (by subject or by `delegator_agent_id`). Cycles and chains deeper than the configured limit are refused; nothing is written when a registration is refused.',
      auth: emitter,
      body: {
        schema: z.record(z.string(), z.unknown(), { error: 'body: must be a JSON object' }),
        document: RegistrationDoc,
        maxBytes: deps.maxBodyBytes,
        example: REGISTRATION,
      },
      responses: {
        200: {
          description: 'Already registered for the same delegator: the existing record',
          schema: AgentRecordDoc,
        },
        201: { description: 'Registered', schema: AgentRecordDoc },
      },
      errors: [400, 401, 403, 404, 409, 413, 415, 503],
    },
    async (c, { body }) => {
      const registeredBy = callerId(c.get('principal'))
      const { record, created, replaced } = await deps.registry.register(body, registeredBy)
      if (replaced) await deps.onRetired(replaced, 'expired')
      await deps.onRegistered?.(record, created, registeredBy)
      return c.json(record, created ? 201 : 200)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/agents',
      operationId: 'listAgentsForSubject',
      tag: TAG,
      summary:
        'Live agents acting for a subject, directly or down a delegation chain (emitter or admin role)',
      auth: reader,
      query: z.object({
        subject: subjectQuery(
          'required, a URL-encoded JSON subject such as {"format":"email","email":"alice@example.com"}',
        ).openapi({
          description:
            'URL-encoded JSON subject identifier, e.g. `%7B%22format%22%3A%22email%22%2C%22email%22%3A%22alice%40example.com%22%7D`.',
          example: JSON.stringify(USER),
        }),
      }),
      responses: {
        200: {
          description: 'Agents, nearest first, each with its path from the subject',
          schema: z.object({
            subject: SubjectDoc,
            agents: z.array(z.looseObject({ agent_id: z.string(), path: z.array(z.string()) })),
          }),
          example: {
            subject: USER,
            agents: [
              { agent_id: AGENT, ...REGISTRATION, registered_by: 'c_7f3a9d2e41b8', path: [AGENT] },
            ],
          },
        },
      },
      errors: [400, 401, 403, 503],
    },
    async (c, { query }) => {
      const dependents = await deps.registry.dependents(query.subject!)
      return c.json({
        subject: query.subject,
        agents: dependents.map((d) => ({ ...d.record, path: d.path })),
      })
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/agents/{agent_id}',
      operationId: 'readAgent',
      tag: TAG,
      summary: 'One agent with its delegation chain (emitter or admin role)',
      auth: reader,
      params: AgentParams,
      load: agent,
      responses: {
        200: {
          description:
            'The agent; `chain` runs from the agent itself up to the agent a user delegated to, `principal` is that user',
          schema: AgentRecordDoc.extend({
            chain: z.array(z.looseObject({})),
            principal: SubjectDoc,
          }).openapi({
            example: {
              agent_id: AGENT,
              ...REGISTRATION,
              registered_by: 'c_7f3a9d2e41b8',
              chain: [{ agent_id: AGENT, agent: REGISTRATION.agent }],
              principal: USER,
            },
          }),
        },
      },
      errors: [401, 403, 404, 503],
    },
    async (c, _input, found) =>
      c.json({ ...found.record, chain: found.chain, principal: found.principal }),
  )

  operation(
    app,
    {
      method: 'delete',
      path: '/agents/{agent_id}',
      operationId: 'retireAgent',
      tag: TAG,
      summary:
        'Retire an agent early (the client that registered it, or an admin); its subscribers are told',
      auth: reader,
      params: AgentParams,
      load: agent,
      responses: { 204: { description: 'Retired (or already retired)' } },
      errors: [401, 403, 404, 503],
    },
    async (c, { params }, found) => {
      const principal = c.get('principal')
      if (!isAdmin(principal) && found.record.registered_by !== callerId(principal)) {
        throw forbidden('only the client that registered this agent, or an admin, can retire it')
      }
      const reason = `retired by ${callerId(principal)}`
      const retired = await deps.registry.retire(params.agent_id, reason)
      // Already retired: nothing more to do (DELETE is idempotent). If telling subscribers fails, the
      // registry's expiry sweep tells them later (retire() queued the notification).
      if (retired) {
        await deps.onRetired(retired, reason)
        await deps.registry.notified(params.agent_id)
      }
      return c.body(null, 204)
    },
  )

  return app
}
