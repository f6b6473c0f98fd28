/**
 * The per-receiver stream quota (SSF_BROKER_MAX_STREAMS_PER_RECEIVER), sequential and concurrent, and
 * client deletion: every key of the client's streams goes, measured on the real keyspace before and after.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { allKeys, traces } from './helpers/keys.js'

const LIMIT = 5

let redis: TestRedis
let a: TestBroker
let b: TestBroker
let receiver: TestReceiver
let emitter: { token: string }

before(async () => {
  redis = await startTestRedis()
  const env = {
    SSF_BROKER_MAX_STREAMS_PER_RECEIVER: String(LIMIT),
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '30',
    SSF_BROKER_POLL_MAX_WAIT_SECONDS: '1',
  }
  a = await startTestBroker(redis.url, env)
  b = await startTestBroker(redis.url, env)
  receiver = await startReceiver()
  emitter = await a.api.createClient(['emitter'])
})

after(async () => {
  await a.close()
  await b.close()
  await receiver.close()
  await redis.stop()
})

const createPoll = (api: TestBroker['api'], token: string) =>
  api.request('POST', '/ssf/streams', { token, json: {} })

describe('stream quota', () => {
  test('the create past the limit answers 409 stream_limit_exceeded; deleting one makes room', async () => {
    const rx = await a.api.createClient(['receiver'])
    const ids: string[] = []
    for (let i = 0; i < LIMIT; i++) {
      const res = await createPoll(i % 2 ? a.api : b.api, rx.token)
      assert.equal(res.status, 201, res.text)
      ids.push(res.body.stream_id)
    }
    const refused = await createPoll(a.api, rx.token)
    assert.equal(refused.status, 409)
    assert.equal(refused.body.error, 'stream_limit_exceeded')
    assert.match(refused.body.error_description, new RegExp(`at most ${LIMIT} streams`))
    assert.equal(
      (await a.api.request('GET', '/ssf/streams', { token: rx.token })).body.length,
      LIMIT,
      'nothing was stored for the refused create',
    )
    // Another receiver has its own quota.
    const other = await a.api.createClient(['receiver'])
    assert.equal((await createPoll(a.api, other.token)).status, 201)
    assert.equal(
      (await a.api.request('DELETE', `/ssf/streams?stream_id=${ids[0]}`, { token: rx.token }))
        .status,
      204,
    )
    assert.equal((await createPoll(b.api, rx.token)).status, 201)
    assert.equal((await createPoll(b.api, rx.token)).status, 409)
  })

  test('concurrent creates through two brokers never exceed the limit', async () => {
    for (let round = 0; round < 10; round++) {
      const rx = await a.api.createClient(['receiver'])
      const results = await Promise.all(
        Array.from({ length: 4 * LIMIT }, (_, i) => createPoll(i % 2 ? a.api : b.api, rx.token)),
      )
      const statuses = results.map((r) => r.status)
      assert.equal(statuses.filter((s) => s === 201).length, LIMIT, statuses.join(','))
      assert.equal(statuses.filter((s) => s === 409).length, 3 * LIMIT, statuses.join(','))
      assert.equal(
        (await a.api.request('GET', '/ssf/streams', { token: rx.token })).body.length,
        LIMIT,
      )
    }
  })
})

describe('client deletion', () => {
  test(
    'deleting a receiver client removes every key and index entry of its streams',
    { timeout: 60_000 },
    async () => {
      const keep = await a.api.createClient(['receiver'])
      const kept = await a.api.createPushStream(keep.token, receiver.url)
      // What every broker writes once (ingest partitions, audit, routing change log) exists before measuring.
      assert.equal(
        (
          await a.api.emit(emitter.token, {
            type: 'caep/session-revoked',
            subject: { format: 'email', email: 'warmup@example.com' },
          })
        ).status,
        202,
      )
      await receiver.waitFor(1)
      const baseline = await allKeys(redis.client)

      const rx = await a.api.createClient(['receiver'])
      const push = await a.api.createPushStream(rx.token, receiver.url)
      const held = await a.api.createPushStream(rx.token, receiver.url)
      const poll = (await createPoll(b.api, rx.token)).body
      const sids = [push.stream_id, held.stream_id, poll.stream_id]
      const alice = { format: 'email', email: 'alice@example.com' }
      const bob = {
        format: 'complex',
        user: { format: 'email', email: 'bob@example.com' },
        device: { format: 'opaque', id: 'laptop-1' },
      }
      for (const sid of sids) {
        assert.equal(
          (
            await a.api.request('POST', '/ssf/subjects/remove', {
              token: rx.token,
              json: { stream_id: sid, subject: alice },
            })
          ).status,
          204,
        )
        assert.equal(
          (
            await b.api.request('POST', '/ssf/subjects/remove', {
              token: rx.token,
              json: { stream_id: sid, subject: bob },
            })
          ).status,
          204,
        )
        assert.equal(
          (
            await a.api.request('POST', '/ssf/verify', {
              token: rx.token,
              json: { stream_id: sid, state: 'before-deletion' },
            })
          ).status,
          204,
        )
      }
      // One stream paused (it holds), one delivering, one polled: lanes, pending counts, logs, hand-outs.
      assert.equal(
        (
          await a.api.request('POST', '/ssf/status', {
            token: rx.token,
            json: { stream_id: held.stream_id, status: 'paused' },
          })
        ).status,
        200,
      )
      for (let i = 0; i < 5; i++) {
        assert.equal(
          (
            await a.api.emit(emitter.token, {
              type: 'caep/session-revoked',
              subject: { format: 'email', email: `user${i}@example.com` },
            })
          ).status,
          202,
        )
      }
      // Delivered: the warm-up event, two verifications (a paused stream still gets control SETs), and
      // five events each to the kept stream and the delivering one.
      await receiver.waitFor(13)
      const polled = await b.api.request('POST', `/ssf/poll/${poll.stream_id}`, {
        token: rx.token,
        json: { maxEvents: 2, returnImmediately: true },
      })
      assert.equal(polled.status, 200)
      assert.ok(Object.keys(polled.body.sets).length > 0)
      const during = await allKeys(redis.client)
      for (const sid of sids)
        assert.ok(
          (await traces(redis.client, sid, during)).length > 3,
          `stream ${sid} has keys to remove`,
        )

      assert.equal(
        (await b.api.request('DELETE', `/admin/clients/${rx.client_id}`, { token: ADMIN_TOKEN }))
          .status,
        204,
      )

      const afterwards = await allKeys(redis.client)
      for (const sid of sids)
        assert.deepEqual(
          await traces(redis.client, sid, afterwards),
          [],
          `nothing of stream ${sid} is left`,
        )
      // Besides the kept stream's own keys, only broker-wide keys may have appeared (the audit trail).
      const added = [...afterwards].filter(
        (k) => !baseline.has(k) && !k.includes(`{o:${kept.stream_id}}`),
      )
      assert.deepEqual(
        added.filter((k) => !/^ssf:\{(audit|dlq|misc)\}/.test(k)),
        [],
        `keys added since before the client existed: ${added.join(', ')}`,
      )
      assert.equal(
        (await a.api.request('GET', '/ssf/streams', { token: keep.token })).body[0].stream_id,
        kept.stream_id,
        'another client keeps its stream',
      )
      assert.ok((await traces(redis.client, kept.stream_id, afterwards)).length > 0)
    },
  )
})
