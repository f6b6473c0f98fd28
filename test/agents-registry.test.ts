/**
 * Agent registry against a real Redis: registration rules, idempotency, refused graphs leave nothing
 * behind, dependents() down delegation chains, expiry.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { AgentRegistry, nodeId, type AgentRecord } from '../src/agents/registry.js'
import { BrokerError } from '../src/errors.js'
import type { SimpleSubject, Subject } from '../src/subjects/subject.js'

let redis: TestRedis
let clock = 1_800_000_000_000
const now = () => clock

const user = (name: string): SimpleSubject => ({ format: 'email', email: `${name}@example.com` })
const agent = (name: string): SimpleSubject => ({
  format: 'uri',
  uri: `spiffe://example.org/agent/${name}`,
})

function registry(
  options: Partial<{ maxExpiresIn: number; maxChainDepth: number }> = {},
): AgentRegistry {
  return new AgentRegistry(redis.client, { maxExpiresIn: 3600, maxChainDepth: 4, now, ...options })
}

function body(
  a: Subject,
  delegator: Subject,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    agent: a,
    delegator,
    task: 'summarise the inbox',
    scopes: ['mail.read'],
    expires_in: 600,
    ...extra,
  }
}

function brokerError(status: number, code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof BrokerError, `expected a BrokerError, got ${String(err)}`)
    assert.equal(err.status, status, err.message)
    assert.equal(err.code, code, err.message)
    if (message) assert.match(err.message, message)
    return true
  }
}

/** Every key with its type, TTL and full content: to prove a refused call changed nothing. */
async function snapshot(): Promise<string> {
  const keys = (await redis.client.keys('*')).sort()
  const out: string[] = []
  for (const key of keys) {
    const type = await redis.client.type(key)
    let value: unknown
    if (type === 'hash')
      value = Object.entries(await redis.client.hgetall(key)).sort(([a], [b]) => a.localeCompare(b))
    else if (type === 'set') value = (await redis.client.smembers(key)).sort()
    else if (type === 'zset') value = await redis.client.zrange(key, 0, -1, 'WITHSCORES')
    else value = await redis.client.get(key)
    out.push(`${key} ${type} ${await redis.client.ttl(key)} ${JSON.stringify(value)}`)
  }
  return out.join('\n')
}

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})
beforeEach(async () => {
  await redis.client.flushall()
  clock = 1_800_000_000_000
})

