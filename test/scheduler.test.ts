/**
 * The delivery scheduler on a real Redis: marks and releases made together go as one script call per
 * scheduling shard, and each stream still gets the answer it would get alone.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { Scheduler } from '../src/delivery/scheduler.js'
import { createKeyspace, schedShardOf } from '../src/redis/keyspace.js'
import { TurnBatch } from '../src/lib/turn-batch.js'

let redis: TestRedis
const ks = createKeyspace('sched-test')
const LEASE = 10_000

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})

/** EVALSHA and EVAL calls the server has run so far. */
async function scriptCalls(): Promise<number> {
  const info = await redis.client.info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1])
  return calls
}

test('marks made together: one script call per shard, and each stream its own answer', async () => {
  const scheduler = new Scheduler(redis.client, ks)
  const sids = Array.from({ length: 200 }, (_, i) => `mark-${i}`)
  // Held by another process, backing off, and free.
  for (const sid of sids.slice(0, 20)) await scheduler.markDue(sid, 'other', LEASE)
  for (const sid of sids.slice(20, 40)) {
    await scheduler.markDue(sid, 'other', LEASE)
    await scheduler.release(sid, 'other', 'backoff', Date.now() + 60_000)
  }
  const shards = new Set(sids.map(schedShardOf)).size
  const before = await scriptCalls()
  const results = await Promise.all(
    sids.map((sid, i) => scheduler.markDue(sid, 'me', LEASE, false, i % 2 === 0)),
  )
  const calls = (await scriptCalls()) - before
  assert.ok(calls <= shards, `${calls} script calls for ${shards} shards`)
  sids.forEach((sid, i) => {
    const expected = i < 20 ? (i % 2 === 0 ? 'busy' : 'held') : i < 40 ? 'waiting' : 'claimed'
    assert.equal(results[i], expected, sid)
  })
  // Held streams marked (not only claimed) are dirty; a claim-only mark changed nothing.
  for (const [i, sid] of sids.slice(0, 20).entries()) {
    const dirty = await redis.client.sismember(ks.sched.dirty(schedShardOf(sid)), sid)
    assert.equal(dirty, i % 2 === 0 ? 0 : 1, sid)
  }
  for (const sid of sids.slice(40))
    assert.equal(await redis.client.hget(ks.sched.lease(schedShardOf(sid)), sid), 'me')
})

test('releases made together: one script call per shard; dirty streams are kept, others let go', async () => {
  const scheduler = new Scheduler(redis.client, ks)
  const sids = Array.from({ length: 120 }, (_, i) => `release-${i}`)
  await Promise.all(sids.map((sid) => scheduler.markDue(sid, 'me', LEASE)))
  // SETs came meanwhile for the first 30 (marked by another process while held).
  await Promise.all(sids.slice(0, 30).map((sid) => scheduler.markDue(sid, 'other', LEASE)))
  const shards = new Set(sids.map(schedShardOf)).size
  const before = await scriptCalls()
  const due = Date.now() + 30_000
  const results = await Promise.all(
    sids.map((sid, i) =>
      i < 60
        ? scheduler.release(sid, 'me', 'idle')
        : i < 90
          ? scheduler.release(sid, 'me', 'backoff', due)
          : scheduler.release(sid, 'not-me', 'idle'),
    ),
  )
  const calls = (await scriptCalls()) - before
  assert.ok(calls <= shards, `${calls} script calls for ${shards} shards`)
  sids.forEach((sid, i) =>
    assert.equal(results[i], i < 30 ? 'more' : i < 90 ? 'released' : 'lost', sid),
  )
  for (const sid of sids.slice(60, 90))
    assert.equal(Number(await redis.client.zscore(ks.sched.ready(schedShardOf(sid)), sid)), due)
  for (const sid of sids.slice(30, 60)) {
    assert.equal(await redis.client.hget(ks.sched.lease(schedShardOf(sid)), sid), null)
    assert.equal(await redis.client.zscore(ks.sched.ready(schedShardOf(sid)), sid), null)
  }
})

test('a turn batch answers each call in order, splits large groups, and fails every call of a failed group', async () => {
  const sent: number[][] = []
  const batch = new TurnBatch<string, number, number>(
    async (key, args) => {
      sent.push(args)
      if (key === 'bad') throw new Error('refused')
      return args.map((a) => a * 10)
    },
    'turn',
    4,
  )
  const good = Promise.all([1, 2, 3, 4, 5, 6].map((n) => batch.call('good', n)))
  const bad = batch.call('bad', 7)
  assert.deepEqual(await good, [10, 20, 30, 40, 50, 60])
  await assert.rejects(bad, /refused/)
  assert.deepEqual(sent, [[1, 2, 3, 4], [5, 6], [7]])
})
