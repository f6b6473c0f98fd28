/**
 * One push stream and the delivery parts of a broker process around it, on a real Redis and a real
 * receiver: stream store, routing cache, outbox, scheduler, push client and dispatcher (for tests that
 * drive the dispatcher directly).
 */
import assert from 'node:assert/strict'
import { after, before } from 'node:test'
import { freePort, testEnv } from './broker.js'
import { startTestRedis, type TestRedis } from './redis.js'
import { startReceiver, type TestReceiver } from './receiver.js'
import type { OutboxItem } from '../../src/delivery/outbox.js'
import { loadConfig, type Config } from '../../src/config/config.js'
import { createLogger } from '../../src/lib/log.js'
import { createKeyspace } from '../../src/redis/keyspace.js'
import { StreamStore } from '../../src/streams/store.js'
import { RoutingCache } from '../../src/streams/routing-cache.js'
import { Outbox } from '../../src/delivery/outbox.js'
import { Scheduler } from '../../src/delivery/scheduler.js'
import { createPushClient } from '../../src/delivery/push-client.js'
import { Dispatcher } from '../../src/delivery/dispatcher.js'
import { Activity } from '../../src/observe/activity.js'
import type { StreamRecord } from '../../src/streams/model.js'

/** A Redis and a receiver for the tests of one file: started before them, stopped after them. */
export function redisAndReceiver(): { redis: TestRedis; receiver: TestReceiver } {
  const env = {} as { redis: TestRedis; receiver: TestReceiver }
  before(async () => {
    env.redis = await startTestRedis()
    env.receiver = await startReceiver()
  })
  after(async () => {
    await env.receiver.close()
    await env.redis.stop()
  })
  return env
}

/** A SET to queue about `subject`, of `type`, in the normal lane; its body is `set-<jti>`. */
export const queuedSet = (jti: string, subject: string, type: string): OutboxItem => ({
  jti,
  set: `set-${jti}`,
  sk: subject,
  txn: `txn-${jti}`,
  type,
  lane: 'n',
  at: Date.now(),
})

export interface DispatcherRig {
  stream: StreamRecord
  outbox: Outbox
  dispatcher: Dispatcher
  /** Stops the dispatcher and the routing cache. */
  stop: () => Promise<void>
}

export async function startDispatcher(
  redis: TestRedis,
  opts: { prefix: string; endpoint: string; eventType: string; config?: Partial<Config> },
): Promise<DispatcherRig> {
  const ks = createKeyspace(opts.prefix)
  const config = { ...loadConfig(testEnv(redis.url, await freePort())), ...opts.config }
  const log = createLogger('error')
  const streams = new StreamStore(redis.client, ks)
  const stream: StreamRecord = {
    stream_id: `${opts.prefix}-stream`,
    client_id: 'client-1',
    aud: 'aud-1',
    signing_alg: 'ES256',
    events_delivered: [opts.eventType],
    delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: opts.endpoint },
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
  return {
    stream,
    outbox,
    dispatcher,
    stop: async () => {
      await dispatcher.stop()
      routing.stop()
    },
  }
}