describe('register', () => {
  test('stores the record (201-style created: true) with an id derived from the canonical agent subject', async () => {
    const reg = registry()
    const { record, created } = await reg.register(
      body(agent('a'), user('alice'), { sid: 'sess-1', token_jti: 'tok-1' }),
      'client-1',
    )
    assert.equal(created, true)
    assert.equal(record.agent_id, nodeId(agent('a')))
    assert.match(record.agent_id, /^[A-Za-z0-9_-]{27}$/)
    assert.deepEqual(record.agent, agent('a'))
    assert.deepEqual(record.delegator, user('alice'))
    assert.equal(record.delegator_agent_id, undefined)
    assert.equal(record.task, 'summarise the inbox')
    assert.deepEqual(record.scopes, ['mail.read'])
    assert.equal(record.sid, 'sess-1')
    assert.equal(record.token_jti, 'tok-1')
    assert.equal(record.registered_by, 'client-1')
    assert.equal(record.status, 'active')
    assert.equal(record.created_at, clock / 1000)
    assert.equal(record.expires_at, clock / 1000 + 600)
    // Another spelling of the same user (case) is the same delegator node.
    assert.equal(nodeId({ format: 'email', email: 'ALICE@example.com' }), nodeId(user('alice')))
    const got = await reg.get(record.agent_id)
    assert.deepEqual(got?.record, record)
    assert.deepEqual(got?.chain, [record])
    assert.deepEqual(got?.principal, user('alice'))
  })

  test('registering the same agent for the same delegator again is idempotent: created false, the existing record', async () => {
    const reg = registry()
    const first = await reg.register(body(agent('a'), user('alice')), 'client-1')
    clock += 5000
    const again = await reg.register(
      body(
        agent('a'),
        { format: 'email', email: 'Alice@Example.com' },
        { task: 'another task', expires_in: 30 },
      ),
      'client-2',
    )
    assert.equal(again.created, false)
    assert.deepEqual(again.record, first.record)
  })

  test('the same agent for a different delegator while live is 409', async () => {
    const reg = registry()
    await reg.register(body(agent('a'), user('alice')), 'c')
    const before = await snapshot()
    await assert.rejects(
      reg.register(body(agent('a'), user('bob')), 'c'),
      brokerError(409, 'agent_conflict', /another delegator/),
    )
    assert.equal(await snapshot(), before)
  })

  test('a chain of agents records delegator_agent_id and get() returns the chain up to the user', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    const b = (await reg.register(body(agent('b'), agent('a')), 'c')).record
    const c = (
      await reg.register(
        { ...body(agent('c'), agent('b')), delegator: undefined, delegator_agent_id: b.agent_id },
        'c',
      )
    ).record
    assert.equal(b.delegator_agent_id, a.agent_id)
    assert.equal(c.delegator_agent_id, b.agent_id)
    assert.deepEqual(c.delegator, agent('b'))
    const got = await reg.get(c.agent_id)
    assert.deepEqual(
      got?.chain.map((r) => r.agent_id),
      [c.agent_id, b.agent_id, a.agent_id],
    )
    assert.deepEqual(got?.principal, user('alice'))
  })

  test('cycles are refused: self-delegation, and a user subject registered as an agent under its own agent', async () => {
    const reg = registry()
    await assert.rejects(
      reg.register(body(agent('a'), agent('a')), 'c'),
      brokerError(400, 'delegation_cycle'),
    )
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    await reg.register(body(agent('b'), agent('a')), 'c')
    const before = await snapshot()
    // alice (so far a plain user) registered as an agent delegated by b: alice → a → b → alice.
    await assert.rejects(
      reg.register(body(user('alice'), agent('b')), 'c'),
      brokerError(400, 'delegation_cycle', new RegExp(a.agent_id)),
    )
    assert.equal(await snapshot(), before)
  })

  test('a retired agent re-registered under its own descendant is a cycle', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    await reg.register(body(agent('b'), agent('a')), 'c')
    await reg.retire(a.agent_id, 'done')
    await assert.rejects(
      reg.register(body(agent('a'), agent('b')), 'c'),
      brokerError(400, 'delegation_cycle'),
    )
  })

  test('chains deeper than maxChainDepth are refused, also when agents already registered below would end up too deep', async () => {
    const reg = registry({ maxChainDepth: 3 })
    await reg.register(body(agent('a'), user('alice')), 'c')
    await reg.register(body(agent('b'), agent('a')), 'c')
    await reg.register(body(agent('c'), agent('b')), 'c')
    const before = await snapshot()
    await assert.rejects(
      reg.register(body(agent('d'), agent('c')), 'c'),
      brokerError(400, 'delegation_too_deep', /deeper than 3/),
    )
    assert.equal(await snapshot(), before)
    // alice has a → b → c below her: as an agent herself (under carol) that chain would be 4 deep.
    await assert.rejects(
      reg.register(body(user('alice'), user('carol')), 'c'),
      brokerError(400, 'delegation_too_deep', /chain of 4 agents/),
    )
    assert.equal(await snapshot(), before)
  })

  test('an unknown or retired delegator agent is 404 unknown_delegator; a mismatched delegator_agent_id is 400', async () => {
    const reg = registry()
    const missing = nodeId(agent('ghost'))
    await assert.rejects(
      reg.register(
        { ...body(agent('a'), user('x')), delegator: undefined, delegator_agent_id: missing },
        'c',
      ),
      brokerError(404, 'unknown_delegator', /no agent/),
    )
    const p = (await reg.register(body(agent('p'), user('alice')), 'c')).record
    await reg.retire(p.agent_id, 'done')
    const before = await snapshot()
    await assert.rejects(
      reg.register(body(agent('a'), agent('p')), 'c'),
      brokerError(404, 'unknown_delegator', /retired/),
    )
    clock += 1
    const q = (await reg.register(body(agent('q'), user('alice'), { expires_in: 1 }), 'c')).record
    clock += 2000 // expiries are rounded up to a whole second
    await assert.rejects(
      reg.register(body(agent('a'), agent('q')), 'c'),
      brokerError(404, 'unknown_delegator', /expired/),
    )
    await assert.rejects(
      reg.register({ ...body(agent('a'), user('alice')), delegator_agent_id: q.agent_id }, 'c'),
      brokerError(400, 'invalid_request', /delegator_agent_id/),
    )
    assert.ok(before.length > 0)
  })

  test('expires_in is required and capped', async () => {
    const reg = registry({ maxExpiresIn: 900 })
    const { expires_in: _omit, ...noExpiry } = body(agent('a'), user('alice'))
    await assert.rejects(
      reg.register(noExpiry, 'c'),
      brokerError(400, 'invalid_request', /expires_in: required.*ephemeral/),
    )
    await assert.rejects(
      reg.register(body(agent('a'), user('alice'), { expires_in: 901 }), 'c'),
      brokerError(400, 'invalid_request', /at most 900 seconds/),
    )
    await assert.rejects(
      reg.register(body(agent('a'), user('alice'), { expires_in: 0 }), 'c'),
      brokerError(400, 'invalid_request', /expires_in/),
    )
    await assert.rejects(
      reg.register(body(agent('a'), user('alice'), { expires_in: 1.5 }), 'c'),
      brokerError(400, 'invalid_request', /expires_in/),
    )
    assert.deepEqual(await redis.client.keys('*'), [])
    assert.equal(
      (await reg.register(body(agent('a'), user('alice'), { expires_in: 900 }), 'c')).created,
      true,
    )
  })

  test('bad subjects and unknown members are 400 naming the member', async () => {
    const reg = registry()
    await assert.rejects(
      reg.register(body({ format: 'uri', uri: 'not a uri' } as Subject, user('alice')), 'c'),
      brokerError(400, 'invalid_subject', /^agent\.uri: /),
    )
    await assert.rejects(
      reg.register(body(agent('a'), { format: 'email' } as Subject), 'c'),
      brokerError(400, 'invalid_subject', /^delegator\.email: required/),
    )
    await assert.rejects(
      reg.register({ ...body(agent('a'), user('alice')), owner: 'x' }, 'c'),
      brokerError(400, 'invalid_request', /^owner: unknown member/),
    )
    await assert.rejects(
      reg.register({ ...body(agent('a'), user('alice')), scopes: 'mail.read' }, 'c'),
      brokerError(400, 'invalid_request', /^scopes/),
    )
    await assert.rejects(
      reg.register({ ...body(agent('a'), user('alice')), task: '' }, 'c'),
      brokerError(400, 'invalid_request', /^task/),
    )
    await assert.rejects(reg.register([], 'c'), brokerError(400, 'invalid_request', /JSON object/))
    assert.deepEqual(await redis.client.keys('*'), [])
  })

  test('a retired agent may move to another delegator only when nothing below it is live', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    const b = (await reg.register(body(agent('b'), agent('a'), { expires_in: 60 }), 'c')).record
    await reg.retire(a.agent_id, 'done')
    await assert.rejects(
      reg.register(body(agent('a'), user('bob')), 'c'),
      brokerError(409, 'agent_conflict', /still live/),
    )
    clock += 61_000 // b expires
    const moved = await reg.register(body(agent('a'), user('bob')), 'c')
    assert.equal(moved.created, true)
    assert.deepEqual(moved.record.delegator, user('bob'))
    assert.deepEqual(await reg.dependents(user('alice')), [])
    assert.deepEqual(
      (await reg.dependents(user('bob'))).map((d) => d.agent_id),
      [a.agent_id],
    )
    assert.ok(b)
  })

  test('re-registering an expired agent the sweeper has not retired yet reports the replaced record', async () => {
    const reg = registry()
    await reg.register(body(agent('a'), user('alice'), { expires_in: 10 }), 'c')
    clock += 11_000
    const again = await reg.register(body(agent('a'), user('alice'), { task: 'next task' }), 'c')
    assert.equal(again.created, true)
    assert.equal(again.record.task, 'next task')
    assert.equal(again.replaced?.retired_reason, 'expired')
    assert.equal(again.replaced?.task, 'summarise the inbox')
    assert.deepEqual(await reg.dueForExpiry(clock, 10), [])
  })
})

