/**
 * Delegation chains end to end: a revocation about a user reaches every agent acting for the user, down
 * the chain, each with its own SET (same txn, its delegation path); agents expire and their subscribers
 * are told; the audit trail tells the whole story of one txn and detects tampering.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, redisEnv, startTestBroker, type TestBroker } from './helpers/broker.js'
import { overwriteRecord, storedRecord } from './helpers/audit-tamper.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
let redis: TestRedis
let broker: TestBroker
let emitter: { token: string; client_id: string }
let receiver: { token: string; client_id: string; audience: string }

before(async () => {
  redis = await startTestRedis()
  // NONE: a stream receives only the subjects it added, so "the streams subscribed to an agent" is exact.
  broker = await startTestBroker(redis.url, { SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' })
  emitter = await broker.api.createClient(['emitter'])
  receiver = await broker.api.createClient(['receiver'])
})

after(async () => {
  await broker.close()
  await redis.stop()
})

const agent = (name: string) => ({ format: 'uri', uri: `spiffe://example.org/agent/${name}` })
const user = (name: string) => ({ format: 'email', email: `${name}@example.com` })

async function register(body: Record<string, unknown>) {
  const res = await broker.api.request('POST', '/agents', {
    token: emitter.token,
    json: { task: 'test task', scopes: ['read'], expires_in: 3600, ...body },
  })
  assert.equal(res.status, 201, res.text)
  return res.body
}

/** A push stream that added exactly `subject`. */
async function subscribe(sink: TestReceiver, subject: unknown) {
  const stream = await broker.api.createPushStream(receiver.token, sink.url, {
    events_requested: [SESSION_REVOKED],
  })
  const add = await broker.api.request('POST', '/ssf/subjects/add', {
    token: receiver.token,
    json: { stream_id: stream.stream_id, subject },
  })
  assert.equal(add.status, 200)
  return stream
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('user → A → B → C: one session-revoked reaches A, B and C with the same txn and each its path; nothing for an unrelated agent', async () => {
  const sinks = await Promise.all([
    startReceiver(),
    startReceiver(),
    startReceiver(),
    startReceiver(),
  ])
  const [sinkA, sinkB, sinkC, sinkX] = sinks as [
    TestReceiver,
    TestReceiver,
    TestReceiver,
    TestReceiver,
  ]
  try {
    const a = await register({ agent: agent('a'), delegator: user('alice') })
    const b = await register({ agent: agent('b'), delegator: agent('a') })
    const c = await register({ agent: agent('c'), delegator: agent('b') })
    await register({ agent: agent('x'), delegator: user('mallory') })
    const chain = await broker.api.request('GET', `/agents/${c.agent_id}`, { token: emitter.token })
    assert.equal(chain.status, 200)
    assert.deepEqual(
      chain.body.chain.map((r: any) => r.agent_id),
      [c.agent_id, b.agent_id, a.agent_id],
    )
    assert.deepEqual(chain.body.principal, user('alice'))
    const acting = await broker.api.request(
      'GET',
      `/agents?subject=${encodeURIComponent(JSON.stringify(user('alice')))}`,
      { token: emitter.token },
    )
    assert.deepEqual(
      new Set(acting.body.agents.map((r: any) => r.agent_id)),
      new Set([a.agent_id, b.agent_id, c.agent_id]),
    )

    await subscribe(sinkA, agent('a'))
    await subscribe(sinkB, agent('b'))
    await subscribe(sinkC, agent('c'))
    await subscribe(sinkX, agent('x'))

    const res = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: user('alice'),
      event: { reason_admin: { en: 'user signed out everywhere' } },
    })
    assert.equal(res.status, 202)
    const txn = res.body.txn
    const expectPath = { a: ['alice'], b: ['alice', 'a'], c: ['alice', 'a', 'b'] }
    for (const [name, sink] of [
      ['a', sinkA],
      ['b', sinkB],
      ['c', sinkC],
    ] as const) {
      const [push] = await sink.waitFor(1)
      const claims = decodeJwt(push!.body) as any
      assert.equal(claims.txn, txn, `${name}: same txn`)
      assert.deepEqual(
        claims.sub_id,
        { format: 'complex', user: user('alice'), agent: agent(name) },
        `${name}: sub_id names the agent`,
      )
      const event = claims.events[SESSION_REVOKED]
      assert.deepEqual(event.reason_admin, { en: 'user signed out everywhere' })
      // The act chain: outermost is the agent itself, nested are earlier actors back to the principal.
      const actors: string[] = []
      for (let act = event.act; act; act = act.act) actors.push(JSON.stringify(act.sub_id))
      assert.equal(actors[0], JSON.stringify(agent(name)), `${name}: outermost actor is the agent`)
      const earlier = expectPath[name]
        .map((n) => JSON.stringify(n === 'alice' ? user('alice') : agent(n)))
        .reverse()
      assert.deepEqual(actors.slice(1), earlier, `${name}: delegation path`)
    }
    await sleep(300)
    assert.equal(sinkX.received.length, 0, 'an unrelated agent hears nothing')
    for (const sink of [sinkA, sinkB, sinkC]) assert.equal(sink.received.length, 1)

    // The audit trail of this txn: who caused it, which agents it reached, which receivers confirmed it.
    let story: any[] = []
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      story = (
        await broker.api.request('GET', `/admin/audit?txn=${encodeURIComponent(txn)}&limit=100`, {
          token: ADMIN_TOKEN,
        })
      ).body.records
      if (story.filter((r) => r.kind === 'delivery.attempt').length >= 3) break
      await sleep(100)
    }
    const kinds = (k: string) => story.filter((r) => r.kind === k)
    assert.equal(kinds('event.ingested').length, 1)
    assert.equal(kinds('event.ingested')[0].client_id, emitter.client_id)
    assert.ok(kinds('event.ingested')[0].remote_addr, 'where the event came from')
    assert.deepEqual(
      new Set(kinds('event.derived').map((r) => r.agent_id)),
      new Set([a.agent_id, b.agent_id, c.agent_id]),
    )
    // One record per SET outcome: each agent's SET delivered, with its type, when it was queued, and how long the push took.
    const confirmed = kinds('delivery.attempt').filter((r) => r.outcome === 'delivered')
    assert.equal(confirmed.length, 3)
    assert.equal(new Set(confirmed.map((r) => r.stream_id)).size, 3)
    assert.ok(
      confirmed.every((r) => typeof r.latency_ms === 'number' && r.type === SESSION_REVOKED),
    )
    const ingestedAt = kinds('event.ingested')[0].at
    assert.ok(
      confirmed.every((r) => r.queued_at >= ingestedAt && r.queued_at <= r.at),
      'queued after the ingest, before the delivery',
    )
    // Newest first in chain order. `at` is when each thing happened; outcomes recorded in one batch can be
    // a millisecond apart from strict time order, so the order checked is the chain's.
    const seqs = story.map((r) => r.seq)
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => y - x),
      'newest first',
    )
    assert.equal(new Set(seqs).size, seqs.length, 'each record once')
    assert.ok(
      !JSON.stringify(story).includes(receiver.token) &&
        !JSON.stringify(story).includes(emitter.token),
      'no bearer tokens',
    )
  } finally {
    for (const sink of sinks) await sink.close()
  }
})

