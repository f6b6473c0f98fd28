/**
 * The audit trail on a real three-node Redis Cluster: every script and multi-key read stays in the
 * `{audit}` slot, so appends from two writers, queries, verification, tampering and retention work there.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Redis } from 'ioredis'
import { Cluster } from 'ioredis'
import { startTestRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js'
import { AuditLog, type AuditEntryInput } from '../src/audit/log.js'
import { createKeyspace } from '../src/redis/keyspace.js'

let cluster: TestRedisCluster
const keyspace = createKeyspace('ssf')

before(async () => {
  cluster = await startTestRedisCluster()
})
after(async () => {
  await cluster?.stop()
})

const story = (txn: string, at?: number): AuditEntryInput[] => [
  {
    kind: 'event.ingested',
    txn,
    type: 'caep/session-revoked',
    subject: { format: 'email', email: 'alice@example.com' },
    client_id: 'idp',
    ...(at ? { at } : {}),
  },
  ...Array.from({ length: 5 }, (_, s): AuditEntryInput => ({
    kind: 'set.minted',
    txn,
    jti: `${txn}-${s}`,
    stream_id: `stream-${s}`,
    aud: 'rs',
    type: 'caep/session-revoked',
    ...(at ? { at } : {}),
  })),
  ...Array.from({ length: 5 }, (_, s): AuditEntryInput => ({
    kind: 'delivery.attempt',
    txn,
    jti: `${txn}-${s}`,
    stream_id: `stream-${s}`,
    outcome: 'delivered',
    status: 202,
    ...(at ? { at } : {}),
  })),
]

test('append from two writers, query, verify, tamper and prune on Redis Cluster', async () => {
  const other = new Cluster(
    cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
  )
  other.on('error', () => {})
  try {
    const a = new AuditLog(cluster.client as unknown as Redis, { retentionSeconds: 60, keyspace })
    const b = new AuditLog(other as unknown as Redis, { retentionSeconds: 60, keyspace })
    const now = Date.now()
    await a.recordMany(story('old', now - 120_000))
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).recordMany(story(`txn-${i}`))),
    )
    const result = await a.verify()
    assert.ok(result.ok && result.checked === 21 * 11, JSON.stringify(result))
    const byTxn = await b.query({ txn: 'txn-7', limit: 100 })
    assert.equal(byTxn.records.length, 11)
    const byStream = await a.query({ stream_id: 'stream-3', kind: 'delivery.attempt', limit: 100 })
    assert.equal(byStream.records.length, 21)
    const both = await b.query({ stream_id: 'stream-2', txn: 'txn-3', limit: 10 })
    assert.deepEqual(
      both.records.map((r) => r.kind),
      ['delivery.attempt', 'set.minted'],
    )
    const bySubject = await a.query({
      subject: { format: 'email', email: 'alice@example.com' },
      limit: 5,
    })
    assert.equal(bySubject.records.length, 5)
    assert.ok(bySubject.next_cursor)
    let lines = 0
    for await (const _ of b.exportJsonl({ stream_id: 'stream-0' })) lines++
    assert.equal(lines, 42)

    assert.equal(await a.prune(now), 11)
    const pruned = await b.verify()
    assert.ok(
      pruned.ok && pruned.checked === 20 * 11 && pruned.anchor.seq === 11,
      JSON.stringify(pruned),
    )

    // Tampering is found on the cluster as well.
    const [id] = await cluster.client.zrevrangebyscore(
      keyspace.audit.order,
      '+inf',
      '-inf',
      'LIMIT',
      0,
      1,
    )
    const text = (await cluster.client.hget(keyspace.audit.batches, id!))!
    await cluster.client.hset(
      keyspace.audit.batches,
      id!,
      text.replace('"outcome":"delivered"', '"outcome":"failed"'),
    )
    const tampered = await a.verify()
    assert.ok(!tampered.ok && /altered/.test(tampered.reason), JSON.stringify(tampered))
  } finally {
    other.disconnect()
  }
})
