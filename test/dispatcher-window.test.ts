/**
 * A push drain's window: a delivered SET gives back its slot as soon as its push comes back, and its
 * completion is written while the window goes on sending. Real Redis, real outbox, scheduler and push
 * client, a real receiver on loopback; Redis is made to refuse writes for a while (CLIENT PAUSE WRITE) so
 * that no completion can be written meanwhile.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { freePort, testEnv } from './helpers/broker.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { loadConfig } from '../src/config/config.js'
import { createLogger } from '../src/lib/log.js'
import { createKeyspace } from '../src/redis/keyspace.js'
import { StreamStore } from '../src/streams/store.js'
import { RoutingCache } from '../src/streams/routing-cache.js'
import { Outbox, type OutboxItem } from '../src/delivery/outbox.js'
import { Scheduler } from '../src/delivery/scheduler.js'
import { createPushClient } from '../src/delivery/push-client.js'
import { Dispatcher } from '../src/delivery/dispatcher.js'
import { Activity } from '../src/observe/activity.js'
import type { StreamRecord } from '../src/streams/model.js'

let redis: TestRedis
let receiver: TestReceiver

before(async () => {
  redis = await startTestRedis()
  receiver = await startReceiver()
})
after(async () => {
  await receiver.close()
  await redis.stop()
})

const TYPE = 'https://schemas.openid.net/secevent/caep/event-type/session-presented'
const item = (jti: string, subject: string): OutboxItem => ({
  jti,
  set: `set-${jti}`,
  sk: subject,
  txn: `txn-${jti}`,
  type: TYPE,
  lane: 'n',
  at: Date.now(),
})

test('with a window of one, the next SET goes out when a push is answered, not when its completion is written', async () => {
  const ks = createKeyspace('window')
  const config = {
    ...loadConfig(testEnv(redis.url, await freePort())),
    pushConcurrencyPerStream: 1,
  }
  const log = createLogger('error')
  const streams = new StreamStore(redis.client, ks)
  const stream: StreamRecord = {
    stream_id: 'window-stream',
    client_id: 'client-1',
    aud: 'aud-1',
    signing_alg: 'ES256',
    events_delivered: [TYPE],
    delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url },
    default_subjects: 'ALL',
    status: 'enabled',
    created_at: Date.now(),
    updated_at: Date.now(),
  }
  assert.equal(await streams.create(stream, 10), 'created')
  const routing = new RoutingCache(redis.client, ks, streams, log)
  await routing.start()
  const outbox = new Outbox(redis.client, ks, config.streamBacklogMax, false)
  const dispatcher = new Dispatcher(
    redis.client,
    ks,
    outbox,
    new Scheduler(redis.client, ks),
    routing,
    createPushClient({
      allowPrivate: true,
      connectTimeoutMs: 2000,
      requestTimeoutMs: 5000,
      maxResponseBytes: 4096,
      connectionsPerOrigin: 4,
      userAgent: 'test',
    }),
    config,
    log,
    new Activity(),
  )
  await dispatcher.start()
  const PAUSE_MS = 1500
  let pausedUntil = 0
  receiver.respond = async (_push, res) => {
    // Before answering the first push, Redis stops taking writes: its completion cannot be written.
    if (pausedUntil === 0) {
      await redis.client.client('PAUSE', PAUSE_MS, 'WRITE')
      pausedUntil = Date.now() + PAUSE_MS
    }
    res.writeHead(202).end()
  }
  try {
    const sid = stream.stream_id
    // Three SETs about three subjects, queued together: the drain starts from them (no read needed).
    await dispatcher.queuedWhile(
      stream,
      outbox.append(sid, [item('a', 'alice'), item('b', 'bob'), item('c', 'carol')]),
    )
    const pushes = await receiver.waitFor(3)
    assert.deepEqual(
      pushes.map((p) => p.body),
      ['set-a', 'set-b', 'set-c'],
    )
    // One at a time, each after the one before was answered, all while no completion could be written.
    for (const p of pushes.slice(1))
      assert.ok(p.at < pausedUntil, `pushed ${pausedUntil - p.at} ms before writes resumed`)
    // Once Redis takes writes again, every completion is recorded: the queue empties.
    while ((await outbox.pending(sid)) > 0) await new Promise((r) => setTimeout(r, 10))
    assert.ok(Date.now() >= pausedUntil - 50)
  } finally {
    receiver.respond = (_p, res) => void res.writeHead(202).end()
    await redis.client.client('UNPAUSE')
    await dispatcher.stop()
    routing.stop()
  }
})
