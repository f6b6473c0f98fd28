/**
 * The audit trail against a real Redis: append and query by each key, paging, JSON Lines, the hash chain
 * (verification, tampering found at the right place, several writers), retention, and secrets never stored.
 */
import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import {
  AuditLog,
  GENESIS,
  canonicalJson,
  recordHash,
  type AuditEntryInput,
  type AuditRecord,
} from '../src/audit/log.js'
import { isSecretName, sanitize } from '../src/audit/sanitize.js'
import { runVerify } from '../src/audit/verify-cli.js'
import {
  deleteBatchOf,
  overwriteRecord,
  removeRecord,
  storedRecord,
} from './helpers/audit-tamper.js'
import { agentRegisteredEntry, agentRetiredEntry } from '../src/audit/entries.js'
import type { AgentRecord } from '../src/agents/registry.js'
import type { SimpleSubject, Subject } from '../src/subjects/subject.js'

let redis: TestRedis
let log: AuditLog

const alice: SimpleSubject = { format: 'email', email: 'alice@example.com' }
const agentA: SimpleSubject = { format: 'uri', uri: 'spiffe://example.org/agent/a' }

/** The story of one revocation: ingested, derived for an agent, minted for two streams, delivered, acked. */
function story(txn: string, at: number): AuditEntryInput[] {
  return [
    {
      kind: 'event.ingested',
      at,
      txn,
      type: 'caep/session-revoked',
      subject: alice,
      client_id: 'idp',
      remote_addr: '203.0.113.7',
    },
    {
      kind: 'event.derived',
      at: at + 1,
      txn,
      type: 'caep/session-revoked',
      source_type: 'caep/session-revoked',
      agent_id: 'agent-a',
      subject: { format: 'complex', user: alice, agent: agentA },
      principal: alice,
      path: [alice, agentA],
    },
    {
      kind: 'set.minted',
      at: at + 2,
      txn,
      jti: `${txn}-j1`,
      stream_id: 'stream-1',
      aud: 'rs-1',
      type: 'caep/session-revoked',
      subject: alice,
    },
    {
      kind: 'set.minted',
      at: at + 3,
      txn,
      jti: `${txn}-j2`,
      stream_id: 'stream-2',
      aud: 'agent-runtime',
      type: 'caep/session-revoked',
      agent_id: 'agent-a',
    },
    {
      kind: 'delivery.attempt',
      at: at + 4,
      txn,
      jti: `${txn}-j1`,
      stream_id: 'stream-1',
      status: 202,
      latency_ms: 12,
      outcome: 'delivered',
      attempt: 1,
    },
    { kind: 'poll.ack', at: at + 5, txn, jti: `${txn}-j2`, stream_id: 'stream-2' },
  ]
}

async function all(): Promise<string> {
  const keys = await redis.client.keys('*')
  const parts: string[] = []
  for (const key of keys) {
    const type = await redis.client.type(key)
    if (type === 'hash') parts.push(JSON.stringify(await redis.client.hgetall(key)))
    else if (type === 'zset') parts.push(JSON.stringify(await redis.client.zrange(key, 0, -1)))
    else if (type === 'string') parts.push((await redis.client.get(key)) ?? '')
    parts.push(key)
  }
  return parts.join('\n')
}

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})
beforeEach(async () => {
  await redis.client.flushall()
  log = new AuditLog(redis.client, { retentionSeconds: 3600 })
})

