/**
 * Upstream ingest survives crashes of the subscribing broker (B, run as `node dist/main.js` processes
 * on their own Redis): killed with SIGKILL while A pushes, B loses nothing A acknowledged; and the poll
 * loop of an upstream moves to another B process within SSF_BROKER_LEASE_MS when its process dies.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import {
  ADMIN_TOKEN,
  Api,
  freePort,
  spawnBroker,
  startTestBroker,
  testEnv,
  type SpawnedBroker,
  type TestBroker,
} from './helpers/broker.js'

const LEASE_MS = 1500
let redisA: TestRedis
let redisB: TestRedis
let a: TestBroker
let sink: TestReceiver
let aEmitter: { token: string }
let aReceiver: { token: string }
let bPort: number
let bIssuer: string
const running: SpawnedBroker[] = []

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

async function spawnB(port = bPort): Promise<{ broker: SpawnedBroker; api: Api }> {
  const broker = await spawnBroker(
    testEnv(redisB.url, port, {
      SSF_BROKER_ISSUER: bIssuer,
      SSF_BROKER_LEASE_MS: String(LEASE_MS),
      SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
    }),
  )
  running.push(broker)
  return { broker, api: new Api(broker.url) }
}

before(async () => {
  ;[redisA, redisB] = await Promise.all([startTestRedis(), startTestRedis()])
  const aPort = await freePort()
  a = await startTestBroker(redisA.url, {
    SSF_BROKER_PORT: String(aPort),
    SSF_BROKER_ISSUER: `http://127.0.0.1:${aPort}`,
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
  })
  bPort = await freePort()
  bIssuer = `http://127.0.0.1:${bPort}`
  sink = await startReceiver()
  aEmitter = await a.api.createClient(['emitter'])
  aReceiver = await a.api.createClient(['receiver'])
})

after(async () => {
  for (const b of running) await b.kill()
  await sink.close()
  await a.close()
  await Promise.all([redisA.stop(), redisB.stop()])
})

const txnsAtSink = (prefix: string) =>
  sink.received
    .map((p) => (decodeJwt(p.body) as { txn?: string }).txn ?? '')
    .filter((t) => t.startsWith(prefix))

test("kill -9 of B while A pushes: every event A acknowledged reaches B's receiver", async () => {
  let b = await spawnB()
  const bReceiver = await b.api.createClient(['receiver'])
  await b.api.createPushStream(bReceiver.token, sink.url)
  const reg = await b.api.request('POST', '/admin/upstreams', {
    token: ADMIN_TOKEN,
    json: {
      issuer: a.issuer,
      delivery: 'push',
      authorization: { type: 'bearer', token: aReceiver.token },
    },
  })
  assert.equal(reg.status, 201, reg.text)
  const id = reg.body.upstream_id

  const COUNT = 400
  const acked = new Set<string>()
  let next = 0
  const emitter = async () => {
    while (next < COUNT) {
      const txn = `kill-${next++}`
      const res = await a.api.emit(aEmitter.token, {
        type: 'caep/session-revoked',
        subject: { format: 'opaque', id: `u${next % 20}` },
        txn,
      })
      if (res.status === 202) acked.add(txn)
      await sleep(2)
    }
  }
  const started = Date.now()
  const burst = Promise.all(Array.from({ length: 8 }, emitter))
  await until('the first SETs at the sink', async () =>
    txnsAtSink('kill-').length >= 40 ? true : undefined,
  )
  await b.broker.kill('SIGKILL')
  const killedAt = txnsAtSink('kill-').length
  b = await spawnB()
  await burst
  assert.equal(acked.size, COUNT, 'A acknowledged every event')
  await until(
    'every acknowledged event at the sink',
    async () => (new Set(txnsAtSink('kill-')).size >= acked.size ? true : undefined),
    90_000,
  )
  const seen = txnsAtSink('kill-')
  const missing = [...acked].filter((t) => !seen.includes(t))
  assert.deepEqual(missing, [])
  // Ingested twice would show as two jtis for one txn (possible only when B dies between storing an
  // event and marking it seen); the same jti twice is a redelivery to the sink.
  const jtis = new Map<string, Set<string>>()
  for (const p of sink.received) {
    const c = decodeJwt(p.body) as { txn: string; jti: string }
    if (c.txn.startsWith('kill-')) jtis.set(c.txn, (jtis.get(c.txn) ?? new Set()).add(c.jti))
  }
  const twice = [...jtis.values()].filter((s) => s.size > 1).length
  console.log(
    `# upstream kill -9: ${acked.size} events, B killed after ${killedAt} had arrived, all delivered in ${Date.now() - started} ms; ${seen.length - new Set(seen).size} duplicate(s) at the sink, ${twice} ingested twice`,
  )
  const stats = await b.api.request('GET', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })
  assert.ok(stats.body.events_received > 0)
  assert.equal(
    (await b.api.request('DELETE', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).status,
    204,
  )
})

test('the poll loop of an upstream runs in one B process and moves to another within SSF_BROKER_LEASE_MS when it dies', async () => {
  const survivorsPort = await freePort()
  const first = running.find((r) => r.child.exitCode === null && r.child.signalCode === null)!
  const second = await spawnB(survivorsPort)
  const apis = new Map<number, Api>([
    [first.child.pid!, new Api(first.url)],
    [second.broker.child.pid!, second.api],
  ])
  const reg = await second.api.request('POST', '/admin/upstreams', {
    token: ADMIN_TOKEN,
    json: {
      issuer: a.issuer,
      delivery: 'poll',
      authorization: { type: 'bearer', token: aReceiver.token },
    },
  })
  assert.equal(reg.status, 201, reg.text)
  const id = reg.body.upstream_id
  const holderPid = (holder: string) => Number(holder.split(':')[1])
  const poller = await until(
    'a poller',
    async () =>
      (await second.api.request('GET', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).body
        .poller ?? undefined,
  )
  assert.ok(apis.has(holderPid(poller)), `holder ${poller} is one of the B processes`)

  await a.api.emit(aEmitter.token, {
    type: 'caep/session-revoked',
    subject: { format: 'opaque', id: 'p' },
    txn: 'lease-before',
  })
  await until('the event before the crash', async () =>
    txnsAtSink('lease-before').length > 0 ? true : undefined,
  )

  const victim = running.find((r) => r.child.pid === holderPid(poller))!
  const survivor = [...apis].find(([pid]) => pid !== victim.child.pid)![1]
  await victim.kill('SIGKILL')
  const killed = Date.now()
  const takeover = await until('another poller', async () => {
    const p = (await survivor.request('GET', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).body
      .poller
    return p && holderPid(p) !== victim.child.pid ? Date.now() - killed : undefined
  })
  console.log(
    `# upstream poll lease: taken over ${takeover} ms after kill -9 (SSF_BROKER_LEASE_MS=${LEASE_MS})`,
  )
  assert.ok(takeover <= LEASE_MS, `takeover in ${takeover} ms`)

  await a.api.emit(aEmitter.token, {
    type: 'caep/session-revoked',
    subject: { format: 'opaque', id: 'p' },
    txn: 'lease-after',
  })
  await until(
    'the event after the takeover',
    async () => (txnsAtSink('lease-after').length > 0 ? true : undefined),
    20_000,
  )
})
