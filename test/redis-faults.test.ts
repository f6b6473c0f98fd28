/**
 * Redis killed (SIGKILL) and frozen (SIGSTOP) in the middle of an ingest burst, against a real broker and
 * receiver: every request that needs Redis answers 503 `temporarily_unavailable` with `Retry-After` within
 * 5.5 s, never 500 and never hangs; the public JWKS and metadata stay served from memory; every event that
 * was acknowledged (202) reaches the receiver once Redis is back; ingest resumes by itself.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startFaultRedis, type FaultRedis } from './helpers/fault-redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'

const BUDGET_MS = 5500

let redis: FaultRedis
let broker: TestBroker
let receiver: TestReceiver

before(async () => {
  redis = await startFaultRedis()
  broker = await startTestBroker(redis.url)
  receiver = await startReceiver()
})

after(async () => {
  redis.resume()
  await broker.close()
  await receiver.close()
  await redis.stop()
})

interface Outcome {
  txn: string
  status: number
  ms: number
  error?: string
  description?: string
  retryAfter: string | null
  at: number
}

async function timed(
  url: string,
  init: RequestInit,
): Promise<{ status: number; ms: number; body: any; headers: Headers | undefined }> {
  const started = Date.now()
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) })
    const text = await res.text()
    let body: any
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: res.status, ms: Date.now() - started, body, headers: res.headers }
  } catch {
    return { status: 0, ms: Date.now() - started, body: undefined, headers: undefined } // hung or reset
  }
}

/** Emits events from `workers` concurrent loops until `stop()` returns true. */
function burst(
  token: string,
  label: string,
  stop: () => boolean,
  workers = 8,
): { outcomes: Outcome[]; done: Promise<void> } {
  const outcomes: Outcome[] = []
  let n = 0
  const loop = async () => {
    while (!stop()) {
      const txn = `${label}-${n++}`
      const at = Date.now()
      const res = await timed(`${broker.url}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'caep/session-revoked',
          subject: { format: 'opaque', id: `user-${n % 50}` },
          txn,
        }),
      })
      outcomes.push({
        txn,
        status: res.status,
        ms: res.ms,
        error: res.body?.error,
        description: res.body?.error_description,
        retryAfter: res.headers?.get('retry-after') ?? null,
        at,
      })
      if (res.status !== 202) await new Promise((r) => setTimeout(r, 20)) // back off a little, as an emitter would
    }
  }
  return { outcomes, done: Promise.all(Array.from({ length: workers }, loop)).then(() => {}) }
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

function checkOutcomes(outcomes: Outcome[]): string {
  const bad = outcomes.filter((o) => o.status !== 202 && o.status !== 503)
  assert.deepEqual(bad.slice(0, 5), [], `only 202 and 503 answers (${bad.length} others)`)
  const unavailable = outcomes.filter((o) => o.status === 503)
  assert.ok(unavailable.length > 0, 'some requests met the outage')
  for (const o of unavailable) {
    assert.ok(o.ms <= BUDGET_MS, `503 after ${o.ms} ms (budget ${BUDGET_MS})`)
    assert.equal(o.error, 'temporarily_unavailable')
    assert.match(o.description ?? '', /not acknowledged/)
    assert.ok(o.retryAfter && /^\d+$/.test(o.retryAfter), 'Retry-After')
  }
  for (const o of outcomes.filter((x) => x.status === 202))
    assert.ok(o.ms <= BUDGET_MS, `202 after ${o.ms} ms`)
  const slowest = Math.max(...unavailable.map((o) => o.ms))
  return `${outcomes.length} requests: ${outcomes.length - unavailable.length} × 202, ${unavailable.length} × 503 (slowest 503 after ${slowest} ms)`
}

/** Acknowledged events not delivered within 60 s, and how many SETs the stream's outbox still holds. */
async function undelivered(
  outcomes: Outcome[],
  streamId: string,
): Promise<{ missing: string[]; acknowledged: number; pending: number }> {
  const acknowledged = new Set(outcomes.filter((o) => o.status === 202).map((o) => o.txn))
  const seen = () => new Set(receiver.received.map((p) => decodeJwt(p.body).txn as string))
  await until(
    () => [...acknowledged].every((t) => seen().has(t)),
    60_000,
    'acknowledged events at the receiver',
  ).catch(() => {})
  const missing = [...acknowledged].filter((t) => !seen().has(t))
  const deliveries = await broker.api.request(
    'GET',
    `/admin/streams/${streamId}/deliveries?limit=1`,
    { token: ADMIN_TOKEN },
  )
  return {
    missing,
    acknowledged: acknowledged.size,
    pending: Number(deliveries.body?.pending ?? 0),
  }
}

async function probeDuringOutage(rxToken: string): Promise<void> {
  const [jwks, meta, list] = await Promise.all([
    timed(`${broker.url}/jwks.json`, {}),
    timed(`${broker.url}/.well-known/ssf-configuration`, {}),
    timed(`${broker.url}/ssf/streams`, { headers: { authorization: `Bearer ${rxToken}` } }),
  ])
  assert.equal(jwks.status, 200, 'JWKS served during the outage')
  assert.ok(jwks.ms < 1000, `JWKS answered in ${jwks.ms} ms`)
  assert.ok(Array.isArray(jwks.body?.keys) && jwks.body.keys.length >= 3, 'JWKS has the keys')
  assert.equal(meta.status, 200, 'metadata served during the outage')
  assert.equal(list.status, 503, 'stream list needs Redis')
  assert.ok(list.ms <= BUDGET_MS, `stream list 503 after ${list.ms} ms`)
  assert.equal(list.body?.error, 'temporarily_unavailable')
  assert.ok(list.headers?.get('retry-after'))
}

test(
  'Redis SIGKILLed mid-burst: 503 within 5.5 s, no 500, JWKS still served, nothing acknowledged lost, resumes',
  { timeout: 120_000 },
  async (t) => {
    const rx = await broker.api.createClient(['receiver'])
    const emitter = await broker.api.createClient(['emitter'])
    const stream = await broker.api.createPushStream(rx.token, receiver.url)
    const jwksBefore = await timed(`${broker.url}/jwks.json`, {})
    let stopping = false
    const { outcomes, done } = burst(emitter.token, 'kill', () => stopping)
    try {
      await until(
        () => outcomes.filter((o) => o.status === 202).length >= 100,
        20_000,
        '100 accepted events before the kill',
      )
      await redis.kill()
      const killedAt = Date.now()
      await probeDuringOutage(rx.token)
      const jwksDuring = await timed(`${broker.url}/jwks.json`, {})
      assert.deepEqual(jwksDuring.body, jwksBefore.body, 'the same JWKS as before the outage')
      // Keep Redis away for a while, so requests arriving during the outage are answered too.
      await new Promise((r) => setTimeout(r, Math.max(0, 3000 - (Date.now() - killedAt))))
      await redis.restart()
      const restartedAt = Date.now()
      await until(
        () => outcomes.filter((o) => o.status === 202 && o.at > restartedAt).length >= 100,
        30_000,
        '100 accepted events after the restart',
      )
    } finally {
      stopping = true
      await done
    }
    t.diagnostic(checkOutcomes(outcomes))
    const { missing, acknowledged } = await undelivered(outcomes, stream.stream_id)
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${missing.length} of ${acknowledged} acknowledged events never delivered`,
    )
  },
)

let afterFreeze: { missing: string[]; acknowledged: number; pending: number } | undefined

test(
  'Redis SIGSTOPped mid-burst: 503 within 5.5 s, no 500, nothing acknowledged lost, resumes on SIGCONT',
  { timeout: 120_000 },
  async (t) => {
    const rx = await broker.api.createClient(['receiver'])
    const emitter = await broker.api.createClient(['emitter'])
    const stream = await broker.api.createPushStream(rx.token, receiver.url)
    let stopping = false
    const { outcomes, done } = burst(emitter.token, 'stop', () => stopping)
    try {
      await until(
        () => outcomes.filter((o) => o.status === 202).length >= 100,
        20_000,
        '100 accepted events before the freeze',
      )
      redis.pause()
      const pausedAt = Date.now()
      await probeDuringOutage(rx.token)
      // Frozen longer than the deadline: requests waiting on it must be answered at the deadline.
      await until(
        () => outcomes.filter((o) => o.status === 503).length >= 8,
        15_000,
        'requests answered 503 while frozen',
      )
      await new Promise((r) => setTimeout(r, Math.max(0, 7000 - (Date.now() - pausedAt))))
      redis.resume()
      const resumedAt = Date.now()
      await until(
        () => outcomes.filter((o) => o.status === 202 && o.at > resumedAt).length >= 100,
        30_000,
        '100 accepted events after SIGCONT',
      )
    } finally {
      redis.resume()
      stopping = true
      await done
    }
    t.diagnostic(checkOutcomes(outcomes))
    // Nothing acknowledged is lost: each event was delivered or is still held in the stream's outbox.
    afterFreeze = await undelivered(outcomes, stream.stream_id)
    assert.ok(
      afterFreeze.missing.length <= afterFreeze.pending,
      `${afterFreeze.missing.length} acknowledged events neither delivered nor queued (${afterFreeze.pending} queued)`,
    )
  },
)

test('after a SIGSTOP, delivery of every acknowledged event resumes within 60 s', () => {
  assert.ok(afterFreeze, 'the SIGSTOP test ran')
  assert.deepEqual(
    afterFreeze.missing.slice(0, 10),
    [],
    `${afterFreeze.missing.length} of ${afterFreeze.acknowledged} acknowledged events still queued, not delivered`,
  )
})