describe('append and query', () => {
  test('one txn query answers the whole story, newest first, each record chained to the one before', async () => {
    await log.recordMany(story('txn-1', 1000))
    await log.recordMany(story('txn-2', 2000))
    const { records, next_cursor } = await log.query({ txn: 'txn-1', limit: 100 })
    assert.equal(next_cursor, undefined)
    assert.deepEqual(
      records.map((r) => r.kind),
      [
        'poll.ack',
        'delivery.attempt',
        'set.minted',
        'set.minted',
        'event.derived',
        'event.ingested',
      ],
    )
    assert.deepEqual(
      records.map((r) => r.seq),
      [6, 5, 4, 3, 2, 1],
    )
    const ingested = records.at(-1)!
    assert.equal(ingested.client_id, 'idp')
    assert.equal(ingested.remote_addr, '203.0.113.7')
    assert.equal(ingested.at, 1000)
    assert.equal(ingested.prev, GENESIS)
    assert.equal(records[4]!.prev, ingested.hash)
    assert.equal(ingested.hash, recordHash(ingested))
    const derived = records[4]!
    assert.deepEqual(derived.path, [alice, agentA])
    assert.equal(derived.agent_id, 'agent-a')
  })

  test('query by subject, agent, stream and kind; keys combine', async () => {
    await log.recordMany(story('txn-1', 1000))
    await log.recordMany(story('txn-2', 2000))
    await log.record({
      kind: 'stream.status_changed',
      stream_id: 'stream-1',
      status: 'paused',
      previous_status: 'enabled',
      changed_by: 'rs-1',
    })
    await log.record({
      kind: 'agent.registered',
      agent_id: 'agent-a',
      subject: agentA,
      delegator: alice,
      registered_by: 'platform',
      expires_at: 1,
      created: true,
    })
    const bySubject = await log.query({
      subject: { format: 'email', email: 'ALICE@example.com' },
      limit: 100,
    })
    assert.deepEqual(
      bySubject.records.map((r) => r.kind),
      [
        'agent.registered',
        'set.minted',
        'event.derived',
        'event.ingested',
        'set.minted',
        'event.derived',
        'event.ingested',
      ],
    )
    const byAgentSubject = await log.query({ subject: agentA, limit: 100 })
    assert.deepEqual(
      byAgentSubject.records.map((r) => r.kind),
      ['agent.registered', 'event.derived', 'event.derived'],
    )
    const byAgent = await log.query({ agent_id: 'agent-a', limit: 100 })
    assert.deepEqual(
      byAgent.records.map((r) => r.kind),
      ['agent.registered', 'set.minted', 'event.derived', 'set.minted', 'event.derived'],
    )
    const byStream = await log.query({ stream_id: 'stream-1', limit: 100 })
    assert.deepEqual(
      byStream.records.map((r) => r.kind),
      ['stream.status_changed', 'delivery.attempt', 'set.minted', 'delivery.attempt', 'set.minted'],
    )
    const both = await log.query({ stream_id: 'stream-1', txn: 'txn-2', limit: 100 })
    assert.deepEqual(
      both.records.map((r) => `${r.txn}/${r.kind}`),
      ['txn-2/delivery.attempt', 'txn-2/set.minted'],
    )
    const kinds = await log.query({
      txn: 'txn-1',
      kind: ['delivery.attempt', 'poll.ack'],
      limit: 100,
    })
    assert.deepEqual(
      kinds.records.map((r) => r.kind),
      ['poll.ack', 'delivery.attempt'],
    )
    assert.deepEqual((await log.query({ txn: 'nope', limit: 10 })).records, [])
    const everything = await log.query({ limit: 1000 })
    assert.equal(everything.records.length, 14)
  })

  test('paging: limit per page, next_cursor until the last page, no record twice', async () => {
    for (let i = 0; i < 5; i++) await log.recordMany(story(`txn-${i}`, i * 100))
    const seen: number[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await log.query({ limit: 7, ...(cursor ? { cursor } : {}) })
      pages++
      assert.ok(page.records.length <= 7)
      seen.push(...page.records.map((r) => r.seq))
      cursor = page.next_cursor
    } while (cursor)
    assert.equal(pages, 5)
    assert.deepEqual(
      seen,
      Array.from({ length: 30 }, (_, i) => 30 - i),
    )
    // A filtered query pages the same way.
    const first = await log.query({ stream_id: 'stream-2', limit: 4 })
    assert.equal(first.records.length, 4)
    const second = await log.query({ stream_id: 'stream-2', limit: 4, cursor: first.next_cursor! })
    assert.equal(second.records.length, 4)
    const third = await log.query({ stream_id: 'stream-2', limit: 4, cursor: second.next_cursor! })
    assert.equal(third.records.length, 2)
    assert.equal(third.next_cursor, undefined)
    assert.equal(
      new Set([...first.records, ...second.records, ...third.records].map((r) => r.seq)).size,
      10,
    )
  })

  test('JSON Lines export: one record per line, newest first, everything matching across pages', async () => {
    for (let i = 0; i < 200; i++) await log.recordMany(story(`txn-${i}`, i * 100))
    let text = ''
    for await (const line of log.exportJsonl({ stream_id: 'stream-1' })) text += line
    const lines = text.split('\n')
    assert.equal(lines.pop(), '')
    assert.equal(lines.length, 400)
    const records = lines.map((l) => JSON.parse(l) as AuditRecord)
    assert.ok(records.every((r) => r.stream_id === 'stream-1'))
    assert.ok(records.every((r, i) => i === 0 || r.seq < records[i - 1]!.seq))
    let capped = 0
    for await (const _ of log.exportJsonl({ limit: 5 })) capped++
    assert.equal(capped, 5)
  })

  test('fire-and-forget and batching: submit() from one tick lands in one append, in order', async () => {
    const appends: number[] = []
    const client = redis.client as unknown as {
      ssfAuditAppend: (...args: unknown[]) => Promise<number>
    }
    const original = client.ssfAuditAppend.bind(redis.client)
    client.ssfAuditAppend = async (...args: unknown[]) => {
      appends.push(args.length)
      return original(...args)
    }
    try {
      for (let i = 0; i < 50; i++) log.submit({ kind: 'poll.ack', jti: `j${i}`, stream_id: 's' })
      await log.flush()
    } finally {
      client.ssfAuditAppend = original
    }
    assert.equal(appends.length, 1)
    const { records } = await log.query({ limit: 100 })
    assert.deepEqual(
      records.map((r) => r.jti),
      Array.from({ length: 50 }, (_, i) => `j${49 - i}`),
    )
  })
})

