/**
 * The audit trail's storage: what a record costs in Redis commands (INFO commandstats, commands run inside
 * scripts included), retention in bounded steps (whole batches and part of one), index upkeep, the key
 * prefix and hash tag, and the backlog-drop record.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { AuditLog, type AuditEntryInput } from '../src/audit/log.js'
import { backlogDroppedEntry } from '../src/audit/entries.js'
import { createKeyspace } from '../src/redis/keyspace.js'
import { overwriteRecord, storedRecord } from './helpers/audit-tamper.js'

let redis: TestRedis
const keys = createKeyspace('ssf').audit

/** Calls of every command so far, by name (INFO itself left out). */
async function commandCalls(): Promise<Map<string, number>> {
  const info = await redis.client.info('commandstats')
  const calls = new Map<string, number>()
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
    if (m[1] !== 'info') calls.set(m[1]!, Number(m[2]))
  return calls
}

function delta(
  before: Map<string, number>,
  after: Map<string, number>,
): { total: number; by: Record<string, number> } {
  const by: Record<string, number> = {}
  let total = 0
  for (const [name, n] of after) {
    const d = n - (before.get(name) ?? 0)
    if (d > 0) by[name] = d
    total += d
  }
  return { total, by }
}

/** What one event's fan-out writes: a SET minted for each of 10 streams and its delivery attempt. */
function fanOut(txn: string, streams = 10, at?: number): AuditEntryInput[] {
  const entries: AuditEntryInput[] = []
  for (let s = 0; s < streams; s++)
    entries.push({
      kind: 'set.minted',
      txn,
      jti: `${txn}-${s}`,
      stream_id: `stream-${s}`,
      aud: `rs-${s}`,
      type: 'caep/session-revoked',
      ...(at !== undefined ? { at } : {}),
    })
  for (let s = 0; s < streams; s++)
    entries.push({
      kind: 'delivery.attempt',
      txn,
      jti: `${txn}-${s}`,
      stream_id: `stream-${s}`,
      outcome: 'delivered',
      status: 202,
      latency_ms: 3,
      attempt: 1,
      ...(at !== undefined ? { at } : {}),
    })
  return entries
}

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})
beforeEach(async () => {
  await redis.client.flushall()
})

describe('cost', () => {
  test('10,000 fan-out records in batches of 100 cost at most 0.5 Redis commands per record; queries and verify still answer', async () => {
    const log = new AuditLog(redis.client, { retentionSeconds: 3600 })
    // Scripts loaded and the head known, as in a running broker.
    await log.record({ kind: 'poll.ack', jti: 'warm-up', stream_id: 'stream-0' })
    const before = await commandCalls()
    let written = 0
    for (let b = 0; b < 100; b++) {
      const batch: AuditEntryInput[] = []
      for (let e = 0; e < 5; e++) batch.push(...fanOut(`txn-${b}-${e}`))
      await log.recordMany(batch)
      written += batch.length
    }
    const cost = delta(before, await commandCalls())
    const perRecord = cost.total / written
    console.log(
      `# audit commands per record: ${perRecord.toFixed(3)} (${cost.total} commands for ${written} records: ${JSON.stringify(cost.by)})`,
    )
    assert.equal(written, 10_000)
    assert.ok(perRecord <= 0.5, `${perRecord} commands per record`)

    const txn = await log.query({ txn: 'txn-42-3', limit: 100 })
    assert.equal(txn.records.length, 20)
    assert.deepEqual(
      new Set(txn.records.map((r) => r.kind)),
      new Set(['set.minted', 'delivery.attempt']),
    )
    const stream = await log.query({ stream_id: 'stream-7', kind: 'delivery.attempt', limit: 1000 })
    assert.equal(stream.records.length, 500)
    assert.ok(
      stream.records.every(
        (r, i) =>
          r.stream_id === 'stream-7' &&
          r.kind === 'delivery.attempt' &&
          (i === 0 || r.seq < stream.records[i - 1]!.seq),
      ),
    )
    assert.equal(stream.next_cursor, undefined)
    const both = await log.query({ stream_id: 'stream-7', txn: 'txn-99-4', limit: 10 })
    assert.deepEqual(
      both.records.map((r) => r.kind),
      ['delivery.attempt', 'set.minted'],
    )
    const result = await log.verify()
    assert.ok(
      result.ok && result.checked === 10_001 && result.head.seq === 10_001,
      JSON.stringify(result),
    )
  })

  test("index TTLs are set on a key's first write and not refreshed on every later one", async () => {
    const log = new AuditLog(redis.client, { retentionSeconds: 3600 })
    await log.recordMany(fanOut('t1'))
    const streamKey = keys.index('stream', 'stream-3')
    const ttl = await redis.client.ttl(streamKey)
    assert.ok(ttl > 3600 && ttl <= 3600 + 86_400, String(ttl))
    const before = await commandCalls()
    await log.recordMany(fanOut('t2'))
    const cost = delta(before, await commandCalls())
    // Only the new txn's key gets a TTL; the ten stream keys already have one.
    assert.equal(cost.by.expire, 1, JSON.stringify(cost.by))
    assert.ok((await redis.client.ttl(keys.index('txn', 't2'))) > 3600)
  })
})

