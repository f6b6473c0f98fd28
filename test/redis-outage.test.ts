/**
 * Redis unreachable: requests answer 503 with a JSON error within the command timeout instead of hanging,
 * and once Redis answers again events are accepted and delivered.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

let redis: TestRedis
let broker: TestBroker
let receiver: TestReceiver

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
  receiver = await startReceiver()
})

after(async () => {
  redis.resume()
  await broker.close()
  await receiver.close()
  await redis.stop()
})

test(
  'while Redis does not answer, ingest and management answer 503; afterwards delivery resumes',
  { timeout: 60_000 },
  async () => {
    const rx = await broker.api.createClient(['receiver'])
    const emitter = await broker.api.createClient(['emitter'])
    await broker.api.createPushStream(rx.token, receiver.url)
    redis.pause()
    try {
      const started = Date.now()
      const [ingest, list] = await Promise.all([
        broker.api.emit(emitter.token, {
          type: 'caep/session-revoked',
          subject: { format: 'opaque', id: 'during-outage' },
        }),
        broker.api.request('GET', '/ssf/streams', { token: rx.token }),
      ])
      for (const res of [ingest, list]) {
        assert.equal(res.status, 503, res.text)
        assert.equal(res.body.error, 'temporarily_unavailable')
      }
      assert.ok(Date.now() - started < 15_000, 'answered instead of hanging')
    } finally {
      redis.resume()
    }
    const after = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: { format: 'opaque', id: 'after-outage' },
      txn: 'after-outage',
    })
    assert.equal(after.status, 202)
    const deadline = Date.now() + 15_000
    while (
      !receiver.received.some((p) => decodeJwt(p.body).txn === 'after-outage') &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 50))
    assert.ok(
      receiver.received.some((p) => decodeJwt(p.body).txn === 'after-outage'),
      'delivered after Redis came back',
    )
  },
)