describe('hash chain', () => {
  test('verify() checks every record; the canonical form sorts keys', async () => {
    assert.deepEqual(await log.verify(), {
      ok: true,
      checked: 0,
      head: { seq: 0, hash: GENESIS },
      anchor: { seq: 0, hash: GENESIS },
    })
    await log.recordMany(story('txn-1', 1000))
    const result = await log.verify()
    assert.equal(result.ok, true)
    assert.equal(result.checked, 6)
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { f: 1, e: 2 }], c: 'x' } }),
      '{"a":{"c":"x","d":[1,{"e":2,"f":1}]},"b":1}',
    )
  })

  test('several writers (separate connections, interleaved) keep one unbroken chain', async () => {
    const other = new Redis({ path: redis.url.slice('unix://'.length) })
    const third = redis.client.duplicate()
    try {
      const logs = [
        log,
        new AuditLog(other, { retentionSeconds: 3600 }),
        new AuditLog(third, { retentionSeconds: 3600 }),
      ]
      // Each writer appends one record at a time, so the three keep racing for the chain head.
      await Promise.all(
        logs.map(async (l, w) => {
          for (let i = 0; i < 30; i++)
            await l.record({ kind: 'poll.ack', jti: `w${w}-${i}`, stream_id: 's' })
        }),
      )
      const result = await log.verify()
      assert.deepEqual(result.ok && result.checked, 90)
      const { records } = await log.query({ limit: 1000 })
      assert.equal(new Set(records.map((r) => r.jti)).size, 90)
    } finally {
      other.disconnect()
      third.disconnect()
    }
  })

  test('large batches (chained in slices, across several appends) from racing writers keep one chain', async (t) => {
    const connection = redis.client.duplicate()
    t.after(() => connection.disconnect())
    const other = new AuditLog(connection, { retentionSeconds: 3600 })
    const batch = (w: number) =>
      Array.from({ length: 1200 }, (_, i) => ({
        kind: 'poll.ack' as const,
        jti: `w${w}-${i}`,
        stream_id: 's',
      }))
    await Promise.all([log.recordMany(batch(0)), other.recordMany(batch(1))])
    const result = await log.verify()
    assert.deepEqual(result.ok && result.checked, 2400)
    // Each writer's records are in its order, seq after seq.
    const { records } = await log.query({ limit: 1000, stream_id: 's' })
    for (const w of [0, 1]) {
      const mine = records.filter((r) => (r.jti as string).startsWith(`w${w}-`)).reverse()
      const numbers = mine.map((r) => Number((r.jti as string).slice(3)))
      assert.deepEqual(
        numbers,
        [...numbers].sort((a, b) => a - b),
      )
    }
  })

  test('altering a stored record is reported at that record', async () => {
    await log.recordMany(story('txn-1', 1000))
    const stored = await storedRecord(redis.client, 3)
    await overwriteRecord(redis.client, 3, { ...stored, stream_id: 'stream-evil' })
    const result = await log.verify()
    assert.equal(result.ok, false)
    assert.ok(
      !result.ok &&
        result.brokenAt === '3' &&
        /altered: its content no longer matches its hash/.test(result.reason) &&
        result.checked === 2,
      JSON.stringify(result),
    )
  })

  test('an altered record with a recomputed hash is reported at the next link', async () => {
    await log.recordMany(story('txn-1', 1000))
    const stored = await storedRecord(redis.client, 2)
    const forged: Record<string, unknown> = { ...stored, agent_id: 'someone-else' }
    forged.hash = recordHash(forged)
    await overwriteRecord(redis.client, 2, forged)
    const result = await log.verify()
    assert.ok(
      !result.ok &&
        result.brokenAt === '3' &&
        /prev does not match the hash of record 2/.test(result.reason),
      JSON.stringify(result),
    )
  })

  test('a removed record, and a removed last record, are reported', async () => {
    await log.recordMany(story('txn-1', 1000))
    await removeRecord(redis.client, 4)
    const gap = await log.verify()
    assert.ok(
      !gap.ok && gap.brokenAt === '4' && /record 4 is missing/.test(gap.reason),
      JSON.stringify(gap),
    )

    await redis.client.flushall()
    await log.recordMany(story('txn-1', 1000))
    await removeRecord(redis.client, 6)
    const tail = await log.verify()
    assert.ok(
      !tail.ok && /head names record 6 but the chain ends at 5/.test(tail.reason),
      JSON.stringify(tail),
    )

    await redis.client.flushall()
    // Records of a later batch deleted while the batch is still listed in chain order.
    await log.recordMany(story('txn-1', 1000))
    await log.recordMany(story('txn-2', 2000))
    await log.recordMany(story('txn-3', 3000))
    assert.equal(await deleteBatchOf(redis.client, 8), '7')
    const content = await log.verify()
    assert.ok(
      !content.ok &&
        content.brokenAt === '7' &&
        /deleted/.test(content.reason) &&
        content.checked === 6,
      JSON.stringify(content),
    )
  })

  test('the verification command prints ok: N records, or the first broken link with exit code 1', async () => {
    await log.recordMany(story('txn-1', 1000))
    const lines: string[] = []
    assert.equal(await runVerify({ SSF_BROKER_REDIS_URL: redis.url }, (l) => lines.push(l)), 0)
    assert.match(lines[0]!, /^ok: 6 records; head 6:[0-9a-f]{64}$/)
    // The real entry point, as an operator runs it.
    const cli = fileURLToPath(new URL('../src/audit/verify-cli.ts', import.meta.url))
    const run = () =>
      spawnSync(process.execPath, ['--import', 'tsx', cli], {
        env: { PATH: process.env.PATH ?? '', SSF_BROKER_REDIS_URL: redis.url },
        encoding: 'utf8',
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      })
    const good = run()
    assert.equal(good.status, 0, good.stderr)
    assert.match(good.stdout, /^ok: 6 records/)
    const stored = await storedRecord(redis.client, 5)
    await overwriteRecord(redis.client, 5, { ...stored, status: 500 })
    const bad = run()
    assert.equal(bad.status, 1, bad.stderr)
    assert.match(bad.stdout, /^broken at record 5: record 5 was altered/)
    const unreachable = spawnSync(process.execPath, ['--import', 'tsx', cli], {
      env: { PATH: process.env.PATH ?? '', SSF_BROKER_REDIS_URL: 'unix:///nonexistent/redis.sock' },
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    })
    assert.equal(unreachable.status, 2)
  })
})

