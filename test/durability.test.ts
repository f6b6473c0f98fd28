/**
 * Nothing acknowledged is lost: a broker killed with SIGKILL mid-burst, or in the middle of one event's
 * fan-out to 1,000 streams or of a 1,000-agent cascade, then restarted, delivers every event it answered
 * 202 for; and with two brokers on one Redis, the survivor takes over the work of the one that was killed.
 * Brokers run as separate processes (`node dist/main.js`), as users run them.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { Api, freePort, spawnBroker, testEnv, type SpawnedBroker } from './helpers/broker.js'
import { createKeyspace, INGEST_PARTITIONS } from '../src/redis/keyspace.js'

let redis: TestRedis
let receiver: TestReceiver
const running: SpawnedBroker[] = []

before(async () => {
  redis = await startTestRedis()
  receiver = await startReceiver()
  // A little slower than instant, so a burst is still being delivered when the broker is killed.
  receiver.respond = async (_p, res) => {
    await new Promise((r) => setTimeout(r, 2))
    res.writeHead(202).end()
  }
})

after(async () => {
  for (const b of running) await b.kill()
  await receiver.close()
  await redis.stop()
})

async function spawn(
  extra: Record<string, string> = {},
): Promise<{ broker: SpawnedBroker; api: Api }> {
  const port = await freePort()
  const broker = await spawnBroker(
    testEnv(redis.url, port, { SSF_BROKER_LEASE_MS: '1500', ...extra }),
  )
  running.push(broker)
  return { broker, api: new Api(broker.url) }
}

/** Posts `count` events through the given APIs in turn, `parallel` at a time; returns the acknowledged txns. */
async function burst(
  apis: Api[],
  token: string,
  count: number,
  prefix: string,
  parallel = 16,
): Promise<Set<string>> {
  const acked = new Set<string>()
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const txn = `${prefix}-${i}`
      try {
        const res = await apis[i % apis.length]!.emit(token, {
          type: 'caep/session-revoked',
          subject: { format: 'opaque', id: `u${i % 50}` },
          txn,
        })
        if (res.status === 202) acked.add(txn)
      } catch {
        // the broker behind this API was killed: not acknowledged, so not owed
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return acked
}

/** Distinct SETs (by jti) received per txn, counting only SETs for `aud` when given. */
function setsPerTxn(aud?: string): Map<string, Set<string>> {
  const perTxn = new Map<string, Set<string>>()
  for (const p of receiver.received) {
    const claims = decodeJwt(p.body) as { txn: string; jti: string; aud: string }
    if (aud !== undefined && claims.aud !== aud) continue
    if (!perTxn.has(claims.txn)) perTxn.set(claims.txn, new Set())
    perTxn.get(claims.txn)!.add(claims.jti)
  }
  return perTxn
}

/** Waits until every acknowledged txn has reached `streams` streams; fails after `timeoutMs`. */
async function waitForAll(
  acked: Set<string>,
  timeoutMs: number,
  streams = 1,
  aud?: string,
): Promise<number> {
  const start = Date.now()
  for (;;) {
    const got = setsPerTxn(aud)
    const missing = [...acked].filter((t) => (got.get(t)?.size ?? 0) < streams)
    if (missing.length === 0) return Date.now() - start
    if (Date.now() - start > timeoutMs)
      assert.fail(
        `${missing.length} acknowledged events did not reach all ${streams} stream(s) (e.g. ${missing.slice(0, 3).join(', ')})`,
      )
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('SIGKILL mid-burst, restart: every acknowledged event arrives (duplicates share a jti)', async () => {
  const first = await spawn()
  const rx = await first.api.createClient(['receiver'])
  const emitter = await first.api.createClient(['emitter'])
  await first.api.createPushStream(rx.token, receiver.url)
  receiver.received.length = 0

  // A slow receiver (50 ms a SET) keeps the burst in delivery well after all 1000 were acknowledged.
  receiver.respond = async (_p, res) => {
    await new Promise((r) => setTimeout(r, 50))
    res.writeHead(202).end()
  }
  const acked = await burst([first.api], emitter.token, 1000, 'crash')
  assert.equal(acked.size, 1000)
  await first.broker.kill('SIGKILL')
  const deliveredBeforeKill = new Set(receiver.received.map((p) => decodeJwt(p.body).txn)).size
  assert.ok(deliveredBeforeKill < 1000, 'the broker was killed while still delivering')
  console.log(`# killed with ${deliveredBeforeKill} of 1000 acknowledged events delivered`)
  const second = await spawn()
  const restartedAt = Date.now()
  const took = await waitForAll(acked, 20_000)
  console.log(
    `# restart: ${acked.size} acknowledged events all delivered ${Date.now() - restartedAt} ms after the restart (${took} ms of waiting)`,
  )

  // Duplicates are allowed, but a duplicate is the same SET (same jti) again.
  const jtiByTxn = new Map<string, string>()
  for (const p of receiver.received) {
    const { txn, jti } = decodeJwt(p.body) as { txn: string; jti: string }
    if (jtiByTxn.has(txn))
      assert.equal(jtiByTxn.get(txn), jti, `duplicate of ${txn} has another jti`)
    jtiByTxn.set(txn, jti)
  }
  await second.broker.kill('SIGTERM')
  receiver.respond = async (_p, res) => {
    await new Promise((r) => setTimeout(r, 2))
    res.writeHead(202).end()
  }
})

test('two brokers share the work; when one is killed the survivor delivers its in-flight events', async () => {
  const a = await spawn()
  const b = await spawn()
  const rx = await a.api.createClient(['receiver'])
  const emitter = await a.api.createClient(['emitter'])
  for (let i = 0; i < 4; i++)
    await a.api.createPushStream(rx.token, receiver.url, {
      events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
    })
  receiver.received.length = 0

  const posting = burst([a.api, b.api], emitter.token, 400, 'pair')
  while (receiver.received.length < 200) await new Promise((r) => setTimeout(r, 5))
  await a.broker.kill('SIGKILL')
  const acked = await posting
  const killedAt = Date.now()
  await waitForAll(acked, 20_000, 4, rx.audience)
  console.log(
    `# survivor delivered every acknowledged event to all 4 streams ${Date.now() - killedAt} ms after the kill`,
  )
  for (const [txn, jtis] of setsPerTxn(rx.audience))
    assert.ok(jtis.size <= 4, `${txn} has ${jtis.size} distinct SETs for 4 streams`)
  await b.broker.kill('SIGTERM')
})

/** Ingest entries taken by a process and not completed (their fan-out did not finish). */
async function ingestPending(prefix: string): Promise<number> {
  const ks = createKeyspace(prefix)
  let pending = 0
  for (let k = 0; k < INGEST_PARTITIONS; k++) {
    const [count] = (await redis.client.xpending(ks.ingest.partition(k), ks.ingest.group)) as [
      number,
    ]
    pending += count
  }
  return pending
}

test('SIGKILL in the middle of a fan-out to 1,000 streams, restart: every stream gets the event', async () => {
  // A keyspace of its own: the other tests' streams take no part.
  const env = { SSF_BROKER_REDIS_PREFIX: 'wide', SSF_BROKER_MAX_STREAMS_PER_RECEIVER: '2000' }
  const first = await spawn(env)
  const rx = await first.api.createClient(['receiver'])
  const emitter = await first.api.createClient(['emitter'])
  for (let i = 0; i < 1000; i += 50)
    await Promise.all(
      Array.from({ length: 50 }, () =>
        first.api.createPushStream(rx.token, receiver.url, {
          events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        }),
      ),
    )
  receiver.received.length = 0
  receiver.attempts.length = 0

  const res = await first.api.emit(emitter.token, {
    type: 'caep/session-revoked',
    subject: { format: 'opaque', id: 'wide' },
    txn: 'wide',
  })
  assert.equal(res.status, 202)
  // Killed as the first SETs reach the receiver: most streams' SETs are still being signed or queued.
  while (receiver.attempts.length === 0) await new Promise((r) => setTimeout(r, 1))
  await first.broker.kill('SIGKILL')
  const before = receiver.received.length
  assert.ok(
    await ingestPending(env.SSF_BROKER_REDIS_PREFIX),
    'killed before its fan-out finished: the ingest entry is pending',
  )
  console.log(`# killed with ${before} of 1,000 streams served`)

  const second = await spawn(env)
  const restartedAt = Date.now()
  await waitForAll(new Set(['wide']), 30_000, 1000, rx.audience)
  console.log(`# every stream got the event ${Date.now() - restartedAt} ms after the restart`)
  // A stream that got it twice got the same SET (one jti per stream).
  assert.equal(setsPerTxn(rx.audience).get('wide')!.size, 1000)
  await second.broker.kill('SIGTERM')
})

test('SIGKILL in the middle of a 1,000-agent cascade, restart: the SET of every agent arrives', async () => {
  // NONE: the stream receives only the subjects it added (the user, and every agent acting for the user).
  const env = { SSF_BROKER_REDIS_PREFIX: 'cascade', SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' }
  const first = await spawn(env)
  const rx = await first.api.createClient(['receiver'])
  const emitter = await first.api.createClient(['emitter'])
  const user = { format: 'email', email: 'carol@example.com' }
  for (let i = 0; i < 1000; i += 50)
    await Promise.all(
      Array.from({ length: 50 }, async (_, j) => {
        const reg = await first.api.request('POST', '/agents', {
          token: emitter.token,
          json: {
            agent: { format: 'uri', uri: `spiffe://example.org/agent/crash-${i + j}` },
            delegator: user,
            task: 'test task',
            scopes: ['read'],
            expires_in: 3600,
          },
        })
        assert.equal(reg.status, 201, reg.text)
      }),
    )
  const stream = (await first.api.createPushStream(rx.token, receiver.url, {
    events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
  })) as { stream_id: string }
  const add = await first.api.request('POST', '/ssf/subjects/add', {
    token: rx.token,
    json: { stream_id: stream.stream_id, subject: user },
  })
  assert.equal(add.status, 200)
  receiver.received.length = 0

  const res = await first.api.emit(emitter.token, {
    type: 'caep/session-revoked',
    subject: user,
    txn: 'cascade-crash',
  })
  assert.equal(res.status, 202)
  // Killed at once: the agents are being found and their SETs signed.
  await first.broker.kill('SIGKILL')
  assert.ok(
    await ingestPending(env.SSF_BROKER_REDIS_PREFIX),
    'killed before its cascade finished: the ingest entry is pending',
  )
  console.log(`# killed with ${receiver.received.length} of 1,001 SETs delivered`)

  const second = await spawn(env)
  const restartedAt = Date.now()
  await waitForAll(new Set(['cascade-crash']), 30_000, 1001, rx.audience)
  console.log(`# every agent's SET arrived ${Date.now() - restartedAt} ms after the restart`)
  // One SET per agent and one for the user, each with its own jti however often it came.
  const agents = new Set(
    receiver.received.map((p) =>
      JSON.stringify((decodeJwt(p.body).sub_id as { agent?: unknown }).agent ?? null),
    ),
  )
  assert.equal(agents.size, 1001)
  assert.equal(setsPerTxn(rx.audience).get('cascade-crash')!.size, 1001)
  await second.broker.kill('SIGTERM')
})
