/**
 * The ingest log's group bookkeeping on a real Redis: consumers of stopped processes are removed once
 * they hold nothing, never while they hold an entry another process must still take over; an append
 * hands its process any entry no process has taken yet.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { IngestLog } from '../src/ingest/ingest-log.js'
import { createKeyspace } from '../src/redis/keyspace.js'

let redis: TestRedis
const ks = createKeyspace('ilog')
const PARTITIONS = 2

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})

async function consumers(): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (let k = 0; k < PARTITIONS; k++) {
    const rows = (await redis.client.xinfo(
      'CONSUMERS',
      ks.ingest.partition(k),
      ks.ingest.group,
    )) as unknown[][]
    for (const row of rows) {
      const f: Record<string, unknown> = {}
      for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1]
      out.set(String(f.name), (out.get(String(f.name)) ?? 0) + Number(f.pending))
    }
  }
  return out
}

test('consumers of stopped processes leave the group once they hold nothing; one holding an entry stays', async () => {
  const gone = new IngestLog(redis.client, ks, PARTITIONS, 'gone-process')
  const crashed = new IngestLog(redis.client, ks, PARTITIONS, 'crashed-process')
  const live = new IngestLog(redis.client, ks, PARTITIONS, 'live-process')
  await live.init()
  // A process that finished its fan-outs (entries completed), and one that died holding an entry.
  for (let i = 0; i < PARTITIONS; i++)
    await gone.complete([(await gone.append(`["done-${i}"]`)).entry])
  await crashed.append('["held"]')
  assert.deepEqual([...(await consumers()).keys()].sort(), ['crashed-process', 'gone-process'])

  // Not idle long enough yet: nothing removed.
  assert.equal(await live.pruneConsumers(60_000), 0)
  assert.equal(await live.pruneConsumers(0), PARTITIONS)
  const left = await consumers()
  assert.deepEqual([...left.keys()], ['crashed-process'], 'the consumer holding an entry is kept')
  assert.equal(left.get('crashed-process'), 1)

  // Once another process has taken the entry over, the crashed process's consumer goes too.
  const taken = await live.reclaim(0, 10)
  assert.equal(taken.length, 1)
  await live.complete(taken)
  await live.pruneConsumers(0)
  assert.deepEqual(
    [...(await consumers()).keys()].filter((name) => name !== 'live-process'),
    [],
  )
})

test('entries of one partition completed together: one XDEL and one XACK, and every entry is gone', async () => {
  const log = new IngestLog(redis.client, ks, PARTITIONS, 'batch-process')
  await log.init()
  const entries = []
  for (let i = 0; i < 40; i++) entries.push((await log.append(`["b-${i}"]`)).entry)
  const calls = async () => {
    const info = await redis.client.info('commandstats')
    const n = (cmd: string) =>
      Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
    return { xdel: n('xdel'), xack: n('xack') }
  }
  const before = await calls()
  // Completed one by one, in the same turn of the event loop (as fan-outs ending together do).
  await Promise.all(entries.map((e) => log.complete([e])))
  const after = await calls()
  assert.equal(after.xdel - before.xdel, PARTITIONS)
  assert.equal(after.xack - before.xack, PARTITIONS)
  for (let k = 0; k < PARTITIONS; k++) {
    assert.equal(await redis.client.xlen(ks.ingest.partition(k)), 0)
    const pending = (await redis.client.xpending(ks.ingest.partition(k), ks.ingest.group)) as [
      number,
    ]
    assert.equal(pending[0], 0)
  }
})

test('an append hands over entries no process has taken, but not its own payload', async () => {
  const own = createKeyspace('ilog-handed')
  const log = new IngestLog(redis.client, own, 1, 'taker')
  await log.init()
  // Written to the partition without being handed to anyone (as before its group existed).
  const orphan = await redis.client.xadd(own.ingest.partition(0), '*', 'p', '["orphan"]')
  const { entry, extra } = await log.append('["new"]')
  assert.equal(entry.payload, '["new"]')
  assert.deepEqual(extra, [{ partition: 0, id: orphan, payload: '["orphan"]' }])
  // The next append hands over nothing: both are this process's now.
  assert.deepEqual((await log.append('["next"]')).extra, [])
})