describe('agent entries', () => {
  test("registration and retirement are found by agent, by the agent's subject, by the delegator, and the retirement by its txn", async () => {
    const record: AgentRecord = {
      agent_id: 'agent-a',
      agent: agentA,
      delegator: alice,
      task: 'triage',
      scopes: ['tickets.read'],
      token_jti: 'tok-1',
      registered_by: 'platform',
      created_at: 1,
      expires_at: 2,
      status: 'retired',
      retired_at: 2,
      retired_reason: 'expired',
    }
    await log.record(agentRegisteredEntry(record, true))
    await log.record(agentRetiredEntry(record, 'expired', 'agent-retired:agent-a:2'))
    assert.deepEqual(
      (await log.query({ agent_id: 'agent-a', limit: 10 })).records.map((r) => r.kind),
      ['agent.retired', 'agent.registered'],
    )
    assert.deepEqual(
      (await log.query({ subject: agentA, limit: 10 })).records.map((r) => r.kind),
      ['agent.retired', 'agent.registered'],
    )
    assert.deepEqual(
      (await log.query({ subject: alice, limit: 10 })).records.map((r) => r.kind),
      ['agent.registered'],
    )
    assert.deepEqual(
      (await log.query({ txn: 'agent-retired:agent-a:2', limit: 10 })).records.map((r) => r.reason),
      ['expired'],
    )
    const registered = (await log.query({ kind: 'agent.registered', limit: 1 })).records[0]!
    assert.deepEqual(
      [registered.task, registered.created, registered.delegator],
      ['triage', true, alice],
    )
  })
})

