/**
 * HTTP surface of the agent registry (`/agents`) and the audit trail (`/admin/audit`), through the real
 * application error mapper and authentication, in process (`app.request()`), against a real Redis.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { Hono } from 'hono'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { createApp } from '../src/http/app.js'
import { createLogger } from '../src/lib/log.js'
import { BootstrapAdmin, ClientRegistry } from '../src/auth/clients.js'
import { AgentRegistry, nodeId, type AgentRecord } from '../src/agents/registry.js'
import { agentRoutes } from '../src/agents/routes.js'
import { AuditLog } from '../src/audit/log.js'
import { auditRoutes } from '../src/audit/routes.js'
import type { Subject } from '../src/subjects/subject.js'

const ADMIN = 'test-admin-token-0123456789abcdef0123456789'
let redis: TestRedis
let app: Hono
let tokens: { emitter: string; emitter2: string; receiver: string; adminClient: string }
let retired: { record: AgentRecord; reason: string }[]
let registered: { record: AgentRecord; created: boolean; by: string }[]
let audit: AuditLog

const alice: Subject = { format: 'email', email: 'alice@example.com' }
const agent = (name: string): Subject => ({
  format: 'uri',
  uri: `spiffe://example.org/agent/${name}`,
})

async function call(
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: string; contentType?: string } = {},
) {
  const headers: Record<string, string> = {}
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const body = options.json !== undefined ? JSON.stringify(options.json) : options.body
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
  const res = await app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  let json: any
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, body: json, text }
}

function registration(a: Subject, delegator: Subject, extra: Record<string, unknown> = {}) {
  return {
    agent: a,
    delegator,
    task: 'triage tickets',
    scopes: ['tickets.read'],
    expires_in: 300,
    ...extra,
  }
}

function assertError(
  res: { status: number; body: any },
  status: number,
  error: string,
  description?: RegExp,
) {
  assert.equal(res.status, status, JSON.stringify(res.body))
  assert.equal(res.body?.error, error, JSON.stringify(res.body))
  assert.equal(typeof res.body?.error_description, 'string')
  if (description) assert.match(res.body.error_description, description)
}

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})
beforeEach(async () => {
  await redis.client.flushall()
  const clients = new ClientRegistry(redis.client)
  const admin = new BootstrapAdmin(redis.client, ADMIN)
  const make = async (roles: ('emitter' | 'receiver' | 'admin')[]) =>
    (await clients.create({ name: roles.join('-'), roles, signing_alg: 'ES256' })).token
  tokens = {
    emitter: await make(['emitter']),
    emitter2: await make(['emitter']),
    receiver: await make(['receiver']),
    adminClient: await make(['admin']),
  }
  const registry = new AgentRegistry(redis.client, { maxExpiresIn: 3600, maxChainDepth: 3 })
  audit = new AuditLog(redis.client, { retentionSeconds: 3600 })
  retired = []
  registered = []
  app = createApp({
    issuer: 'http://localhost',
    metadata: { defaultSubjects: 'ALL', criticalSubjectMembers: [] },
    keys: undefined as never,
    log: createLogger('error'),
    routes: [
      agentRoutes({
        registry,
        clients,
        admin,
        maxBodyBytes: 16 * 1024,
        onRetired: async (record, reason) => void retired.push({ record, reason }),
        onRegistered: async (record, created, by) => void registered.push({ record, created, by }),
      }),
      auditRoutes({ audit, clients, admin }),
    ],
  })
})

describe('POST /agents', () => {
  test('201 with the stored record; again for the same delegator 200 with the same record', async () => {
    const res = await call('POST', '/agents', {
      token: tokens.emitter,
      json: registration(agent('a'), alice, { sid: 's1' }),
    })
    assert.equal(res.status, 201, res.text)
    assert.equal(res.body.agent_id, nodeId(agent('a')))
    assert.deepEqual(res.body.agent, agent('a'))
    assert.deepEqual(res.body.delegator, alice)
    assert.equal(res.body.status, 'active')
    assert.equal(res.body.sid, 's1')
    assert.equal(res.headers.get('cache-control'), 'no-store')
    const again = await call('POST', '/agents', {
      token: tokens.emitter2,
      json: registration(agent('a'), alice),
    })
    assert.equal(again.status, 200)
    assert.deepEqual(again.body, res.body)
    assert.deepEqual(
      registered.map((r) => r.created),
      [true, false],
    )
    assert.equal(registered[0]!.record.registered_by, registered[0]!.by)
  })

  test('authentication and role: 401 without or with a bad token, 403 for a receiver or the admin token', async () => {
    assertError(
      await call('POST', '/agents', { json: registration(agent('a'), alice) }),
      401,
      'invalid_token',
    )
    assertError(
      await call('POST', '/agents', { token: 'nope', json: registration(agent('a'), alice) }),
      401,
      'invalid_token',
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.receiver,
        json: registration(agent('a'), alice),
      }),
      403,
      'access_denied',
      /"emitter" role/,
    )
    assertError(
      await call('POST', '/agents', { token: ADMIN, json: registration(agent('a'), alice) }),
      403,
      'access_denied',
      /admin token/,
    )
  })

  test('bad bodies: 415, 400 invalid_json, 413, 400 naming the member', async () => {
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        body: 'x',
        contentType: 'text/plain',
      }),
      415,
      'unsupported_media_type',
    )
    assertError(
      await call('POST', '/agents', { token: tokens.emitter, body: '{"agent":' }),
      400,
      'invalid_json',
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: { ...registration(agent('a'), alice), task: 'x'.repeat(20_000) },
      }),
      413,
      'payload_too_large',
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: { ...registration(agent('a'), alice), colour: 'red' },
      }),
      400,
      'invalid_request',
      /^colour: unknown member/,
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: registration({ format: 'uri' } as Subject, alice),
      }),
      400,
      'invalid_subject',
      /^agent\.uri: required/,
    )
    assert.deepEqual(await redis.client.keys('ssf:{agents}:*'), [])
  })

  test('missing or excessive expiry, cycle, over-deep chain, unknown delegator, conflict: clear 4xx, nothing written', async () => {
    const { expires_in: _drop, ...noExpiry } = registration(agent('a'), alice)
    assertError(
      await call('POST', '/agents', { token: tokens.emitter, json: noExpiry }),
      400,
      'invalid_request',
      /expires_in: required/,
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: registration(agent('a'), alice, { expires_in: 3601 }),
      }),
      400,
      'invalid_request',
      /at most 3600 seconds/,
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: {
          ...registration(agent('a'), alice),
          delegator: undefined,
          delegator_agent_id: nodeId(agent('ghost')),
        },
      }),
      404,
      'unknown_delegator',
    )
    assert.deepEqual(await redis.client.keys('ssf:{agents}:*'), [])
    for (const [name, parent] of [
      ['a', alice],
      ['b', agent('a')],
      ['c', agent('b')],
    ] as const) {
      assert.equal(
        (
          await call('POST', '/agents', {
            token: tokens.emitter,
            json: registration(agent(name), parent),
          })
        ).status,
        201,
      )
    }
    const keys = (await redis.client.keys('ssf:{agents}:*')).sort()
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: registration(agent('d'), agent('c')),
      }),
      400,
      'delegation_too_deep',
      /deeper than 3/,
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: registration(alice, agent('b')),
      }),
      400,
      'delegation_cycle',
    )
    assertError(
      await call('POST', '/agents', {
        token: tokens.emitter,
        json: registration(agent('b'), alice),
      }),
      409,
      'agent_conflict',
    )
    assert.deepEqual((await redis.client.keys('ssf:{agents}:*')).sort(), keys)
  })
})

describe('GET /agents', () => {
  test('one agent with its chain up to the principal; 404 for unknown or malformed ids', async () => {
    await call('POST', '/agents', { token: tokens.emitter, json: registration(agent('a'), alice) })
    await call('POST', '/agents', {
      token: tokens.emitter,
      json: registration(agent('b'), agent('a')),
    })
    const id = nodeId(agent('b'))
    const res = await call('GET', `/agents/${id}`, { token: tokens.emitter2 })
    assert.equal(res.status, 200)
    assert.equal(res.body.agent_id, id)
    assert.deepEqual(
      res.body.chain.map((r: AgentRecord) => r.agent_id),
      [id, nodeId(agent('a'))],
    )
    assert.deepEqual(res.body.principal, alice)
    assert.equal((await call('GET', `/agents/${id}`, { token: ADMIN })).status, 200)
    assert.equal((await call('GET', `/agents/${id}`, { token: tokens.adminClient })).status, 200)
    assertError(
      await call('GET', `/agents/${id}`, { token: tokens.receiver }),
      403,
      'access_denied',
    )
    assertError(await call('GET', `/agents/${id}`), 401, 'invalid_token')
    assertError(
      await call('GET', `/agents/${nodeId(agent('zzz'))}`, { token: tokens.emitter }),
      404,
      'not_found',
    )
    assertError(await call('GET', '/agents/..%2F..', { token: tokens.emitter }), 404, 'not_found')
  })

  test('?subject= lists the live agents acting for it, transitively, with paths', async () => {
    await call('POST', '/agents', { token: tokens.emitter, json: registration(agent('a'), alice) })
    await call('POST', '/agents', {
      token: tokens.emitter,
      json: registration(agent('b'), agent('a')),
    })
    await call('POST', '/agents', {
      token: tokens.emitter,
      json: registration(agent('x'), { format: 'email', email: 'bob@example.com' }),
    })
    const res = await call(
      'GET',
      `/agents?subject=${encodeURIComponent(JSON.stringify({ format: 'email', email: 'Alice@example.com' }))}`,
      { token: tokens.emitter },
    )
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(
      res.body.agents.map((r: AgentRecord) => r.agent_id),
      [nodeId(agent('a')), nodeId(agent('b'))],
    )
    // The path starts at the subject as asked.
    assert.deepEqual(res.body.agents[1].path, [
      { format: 'email', email: 'Alice@example.com' },
      agent('a'),
      agent('b'),
    ])
    assertError(
      await call('GET', '/agents', { token: tokens.emitter }),
      400,
      'invalid_subject',
      /subject: required/,
    )
    assertError(
      await call('GET', '/agents?subject=%7Bnope', { token: tokens.emitter }),
      400,
      'invalid_subject',
      /JSON subject/,
    )
    assertError(
      await call('GET', `/agents?subject=${encodeURIComponent('{"format":"email"}')}`, {
        token: tokens.emitter,
      }),
      400,
      'invalid_subject',
      /subject\.email: required/,
    )
  })
})

describe('DELETE /agents/{agent_id}', () => {
  test('retires (204, onRetired once with the reason); only the registering client or an admin; idempotent; 404 unknown', async () => {
    await call('POST', '/agents', { token: tokens.emitter, json: registration(agent('a'), alice) })
    const id = nodeId(agent('a'))
    assertError(
      await call('DELETE', `/agents/${id}`, { token: tokens.emitter2 }),
      403,
      'access_denied',
      /registered this agent/,
    )
    assertError(
      await call('DELETE', `/agents/${id}`, { token: tokens.receiver }),
      403,
      'access_denied',
    )
    const res = await call('DELETE', `/agents/${id}`, { token: tokens.emitter })
    assert.equal(res.status, 204)
    assert.equal(retired.length, 1)
    assert.equal(retired[0]!.record.agent_id, id)
    assert.equal(retired[0]!.record.status, 'retired')
    assert.match(retired[0]!.reason, /^retired by /)
    assert.equal((await call('DELETE', `/agents/${id}`, { token: ADMIN })).status, 204)
    assert.equal(retired.length, 1)
    assert.equal(
      (await call('GET', `/agents/${id}`, { token: tokens.emitter })).body.status,
      'retired',
    )
    assertError(
      await call('DELETE', `/agents/${nodeId(agent('none'))}`, { token: ADMIN }),
      404,
      'not_found',
    )
    await call('POST', '/agents', { token: tokens.emitter, json: registration(agent('b'), alice) })
    assert.equal(
      (await call('DELETE', `/agents/${nodeId(agent('b'))}`, { token: tokens.adminClient })).status,
      204,
    )
    assert.equal(retired.length, 2)
  })
})

describe('GET /admin/audit', () => {
  test('admin only; JSON pages newest first; JSON Lines export; bad parameters are 400', async () => {
    for (let i = 0; i < 5; i++)
      await audit.record({
        kind: 'set.minted',
        txn: 't1',
        jti: `j${i}`,
        stream_id: 's1',
        aud: 'rs',
        type: 'caep/session-revoked',
        subject: alice,
      })
    await audit.record({
      kind: 'agent.registered',
      agent_id: 'ag',
      subject: agent('a'),
      delegator: alice,
      registered_by: 'c',
      expires_at: 1,
      created: true,
    })
    assertError(await call('GET', '/admin/audit'), 401, 'invalid_token')
    assertError(await call('GET', '/admin/audit', { token: tokens.emitter }), 403, 'access_denied')
    const page = await call('GET', '/admin/audit?txn=t1&limit=3', { token: ADMIN })
    assert.equal(page.status, 200, page.text)
    assert.equal(page.headers.get('cache-control'), 'no-store')
    assert.deepEqual(
      page.body.records.map((r: { jti: string }) => r.jti),
      ['j4', 'j3', 'j2'],
    )
    const next = await call('GET', `/admin/audit?txn=t1&limit=3&cursor=${page.body.next_cursor}`, {
      token: tokens.adminClient,
    })
    assert.deepEqual(
      next.body.records.map((r: { jti: string }) => r.jti),
      ['j1', 'j0'],
    )
    assert.equal(next.body.next_cursor, undefined)
    const bySubject = await call(
      'GET',
      `/admin/audit?subject=${encodeURIComponent(JSON.stringify(agent('a')))}&kind=agent.registered`,
      { token: ADMIN },
    )
    assert.deepEqual(
      bySubject.body.records.map((r: { kind: string }) => r.kind),
      ['agent.registered'],
    )
    assert.equal(
      (await call('GET', '/admin/audit?agent_id=ag&stream_id=s1', { token: ADMIN })).body.records
        .length,
      0,
    )
    const jsonl = await call('GET', '/admin/audit?stream_id=s1&format=jsonl', { token: ADMIN })
    assert.equal(jsonl.status, 200)
    assert.match(jsonl.headers.get('content-type') ?? '', /^application\/jsonl/)
    const lines = jsonl.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { jti: string })
    assert.deepEqual(
      lines.map((l) => l.jti),
      ['j4', 'j3', 'j2', 'j1', 'j0'],
    )
    assertError(
      await call('GET', '/admin/audit?limit=0', { token: ADMIN }),
      400,
      'invalid_request',
      /limit/,
    )
    assertError(
      await call('GET', '/admin/audit?limit=1001', { token: ADMIN }),
      400,
      'invalid_request',
      /limit/,
    )
    assertError(
      await call('GET', '/admin/audit?cursor=abc', { token: ADMIN }),
      400,
      'invalid_request',
      /cursor/,
    )
    assertError(
      await call('GET', '/admin/audit?format=csv', { token: ADMIN }),
      400,
      'invalid_request',
      /format/,
    )
    assertError(
      await call('GET', '/admin/audit?kind=set.burned', { token: ADMIN }),
      400,
      'invalid_request',
      /kind: unknown kind "set.burned"/,
    )
    assertError(
      await call('GET', '/admin/audit?tx=t1', { token: ADMIN }),
      400,
      'invalid_request',
      /tx: unknown query parameter/,
    )
    assertError(
      await call('GET', '/admin/audit?subject=%7B', { token: ADMIN }),
      400,
      'invalid_subject',
    )
  })
})

describe('route documentation', () => {
  test('the routes build without dependencies and openapi/openapi.json documents exactly them', () => {
    const none = undefined as never
    const served = new Set(
      [
        ...agentRoutes({
          registry: none,
          clients: none,
          admin: none,
          onRetired: none,
          maxBodyBytes: 0,
        }).routes,
        ...auditRoutes({ audit: none, clients: none, admin: none }).routes,
      ]
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
    )
    assert.deepEqual([...served].sort(), [
      'DELETE /agents/{agent_id}',
      'GET /admin/audit',
      'GET /admin/audit/verify',
      'GET /agents',
      'GET /agents/{agent_id}',
      'POST /agents',
    ])
    const doc = JSON.parse(
      readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'),
    ) as { paths: Record<string, Record<string, unknown>> }
    const documented = new Set<string>()
    for (const path of ['/agents', '/agents/{agent_id}', '/admin/audit', '/admin/audit/verify']) {
      for (const method of Object.keys(doc.paths[path] ?? {}))
        if (method !== 'parameters') documented.add(`${method.toUpperCase()} ${path}`)
    }
    assert.deepEqual([...documented].sort(), [...served].sort())
  })
})