describe('retention', () => {
  test('prune removes whole batches and the older part of the one holding the cutoff; the chain still verifies', async () => {
    const log = new AuditLog(redis.client, { retentionSeconds: 60, lingerMs: 0 })
    const now = 50_000_000
    const old = now - 120_000
    for (let i = 0; i < 300; i++) await log.recordMany(fanOut(`old-${i}`, 10, old))
    // One batch straddling the cutoff: 20 old records, then 20 recent ones.
    await log.recordMany([...fanOut('edge-old', 10, old), ...fanOut('edge-new', 10, now - 1000)])
    await log.recordMany(fanOut('new', 10, now - 1000))
    const oldStreamEntries = await redis.client.zcard(keys.index('stream', 'stream-0'))
    assert.equal(oldStreamEntries, 302)

    const before = await commandCalls()
    assert.equal(await log.prune(now), 300 * 20 + 20)
    // Bounded steps: several script calls, none of them the whole trail.
    const steps = delta(before, await commandCalls()).by
    assert.ok((steps.evalsha ?? 0) + (steps.eval ?? 0) >= 2, JSON.stringify(steps))
    assert.equal(await log.prune(now), 0)
    const result = await log.verify()
    assert.ok(
      result.ok && result.checked === 40 && result.anchor.seq === 6020,
      JSON.stringify(result),
    )
    assert.deepEqual((await log.query({ txn: 'edge-old', limit: 100 })).records, [])
    assert.equal((await log.query({ txn: 'edge-new', limit: 100 })).records.length, 20)
    assert.equal((await log.query({ stream_id: 'stream-0', limit: 100 })).records.length, 4)
    // The removed batches are gone from the indexes too; indexes of only removed batches are gone.
    assert.equal(await redis.client.zcard(keys.index('stream', 'stream-0')), 2)
    assert.equal(await redis.client.exists(keys.index('txn', 'old-7')), 0)
    assert.equal(await redis.client.zcard(keys.order), 2)
    // Appending continues the chain; tampering after a prune is still found.
    await log.record({ kind: 'poll.ack', jti: 'later', stream_id: 'stream-0' })
    assert.ok((await log.verify()).ok)
    await overwriteRecord(redis.client, 6030, {
      ...(await storedRecord(redis.client, 6030)),
      outcome: 'failed',
    })
    const tampered = await log.verify()
    assert.ok(
      !tampered.ok && tampered.brokenAt === '6030' && tampered.checked === 9,
      JSON.stringify(tampered),
    )
  })
})

describe('keyspace', () => {
  test('every key carries the prefix and the {audit} hash tag', async () => {
    const log = new AuditLog(redis.client, {
      retentionSeconds: 3600,
      keyspace: createKeyspace('tenant-x'),
    })
    await log.recordMany(fanOut('t1'))
    await log.record({
      kind: 'event.ingested',
      txn: 't1',
      type: 'caep/session-revoked',
      subject: { format: 'email', email: 'a@example.com' },
      client_id: 'idp',
    })
    await log.prune(Date.now() + 10_000_000)
    await log.record({ kind: 'poll.ack', jti: 'j', stream_id: 'stream-1' })
    const all = await redis.client.keys('*')
    assert.ok(all.length >= 5, all.join(' '))
    for (const key of all) assert.ok(key.startsWith('tenant-x:{audit}:'), key)
    assert.ok((await log.verify()).ok)
    assert.equal(
      (await new AuditLog(redis.client, { retentionSeconds: 3600 }).query({ limit: 10 })).records
        .length,
      0,
      'another prefix sees nothing',
    )
  })
})

describe('backlog drops', () => {
  test('stream.backlog_dropped keeps the count and the first 100 jtis, and is found by stream and kind', async () => {
    const log = new AuditLog(redis.client, { retentionSeconds: 3600 })
    const jtis = Array.from({ length: 250 }, (_, i) => `dropped-${i}`)
    await log.record(backlogDroppedEntry('stream-9', jtis, 250))
    await log.record({
      kind: 'stream.backlog_dropped',
      stream_id: 'stream-9',
      count: 150,
      jtis: jtis.slice(0, 150),
      txn: 'txn-d',
    })
    await log.recordMany(fanOut('other'))
    const found = await log.query({
      stream_id: 'stream-9',
      kind: 'stream.backlog_dropped',
      limit: 10,
    })
    assert.equal(found.records.length, 2)
    const [second, first] = found.records
    assert.deepEqual(
      [first!.count, (first!.jtis as string[]).length, (first!.jtis as string[])[99]],
      [250, 100, 'dropped-99'],
    )
    assert.deepEqual(
      [second!.count, (second!.jtis as string[]).length, second!.txn],
      [150, 100, 'txn-d'],
    )
    assert.equal((await log.query({ txn: 'txn-d', limit: 10 })).records.length, 1)
    assert.ok((await log.verify()).ok)
  })
})