describe('retention', () => {
  test('prune() removes records older than the retention, oldest first; the rest still verifies and queries skip the removed', async () => {
    const short = new AuditLog(redis.client, { retentionSeconds: 60 })
    const now = 10_000_000
    await short.recordMany(story('old', now - 120_000))
    await short.recordMany(story('new', now - 30_000))
    assert.equal(await short.prune(now), 6)
    assert.equal(await short.prune(now), 0)
    const result = await short.verify()
    assert.ok(result.ok && result.checked === 6 && result.anchor.seq === 6, JSON.stringify(result))
    assert.deepEqual((await short.query({ txn: 'old', limit: 10 })).records, [])
    // Only the new story's records about alice are left: ingested, derived (principal), minted (subject).
    assert.deepEqual(
      (await short.query({ subject: alice, limit: 10 })).records.map((r) => `${r.txn}/${r.kind}`),
      ['new/set.minted', 'new/event.derived', 'new/event.ingested'],
    )
    // Appending after a prune continues the chain.
    await short.record({ kind: 'poll.ack', jti: 'later', stream_id: 's' })
    const again = await short.verify()
    assert.ok(again.ok && again.checked === 7)
    // Index keys expire on their own once no longer written.
    const ixKeys = await redis.client.keys('ssf:{audit}:ix:*')
    assert.ok(ixKeys.length > 0)
    for (const key of ixKeys) assert.ok((await redis.client.ttl(key)) > 0, key)
  })
})

