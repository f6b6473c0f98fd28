/**
 * The fan-out's prefetch: the subject lookups of a request's first chunk are sent with the ingest append,
 * filtered by this process's routing cache as it is then. An event that no stream received at that moment
 * but one does by the time the chunk routes (a stream created through another process, read with the
 * append's routing version) is looked up by the chunk itself: a subject list is never taken as empty
 * because the prefetch skipped it. A prefetch whose reads fail fails the fan-out (its ingest entry is then
 * run again). Real Redis, real stream store, subject index, key store and outbox.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { createKeyspace } from '../src/redis/keyspace.js'
import { createLogger } from '../src/lib/log.js'
import { StreamStore } from '../src/streams/store.js'
import { RoutingCache } from '../src/streams/routing-cache.js'
import { SubjectIndex } from '../src/subjects/index-store.js'
import { subjectKey, type Subject } from '../src/subjects/subject.js'
import { KeyStore } from '../src/keys/keystore.js'
import { Outbox } from '../src/delivery/outbox.js'
import { FairLimiter } from '../src/ingest/fair-limiter.js'
import { FanOut, type IngestedEvent } from '../src/ingest/fan-out.js'
import { Activity } from '../src/observe/activity.js'
import type { StreamRecord } from '../src/streams/model.js'

const TYPE = 'https://schemas.openid.net/secevent/caep/event-type/session-presented'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})

const subject = (id: string): Subject => ({ format: 'opaque', id })

const ingested = (id: string, user: string): IngestedEvent => {
  const s = subject(user)
  return {
    id,
    seq: 0,
    type: TYPE,
    subject: s,
    sk: subjectKey(s),
    event: {},
    txn: `txn-${id}`,
    received_at: Date.now(),
    client_id: 'emitter-1',
  }
}

/** A fan-out on its own keyspace, with a routing cache that changes only when synced (as the pipeline syncs it). */
async function fanOutRig(prefix: string) {
  const ks = createKeyspace(prefix)
  const log = createLogger('error')
  const streams = new StreamStore(redis.client, ks)
  const routing = new RoutingCache(redis.client, ks, streams, log)
  await routing.sync()
  const subjects = new SubjectIndex(redis.client, ks, (sid) => streams.exists(sid))
  const keys = new KeyStore(redis.client, 3600, ks)
  await keys.init()
  const outbox = new Outbox(redis.client, ks, 1000, false)
  const fanOut = new FanOut({
    issuer: 'https://broker.example',
    keys,
    routing,
    outbox,
    subjects,
    limiter: new FairLimiter(64),
    priorityTypes: new Set(),
    log,
    activity: new Activity(),
    queued: async (_stream, appending) => {
      await appending
    },
  })
  return { streams, routing, subjects, outbox, fanOut }
}

/** A stream that receives only the subjects it names (none yet). */
const noneStream = (sid: string): StreamRecord => {
  const now = Date.now()
  return {
    stream_id: sid,
    client_id: 'receiver-1',
    aud: 'aud-1',
    signing_alg: 'ES256',
    events_delivered: [TYPE],
    delivery: {
      method: 'urn:ietf:rfc:8936',
      endpoint_url: `https://broker.example/ssf/poll/${sid}`,
    },
    default_subjects: 'NONE',
    status: 'enabled',
    created_at: now,
    updated_at: now,
  }
}

/** The subjects of the SETs queued for a stream, in order. */
async function queuedUsers(outbox: Outbox, sid: string): Promise<string[]> {
  const head = await outbox.head(sid, ['c', 'p', 'n'], 10)
  return [...head.c, ...head.p, ...head.n].map(
    (s) => (decodeJwt(s.set) as { sub_id: { id: string } }).sub_id.id,
  )
}

test('an event routed only after its prefetch (a stream created meanwhile) has its subjects looked up by the chunk', async () => {
  const { streams, routing, subjects, outbox, fanOut } = await fanOutRig('prefetch')

  const events = [ingested('e1', 'alice'), ingested('e2', 'bob')]
  // The cache knows no stream for the type yet: the prefetch looks up nobody.
  const prefetched = fanOut.prefetch(events)

  // Meanwhile a stream that receives only the subjects it names is created, naming alice.
  const stream = noneStream('prefetch-none')
  assert.equal(await streams.create(stream, 10), 'created')
  await subjects.add(stream.stream_id, subject('alice'))

  await routing.sync()
  assert.ok(routing.get(stream.stream_id), 'the cache knows the stream when the chunk routes')
  await fanOut.run(events, prefetched)

  // alice's event reached it (her subject was looked up then), bob's did not (he is not named).
  assert.deepEqual(await queuedUsers(outbox, stream.stream_id), ['alice'])
})

test('a prefetch whose reads fail fails the fan-out, which then runs again with reads of its own', async () => {
  const { streams, routing, subjects, outbox, fanOut } = await fanOutRig('prefetch-fails')
  const stream = noneStream('prefetch-fails-none')
  assert.equal(await streams.create(stream, 10), 'created')
  await subjects.add(stream.stream_id, subject('carol'))
  await routing.sync()
  const events = [ingested('e3', 'carol')]

  // The subject lookup sent with the ingest append fails, as a read does when Redis goes away.
  const matchAll = subjects.matchAll.bind(subjects)
  subjects.matchAll = () => Promise.reject(new Error('Connection is closed.'))
  const prefetched = fanOut.prefetch(events)
  subjects.matchAll = matchAll
  await assert.rejects(fanOut.run(events, prefetched), /Connection is closed/)
  assert.deepEqual(
    await queuedUsers(outbox, stream.stream_id),
    [],
    'nothing queued on a failed read',
  )

  // Run again (as a takeover does, from the ingest entry, without a prefetch): the SET is queued.
  await fanOut.run(events)
  assert.deepEqual(await queuedUsers(outbox, stream.stream_id), ['carol'])
})