describe('dependents', () => {
  test('user → A → B → C: every agent with its path from the user, breadth first; an unrelated agent is not included', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    const b = (await reg.register(body(agent('b'), agent('a')), 'c')).record
    const c = (await reg.register(body(agent('c'), agent('b')), 'c')).record
    await reg.register(body(agent('x'), user('bob')), 'c')
    const deps = await reg.dependents(user('alice'))
    assert.deepEqual(
      deps.map((d) => d.agent_id),
      [a.agent_id, b.agent_id, c.agent_id],
    )
    assert.deepEqual(deps[2]!.path, [user('alice'), agent('a'), agent('b'), agent('c')])
    assert.deepEqual(deps[0]!.path, [user('alice'), agent('a')])
    assert.ok(deps.every((d) => d.principalIsAgent === false))
    // From the middle of the chain: B's principal is an agent.
    const fromA = await reg.dependents(agent('a'))
    assert.deepEqual(
      fromA.map((d) => d.agent_id),
      [b.agent_id, c.agent_id],
    )
    assert.deepEqual(fromA[1]!.path, [agent('a'), agent('b'), agent('c')])
    assert.ok(fromA.every((d) => d.principalIsAgent))
    assert.deepEqual(
      (await reg.listActingFor(user('alice'))).map((r) => r.agent_id),
      [a.agent_id, b.agent_id, c.agent_id],
    )
    assert.deepEqual(await reg.dependents(user('nobody')), [])
    // The walk is bounded by maxChainDepth.
    const shallow = registry({ maxChainDepth: 2 })
    assert.deepEqual(
      (await shallow.dependents(user('alice'))).map((d) => d.agent_id),
      [a.agent_id, b.agent_id],
    )
  })

  test('a retired agent is not returned but what it delegated before retiring still is, through it', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    const b = (await reg.register(body(agent('b'), agent('a')), 'c')).record
    const retired = await reg.retire(a.agent_id, 'task finished')
    assert.equal(retired?.status, 'retired')
    assert.equal(retired?.retired_reason, 'task finished')
    assert.equal(await reg.retire(a.agent_id, 'again'), undefined)
    const deps = await reg.dependents(user('alice'))
    assert.deepEqual(
      deps.map((d) => d.agent_id),
      [b.agent_id],
    )
    assert.deepEqual(deps[0]!.path, [user('alice'), agent('a'), agent('b')])
    assert.ok(
      (await redis.client.ttl(`ssf:{agents}:rec:${a.agent_id}`)) > 0,
      'retired records expire',
    )
    assert.equal(await redis.client.ttl(`ssf:{agents}:rec:${b.agent_id}`), -1)
    // A retired agent with nothing below it leaves its delegator's edge set at once ...
    const lone = (await reg.register(body(agent('lone'), user('alice')), 'c')).record
    await reg.retire(lone.agent_id, 'done')
    assert.ok(
      !(await redis.client.sismember(`ssf:{agents}:dlg:${nodeId(user('alice'))}`, lone.agent_id)),
    )
    // ... one with agents below stays until its record is gone (past its retention), then the walk drops the edge.
    assert.ok(await redis.client.sismember(`ssf:{agents}:dlg:${nodeId(user('alice'))}`, a.agent_id))
    await redis.client.del(`ssf:{agents}:rec:${a.agent_id}`)
    assert.deepEqual(await reg.dependents(user('alice')), [])
    await new Promise((r) => setTimeout(r, 20))
    assert.ok(
      !(await redis.client.sismember(`ssf:{agents}:dlg:${nodeId(user('alice'))}`, a.agent_id)),
    )
  })

  test("complex principals: {user, session} reaches the user's delegations from that session (or without one); {user, agent} what is below the agent; jwt_id the token holder", async () => {
    const reg = registry()
    const s1 = (await reg.register(body(agent('s1'), user('alice'), { sid: 'sess-1' }), 'c')).record
    const s2 = (await reg.register(body(agent('s2'), user('alice'), { sid: 'sess-2' }), 'c')).record
    const none = (await reg.register(body(agent('none'), user('alice')), 'c')).record
    const below = (
      await reg.register(body(agent('below'), agent('s2'), { token_jti: 'jti-42' }), 'c')
    ).record
    const under = (await reg.register(body(agent('under'), agent('below')), 'c')).record
    const session = (id: string): Subject => ({
      format: 'complex',
      user: user('alice'),
      session: { format: 'opaque', id },
    })
    assert.deepEqual(
      (await reg.dependents(session('sess-1'))).map((d) => d.agent_id).sort(),
      [s1.agent_id, none.agent_id].sort(),
    )
    assert.deepEqual(
      (await reg.dependents(session('sess-2'))).map((d) => d.agent_id).sort(),
      [s2.agent_id, none.agent_id, below.agent_id, under.agent_id].sort(),
    )
    const viaAgent = await reg.dependents({
      format: 'complex',
      user: user('alice'),
      agent: agent('s2'),
    })
    assert.deepEqual(
      viaAgent.map((d) => d.agent_id),
      [below.agent_id, under.agent_id],
    )
    const viaToken = await reg.dependents({
      format: 'jwt_id',
      iss: 'https://as.example.com',
      jti: 'jti-42',
    })
    assert.deepEqual(
      viaToken.map((d) => d.agent_id),
      [below.agent_id, under.agent_id],
    )
    assert.deepEqual(viaToken[1]!.path, [
      { format: 'jwt_id', iss: 'https://as.example.com', jti: 'jti-42' },
      agent('below'),
      agent('under'),
    ])
    assert.ok(viaToken.every((d) => d.principalIsAgent))
    // Registered again with another token: the old token no longer reaches it (nor what is below it).
    await reg.retire(below.agent_id, 'rotated')
    await reg.register(body(agent('below'), agent('s2'), { token_jti: 'jti-43' }), 'c')
    assert.deepEqual(
      await reg.dependents({ format: 'jwt_id', iss: 'https://as.example.com', jti: 'jti-42' }),
      [],
    )
    await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(
      await redis.client.smembers(
        `ssf:{agents}:jti:${createHash('sha256').update('jti-42').digest('hex').slice(0, 32)}`,
      ),
      [],
      'stale token entry dropped',
    )
    assert.deepEqual(
      (
        await reg.dependents({ format: 'jwt_id', iss: 'https://as.example.com', jti: 'jti-43' })
      ).map((d) => d.agent_id),
      [below.agent_id, under.agent_id],
    )
  })

  test('1,000 agents under one user: dependents() finds each once with its path', async () => {
    const reg = registry()
    const ids = new Set<string>()
    for (let i = 0; i < 1000; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          reg.register(body(agent(`bulk-${i + j}`), user('alice')), 'c'),
        ),
      )
      for (const r of batch) ids.add(r.record.agent_id)
    }
    await reg.register(body(agent('other'), user('bob')), 'c')
    const timed = async () => {
      const started = process.hrtime.bigint()
      const found = await reg.dependents(user('alice'))
      return { found, ms: Number(process.hrtime.bigint() - started) / 1e6 }
    }
    const cold = await timed()
    const { found: deps, ms } = await timed()
    console.log(
      `dependents() of a user with 1,000 agents: ${cold.ms.toFixed(1)} ms first call, ${ms.toFixed(1)} ms warm`,
    )
    assert.equal(cold.found.length, 1000)
    assert.equal(deps.length, 1000)
    assert.deepEqual(new Set(deps.map((d) => d.agent_id)), ids)
    for (const d of deps) {
      assert.equal(d.path.length, 2)
      assert.deepEqual(d.path[0], user('alice'))
      assert.equal(nodeId(d.path[1]!), d.agent_id)
    }
  })
})