describe('secrets never stored', () => {
  const SECRET = 'ssf_AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
  const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl'

  test('members named like credentials are dropped, credential-looking values redacted, identifiers kept', async () => {
    await log.record({
      kind: 'delivery.attempt',
      jti: 'j1',
      stream_id: 's1',
      outcome: 'failed',
      status: 401,
      error: `receiver said: invalid token Bearer ${SECRET} (presented ${JWT})`,
      details: {
        authorization: `Bearer ${SECRET}`,
        headers: {
          Authorization: 'Bearer zzzzzzzzzzzzzzzzzzzzzzzz',
          'content-type': 'application/json',
        },
        access_token: JWT,
        refreshToken: 'refresh-secret-value',
        client_secret: 'very-secret-value',
        password: 'hunter2-hunter2',
        private_key: '-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----',
        pem: 'x',
        signing: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'private-scalar-d-value' },
        delivery: {
          method: 'urn:ietf:rfc:8935',
          endpoint_url: 'https://rs.example.com/events',
          authorization_header: 'Basic c2VjcmV0OnNlY3JldHNlY3JldA==',
        },
        note: `admin token ssf_admin_${'C'.repeat(40)} leaked`,
        token_jti: 'tok-123',
        kid: 'key-1',
        key_id: 'key-2',
        credential_type: 'password',
        basic_plan: 'Basic plan users',
      },
    })
    const dump = await all()
    for (const secret of [
      SECRET,
      JWT,
      'zzzzzzzzzzzzzzzzzzzzzzzz',
      'refresh-secret-value',
      'very-secret-value',
      'hunter2',
      'MIIEv',
      'private-scalar-d-value',
      'c2VjcmV0OnNlY3JldHNlY3JldA',
      'C'.repeat(40),
    ]) {
      assert.ok(!dump.includes(secret), `stored: ${secret}`)
    }
    const [record] = (await log.query({ limit: 1 })).records
    const details = record!.details as Record<string, unknown>
    assert.equal(details.token_jti, 'tok-123')
    assert.equal(details.kid, 'key-1')
    assert.equal(details.key_id, 'key-2')
    assert.equal(details.credential_type, 'password')
    assert.equal(details.basic_plan, 'Basic plan users')
    assert.deepEqual(details.headers, { 'content-type': 'application/json' })
    assert.deepEqual(details.delivery, {
      method: 'urn:ietf:rfc:8935',
      endpoint_url: 'https://rs.example.com/events',
    })
    assert.equal(details.note, 'admin token [redacted] leaked')
    assert.equal(record!.error, 'receiver said: invalid token [redacted] (presented [redacted])')
    assert.deepEqual(
      [...record!.redacted!].sort(),
      [
        'details.access_token',
        'details.authorization',
        'details.client_secret',
        'details.delivery.authorization_header',
        'details.headers.Authorization',
        'details.note',
        'details.password',
        'details.pem',
        'details.private_key',
        'details.refreshToken',
        'details.signing',
        'error',
      ].sort(),
    )
    assert.equal((await log.verify()).ok, true)
  })

  test('the name rule', () => {
    for (const name of [
      'token',
      'access_token',
      'id_token',
      'Authorization',
      'x-api-key',
      'apiKey',
      'client_secret',
      'secretValue',
      'password',
      'set-cookie',
      'privateKey',
      'jwks',
      'authorization_header',
    ])
      assert.ok(isSecretName(name), name)
    for (const name of [
      'token_jti',
      'token_type',
      'kid',
      'key_id',
      'credential_type',
      'subject',
      'sub_id',
      'jti',
      'stream_id',
      'txn',
      'reason_admin',
      'endpoint_url',
      'keyword',
    ])
      assert.ok(!isSecretName(name), name)
    assert.deepEqual(sanitize({ a: [{ token: 'x' }, 'ok'] }), {
      value: { a: [{}, 'ok'] },
      redacted: ['a[0].token'],
    })
  })
})
