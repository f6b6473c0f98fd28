/**
 * Concurrent changes of one stream through the HTTP API of two brokers on one Redis (two routing caches,
 * two request handlers): a DELETE racing a PATCH, a PUT, the receiver's status change or an operator's
 * never brings the stream back and leaves no key or index entry of it; a PATCH racing a status change
 * keeps both changes. Hundreds of trials each; the counts are printed.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { traces } from './helpers/keys.js'

const TRIALS = Number(process.env.SSF_TEST_RACE_TRIALS ?? 200)

let redis: TestRedis
let a: TestBroker
let b: TestBroker
let receiver: TestReceiver
let rx: { token: string; client_id: string }

before(async () => {
  redis = await startTestRedis()
  // No inactivity pause and no verification interval: only the racing requests change the streams.
  const env = {
    SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS: '0',
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
    SSF_BROKER_MAX_STREAMS_PER_RECEIVER: '1000',
  }
  a = await startTestBroker(redis.url, env)
  b = await startTestBroker(redis.url, env)
  receiver = await startReceiver()
  rx = await a.api.createClient(['receiver'])
})

after(async () => {
  await a.close()
  await b.close()
  await receiver.close()
  await redis.stop()
})

/** A few event-loop turns, different per trial, so the two requests interleave differently. */
const jitter = async (turns: number) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r))
}

const create = async () =>
  (await a.api.createPushStream(rx.token, receiver.url, { description: 'race' }))
    .stream_id as string

interface Tally {
  deleted: number
  revived: number
  stray: number
  examples: string[]
}

/** Runs `trials` of DELETE (broker a) against `other` (broker b), each after `prepare`. */
async function deleteRace(
  name: string,
  other: (sid: string) => Promise<{ status: number }>,
  prepare?: (sid: string) => Promise<void>,
): Promise<Tally> {
  const tally: Tally = { deleted: 0, revived: 0, stray: 0, examples: [] }
  for (let i = 0; i < TRIALS; i++) {
    const sid = await create()
    await prepare?.(sid)
    const [deleted, changed] = await Promise.all([
      jitter(i % 4).then(() =>
        a.api.request('DELETE', `/ssf/streams?stream_id=${sid}`, { token: rx.token }),
      ),
      jitter((i >> 2) % 4).then(() => other(sid)),
    ])
    assert.equal(deleted.status, 204)
    assert.ok([200, 204, 404].includes(changed.status), `${name}: ${changed.status}`)
    tally.deleted++
    const seenA = await a.api.request('GET', `/ssf/streams?stream_id=${sid}`, { token: rx.token })
    const seenB = await b.api.request('GET', `/ssf/streams?stream_id=${sid}`, { token: rx.token })
    const left = await traces(redis.client, sid)
    if (seenA.status !== 404 || seenB.status !== 404) tally.revived++
    if (left.length > 0) {
      tally.stray++
      if (tally.examples.length < 3) tally.examples.push(`${sid}: ${left.join(', ')}`)
    }
  }
  console.log(
    `${name}: ${tally.deleted} trials, ${tally.revived} revived, ${tally.stray} with stray keys or index entries ${tally.examples.join(' | ')}`,
  )
  return tally
}

const status = (api: TestBroker['api'], sid: string, value: string) =>
  api.request('POST', '/ssf/status', { token: rx.token, json: { stream_id: sid, status: value } })

describe('a DELETE racing another change never revives the stream and leaves nothing of it', () => {
  test('DELETE vs PATCH', { timeout: 300_000 }, async () => {
    const tally = await deleteRace('DELETE vs PATCH', (sid) =>
      b.api.request('PATCH', '/ssf/streams', {
        token: rx.token,
        json: { stream_id: sid, description: 'patched' },
      }),
    )
    assert.deepEqual([tally.revived, tally.stray], [0, 0], tally.examples.join('\n'))
  })

  test(
    'DELETE vs PUT (push to poll: delivery state and scheduling change too)',
    { timeout: 300_000 },
    async () => {
      const tally = await deleteRace('DELETE vs PUT', (sid) =>
        b.api.request('PUT', '/ssf/streams', {
          token: rx.token,
          json: { stream_id: sid, description: 'replaced' },
        }),
      )
      assert.deepEqual([tally.revived, tally.stray], [0, 0], tally.examples.join('\n'))
    },
  )

  test(
    'DELETE vs the receiver enabling a paused stream (which schedules it)',
    { timeout: 300_000 },
    async () => {
      const tally = await deleteRace(
        'DELETE vs status',
        (sid) => status(b.api, sid, 'enabled'),
        async (sid) => assert.equal((await status(a.api, sid, 'paused')).status, 200),
      )
      assert.deepEqual([tally.revived, tally.stray], [0, 0], tally.examples.join('\n'))
    },
  )

  test(
    'DELETE vs an operator pausing the stream (which queues a stream-updated event)',
    { timeout: 300_000 },
    async () => {
      const tally = await deleteRace('DELETE vs operator status', (sid) =>
        b.api.request('POST', `/admin/streams/${sid}/status`, {
          token: ADMIN_TOKEN,
          json: { status: 'paused' },
        }),
      )
      assert.deepEqual([tally.revived, tally.stray], [0, 0], tally.examples.join('\n'))
    },
  )
})

test(
  'a PATCH racing a status change keeps both: the stream never comes back enabled',
  { timeout: 300_000 },
  async () => {
    let lost = 0
    for (let i = 0; i < TRIALS; i++) {
      const sid = await create()
      const [patched, disabled] = await Promise.all([
        jitter(i % 4).then(() =>
          a.api.request('PATCH', '/ssf/streams', {
            token: rx.token,
            json: { stream_id: sid, description: `patched ${i}` },
          }),
        ),
        jitter((i >> 2) % 4).then(() => status(b.api, sid, 'disabled')),
      ])
      assert.equal(patched.status, 200)
      assert.equal(disabled.status, 200)
      const now = await b.api.request('GET', `/ssf/status?stream_id=${sid}`, { token: rx.token })
      const config = await a.api.request('GET', `/ssf/streams?stream_id=${sid}`, {
        token: rx.token,
      })
      if (now.body.status !== 'disabled' || config.body.description !== `patched ${i}`) lost++
      assert.equal(
        (await a.api.request('DELETE', `/ssf/streams?stream_id=${sid}`, { token: rx.token }))
          .status,
        204,
      )
    }
    console.log(`PATCH vs disable: ${TRIALS} trials, ${lost} lost a change`)
    assert.equal(lost, 0)
  },
)
