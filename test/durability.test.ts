/**
 * Nothing acknowledged is lost: a broker killed with SIGKILL mid-burst, then restarted, delivers every
 * event it answered 202 for; and with two brokers on one Redis, the survivor takes over the work of the
 * one that was killed. Brokers run as separate processes (`node dist/main.js`), as users run them.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { Api, freePort, spawnBroker, testEnv, type SpawnedBroker } from './helpers/broker.js'

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

async function spawn(): Promise<{ broker: SpawnedBroker; api: Api }> {
  const port = await freePort()
  const broker = await spawnBroker(testEnv(redis.url, port, { SSF_BROKER_LEASE_MS: '1500' }))
  running.push(broker)
  return { broker, api: new Api(broker.url) }
}

/** Posts `count` events through the given APIs in turn, `parallel` at a time; returns the acknowledged txns. */
async function burst(apis: Api[], token: string, count: number, prefix: string, parallel = 16): Promise<Set<string>> {
  const acked = new Set<string>()
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const txn = `${prefix}-${i}`
      try {
        const res = await apis[i % apis.length]!.emit(token, { type: 'caep/session-revoked', subject: { format: 'opaque', id: `u${i % 50}` }, txn })
        if (res.status === 202) acked.add(txn)
      } catch {
        // the broker behind this API was killed: not acknowledged, so not owed
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return acked
}

const deliveredTxns = () => new Set(receiver.received.map((p) => decodeJwt(p.body).txn as string))

async function waitForAll(acked: Set<string>, timeoutMs: number): Promise<number> {
  const start = Date.now()
  for (;;) {
    const got = deliveredTxns()
    const missing = [...acked].filter((t) => !got.has(t))
    if (missing.length === 0) return Date.now() - start
    if (Date.now() - start > timeoutMs) assert.fail(`${missing.length} acknowledged events never arrived (e.g. ${missing.slice(0, 3).join(', ')})`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('SIGKILL mid-burst, restart: every acknowledged event arrives (duplicates share a jti)', async () => {
  const first = await spawn()
  const rx = await first.api.createClient(['receiver'])
  const emitter = await first.api.createClient(['emitter'])
  await first.api.createPushStream(rx.token, receiver.url)
  receiver.received.length = 0

  const posting = burst([first.api], emitter.token, 1000, 'crash')
  while (receiver.received.length < 100) await new Promise((r) => setTimeout(r, 5))
  await first.broker.kill('SIGKILL')
  const acked = await posting
  assert.ok(acked.size >= 100, `only ${acked.size} events were acknowledged before the kill`)

  const second = await spawn()
  const restartedAt = Date.now()
  const took = await waitForAll(acked, 20_000)
  console.log(`# restart: ${acked.size} acknowledged events all delivered ${Date.now() - restartedAt} ms after the restart (${took} ms of waiting)`)

  // Duplicates are allowed, but a duplicate is the same SET (same jti) again.
  const jtiByTxn = new Map<string, string>()
  for (const p of receiver.received) {
    const { txn, jti } = decodeJwt(p.body) as { txn: string; jti: string }
    if (jtiByTxn.has(txn)) assert.equal(jtiByTxn.get(txn), jti, `duplicate of ${txn} has another jti`)
    jtiByTxn.set(txn, jti)
  }
  await second.broker.kill('SIGTERM')
})

test('two brokers share the work; when one is killed the survivor delivers its in-flight events', async () => {
  const a = await spawn()
  const b = await spawn()
  const rx = await a.api.createClient(['receiver'])
  const emitter = await a.api.createClient(['emitter'])
  for (let i = 0; i < 4; i++) await a.api.createPushStream(rx.token, receiver.url, { events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'] })
  receiver.received.length = 0

  const posting = burst([a.api, b.api], emitter.token, 400, 'pair')
  while (receiver.received.length < 200) await new Promise((r) => setTimeout(r, 5))
  await a.broker.kill('SIGKILL')
  const acked = await posting
  const killedAt = Date.now()
  await waitForAll(acked, 20_000)
  console.log(`# survivor delivered every acknowledged event ${Date.now() - killedAt} ms after the kill`)
  // Every acknowledged event reached all four streams.
  const perTxn = new Map<string, Set<string>>()
  for (const p of receiver.received) {
    const { txn, jti } = decodeJwt(p.body) as { txn: string; jti: string }
    if (!perTxn.has(txn)) perTxn.set(txn, new Set())
    perTxn.get(txn)!.add(jti)
  }
  for (const txn of acked) assert.equal(perTxn.get(txn)?.size, 4, `${txn} reached ${perTxn.get(txn)?.size ?? 0} of 4 streams`)
  await b.broker.kill('SIGTERM')
})