describe('expiry', () => {
  test('dueForExpiry lists agents whose expiry has passed, soonest first; sweepExpired retires each once', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice'), { expires_in: 5 }), 'c')).record
    const b = (await reg.register(body(agent('b'), user('alice'), { expires_in: 2 }), 'c')).record
    await reg.register(body(agent('c'), user('alice'), { expires_in: 60 }), 'c')
    assert.deepEqual(await reg.dueForExpiry(clock, 10), [])
    clock += 5000
    assert.deepEqual(await reg.dueForExpiry(clock, 10), [b.agent_id, a.agent_id])
    assert.deepEqual(await reg.dueForExpiry(clock, 1), [b.agent_id])
    // Not live any more, even before the sweep.
    assert.equal((await reg.dependents(user('alice'))).length, 1)
    const told: AgentRecord[] = []
    await Promise.all([
      reg.sweepExpired(
        clock,
        10,
        async (r, reason) => void told.push({ ...r, retired_reason: reason }),
      ),
      reg.sweepExpired(
        clock,
        10,
        async (r, reason) => void told.push({ ...r, retired_reason: reason }),
      ),
    ])
    assert.deepEqual(told.map((r) => r.agent_id).sort(), [a.agent_id, b.agent_id].sort())
    assert.ok(told.every((r) => r.status === 'retired' && r.retired_reason === 'expired'))
    assert.deepEqual(await reg.dueForExpiry(clock, 10), [])
    // Notified: nothing to send again.
    assert.deepEqual(await reg.claimUnnotified(clock + 60_000, 10), [])
    assert.equal((await reg.get(a.agent_id))?.record.status, 'retired')
  })

  test('a retirement whose notification was never confirmed is handed out again after 30 s (at least once)', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice')), 'c')).record
    await reg.retire(a.agent_id, 'retired by c') // ... and the process dies before notifying
    assert.deepEqual(await reg.claimUnnotified(clock + 29_000, 10), [])
    const again = await reg.claimUnnotified(clock + 31_000, 10)
    assert.deepEqual(
      again.map((r) => [r.agent_id, r.retired_reason]),
      [[a.agent_id, 'retired by c']],
    )
    // Claimed: not handed to a second sweeper at once, but again 30 s later if still unconfirmed.
    assert.deepEqual(await reg.claimUnnotified(clock + 32_000, 10), [])
    assert.equal((await reg.claimUnnotified(clock + 62_000, 10)).length, 1)
    await reg.notified(a.agent_id)
    assert.deepEqual(await reg.claimUnnotified(clock + 200_000, 10), [])
  })

  test('startExpirySweep retires an expired agent on time and tells its subscribers once', async () => {
    const reg = registry()
    const a = (await reg.register(body(agent('a'), user('alice'), { expires_in: 1 }), 'c')).record
    const told: [string, string][] = []
    const stop = reg.startExpirySweep(async (r, reason) => void told.push([r.agent_id, reason]), {
      intervalMs: 10,
    })
    try {
      await new Promise((r) => setTimeout(r, 60))
      assert.deepEqual(told, [], 'not before its expiry')
      clock = a.expires_at * 1000
      const deadline = Date.now() + 2000
      while (told.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
      await new Promise((r) => setTimeout(r, 60))
      assert.deepEqual(told, [[a.agent_id, 'expired']])
      assert.equal((await reg.get(a.agent_id))?.record.status, 'retired')
    } finally {
      stop()
    }
  })
})