test('a user with 1,000 delegated agents: every agent gets its SET (time printed)', async () => {
  const sink = await startReceiver()
  try {
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          register({ agent: agent(`fleet-${i + j}`), delegator: user('bob') }),
        ),
      )
    }
    // A receiver that follows bob: his own SET and every agent SET (they carry bob as `user`).
    await subscribe(sink, user('bob'))
    const started = Date.now()
    const res = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: user('bob'),
    })
    await sink.waitFor(1001, 60_000)
    console.log(
      `# cascade: 1,000 agent SETs (+1 for the user) received ${Date.now() - started} ms after the emit`,
    )
    const agents = new Set(
      sink.received.map((p) => JSON.stringify((decodeJwt(p.body).sub_id as any).agent ?? null)),
    )
    assert.equal(agents.size, 1001, "one SET per agent, plus the user's own")
    assert.ok(sink.received.every((p) => decodeJwt(p.body).txn === res.body.txn))
  } finally {
    await sink.close()
  }
})

test('an agent registered with a short expiry is retired on time and its subscribers are told', async () => {
  const sink = await startReceiver()
  try {
    const temp = await register({ agent: agent('temp'), delegator: user('carol'), expires_in: 1 })
    await subscribe(sink, agent('temp'))
    const [push] = await sink.waitFor(1, 10_000)
    const claims = decodeJwt(push!.body) as any
    const event = claims.events[SESSION_REVOKED]
    assert.equal(claims.sub_id.agent.uri, agent('temp').uri)
    assert.match(event.reason_admin.en, /expired/)
    const record = await broker.api.request('GET', `/agents/${temp.agent_id}`, {
      token: emitter.token,
    })
    assert.equal(record.body.status, 'retired')
    assert.ok(record.body.retired_at - temp.expires_at <= 2, 'retired on time')
  } finally {
    await sink.close()
  }
})

test('bad registrations are clear 4xx errors', async () => {
  await register({ agent: agent('p'), delegator: user('dave') })
  await register({ agent: agent('q'), delegator: agent('p') })
  const post = (body: Record<string, unknown>) =>
    broker.api.request('POST', '/agents', {
      token: emitter.token,
      json: { task: 't', scopes: [], ...body },
    })
  const cycle = await post({ agent: agent('p'), delegator: agent('q'), expires_in: 60 })
  assert.ok([400, 409].includes(cycle.status), cycle.text)
  assert.equal(
    (await post({ agent: agent('r'), delegator: user('dave') })).status,
    400,
    'missing expires_in',
  )
  assert.equal(
    (await post({ agent: agent('r'), delegator: user('dave'), expires_in: 10_000_000 })).status,
    400,
    'excessive expires_in',
  )
  const unknown = await post({
    agent: agent('r'),
    delegator_agent_id: 'A'.repeat(27),
    expires_in: 60,
  })
  assert.equal(unknown.status, 404)
  assert.equal(
    (
      await broker.api.request(
        'GET',
        `/agents?subject=${encodeURIComponent(JSON.stringify(agent('r')))}`,
        { token: emitter.token },
      )
    ).body.agents.length,
    0,
    'nothing half-written',
  )
})

test('the audit verification command passes, then reports the first tampered record', async () => {
  const cli = fileURLToPath(new URL('../dist/audit/verify-cli.js', import.meta.url))
  const env = { PATH: process.env.PATH ?? '', ...redisEnv(redis.url) }
  const ok = spawnSync(process.execPath, [cli], { env, encoding: 'utf8' })
  assert.equal(ok.status, 0, ok.stdout + ok.stderr)
  assert.match(ok.stdout, /^ok: \d+ records/)
  const victim = 4
  const record = await storedRecord(redis.client, victim)
  await overwriteRecord(redis.client, victim, { ...record, client_id: 'someone-else' })
  const bad = spawnSync(process.execPath, [cli], { env, encoding: 'utf8' })
  assert.equal(bad.status, 1, bad.stdout + bad.stderr)
  assert.match(bad.stdout, new RegExp(`broken at record ${victim}`))
})
