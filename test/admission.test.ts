/**
 * Admission control of `POST /events`: while the broker's event loop lags, normal-priority work for a
 * stream the broker is already behind on is refused with 503 `overloaded` and `Retry-After`, nothing
 * stored; priority events and events for streams that keep up are still taken. The broker runs in this
 * process, so the test makes its loop lag by holding it (a synchronous busy wait).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { parseMetrics } from './helpers/metrics.js'
import { Admission, OVERLOADED_RETRY_AFTER_SECONDS } from '../src/ingest/admission.js'
import { LoopLag } from '../src/lib/loop-lag.js'
import { BEHIND_FOR_MS, BEHIND_SETS, StreamsBehind } from '../src/ingest/streams-behind.js'
import { isBrokerError } from '../src/errors.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const REVOKED = `${CAEP}session-revoked`
const PRESENTED = `${CAEP}session-presented`
const COMPLIANCE = `${CAEP}device-compliance-change`

/** Holds this process's event loop (and so the broker's) for `ms`. */
function holdLoop(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // busy: nothing else runs meanwhile
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const presented = (user: string) => ({
  type: 'caep/session-presented',
  subject: { format: 'opaque', id: user },
  event: { fp_ua: 'test' },
})
const revoked = (user: string) => ({
  type: 'caep/session-revoked',
  subject: { format: 'opaque', id: user },
})
const compliance = (user: string) => ({
  type: 'caep/device-compliance-change',
  subject: { format: 'opaque', id: user },
  event: { previous_status: 'compliant', current_status: 'not-compliant' },
})

describe('POST /events under load, against a real broker', () => {
  let redis: TestRedis
  let broker: TestBroker
  let behind: TestReceiver
  let keepingUp: TestReceiver
  let emitter: { token: string }
  let x: { stream_id: string }

  const pending = async (sid: string) =>
    (
      await broker.api.request<{ pending: number }>('GET', `/admin/streams/${sid}/deliveries`, {
        token: ADMIN_TOKEN,
      })
    ).body.pending
  const metrics = async () => parseMetrics(await (await fetch(`${broker.url}/metrics`)).text())

  before(async () => {
    redis = await startTestRedis()
    broker = await startTestBroker(redis.url, { SSF_BROKER_ADMISSION_LAG_MS: '20' })
    behind = await startReceiver()
    // Stream X's receiver answers 503: its SETs stay queued, so the broker is behind on X.
    behind.respond = (_push, res) => void res.writeHead(503, { 'retry-after': '60' }).end()
    keepingUp = await startReceiver()
    const rx = await broker.api.createClient(['receiver'])
    emitter = await broker.api.createClient(['emitter'])
    x = (await broker.api.createPushStream(rx.token, behind.url, {
      events_requested: [PRESENTED, REVOKED],
    })) as { stream_id: string }
    await broker.api.createPushStream(rx.token, keepingUp.url, {
      events_requested: [COMPLIANCE],
    })
  })

  after(async () => {
    await broker.close()
    await behind.close()
    await keepingUp.close()
    await redis.stop()
  })

  test('a lagging broker refuses more work for a stream it is behind on, and takes the rest', async () => {
    for (let i = 0; i < BEHIND_SETS; i += 1000) {
      const batch = Array.from({ length: 1000 }, (_, j) => presented(`u${i + j}`))
      assert.equal((await broker.api.emit(emitter.token, { events: batch })).status, 202)
    }
    // The last append to X found it holding BEHIND_SETS SETs.
    await until('X to hold the batches', async () =>
      (await pending(x.stream_id)) >= BEHIND_SETS ? true : undefined,
    )
    const before = await metrics()

    holdLoop(300)
    const refused = await broker.api.emit(emitter.token, presented('late'))
    const refusal = refused.body as { error: string; error_description: string }
    assert.equal(refused.status, 503, refused.text)
    assert.equal(refusal.error, 'overloaded')
    assert.equal(refused.headers.get('retry-after'), String(OVERLOADED_RETRY_AFTER_SECONDS))
    assert.match(refusal.error_description, /not acknowledged/)

    // Nothing of it was stored or counted as ingested.
    assert.equal(await pending(x.stream_id), BEHIND_SETS)
    const afterRefusal = await metrics()
    assert.equal(
      (afterRefusal.get(`ssf_broker_events_ingested_total{type="${PRESENTED}"}`) ?? 0) -
        (before.get(`ssf_broker_events_ingested_total{type="${PRESENTED}"}`) ?? 0),
      0,
    )
    assert.equal(
      (afterRefusal.get('ssf_broker_events_shed_total') ?? 0) -
        (before.get('ssf_broker_events_shed_total') ?? 0),
      1,
    )

    // A malformed body is still told what is wrong with it, not to come back later.
    holdLoop(300)
    const malformed = await broker.api.emit(emitter.token, { events: [presented('x')], extra: 1 })
    assert.equal(malformed.status, 400, malformed.text)
    assert.equal((malformed.body as { error: string }).error, 'invalid_request')

    // A request holding a priority event is taken, even for X and in a batch with normal events.
    holdLoop(300)
    const priority = await broker.api.emit(emitter.token, {
      events: [presented('with-revocation'), revoked('victim')],
    })
    assert.equal(priority.status, 202, priority.text)

    // An event for a stream that keeps up is taken: the flood on X does not shut it out.
    holdLoop(300)
    const other = await broker.api.emit(emitter.token, compliance('device-owner'))
    assert.equal(other.status, 202, other.text)
    await keepingUp.waitFor(1)

    // Once the loop keeps up again, X's events are taken again (as an emitter's retry would be).
    const taken = await until('a normal event for X to be taken again', async () => {
      const res = await broker.api.emit(emitter.token, presented('retried'))
      return res.status === 202 ? res : undefined
    })
    assert.equal(taken.status, 202)
  })
})

describe('Admission', () => {
  const priorityTypes = new Set([REVOKED])
  const admission = (lagMs: number, busy: boolean, limitMs = 20) => {
    const shed: number[] = []
    const asked: string[][] = []
    const a = new Admission({
      lag: { ms: lagMs },
      limitMs,
      priorityTypes,
      busy: (types) => (asked.push(types), busy),
      onShed: (n) => shed.push(n),
    })
    return { a, shed, asked }
  }
  const refuses = (a: Admission, events: unknown[]) =>
    assert.throws(
      () => a.check(events),
      (err: unknown) =>
        isBrokerError(err, 'overloaded') &&
        err.status === 503 &&
        err.retryAfterSeconds === OVERLOADED_RETRY_AFTER_SECONDS,
    )

  test('refuses normal work the broker is behind on only while the loop lags beyond the limit', () => {
    const lagging = admission(50, true)
    refuses(lagging.a, [presented('a')])
    refuses(lagging.a, [presented('a'), presented('b')])
    assert.deepEqual(lagging.shed, [1, 2])
    assert.deepEqual(lagging.asked, [[PRESENTED], [PRESENTED, PRESENTED]])

    const keepingUp = admission(15, true)
    keepingUp.a.check([presented('a')])
    assert.deepEqual(keepingUp.asked, [], 'no routing work below the limit')

    const notBehind = admission(50, false)
    notBehind.a.check([presented('a')])
    assert.deepEqual(notBehind.shed, [])

    const off = admission(10_000, true, 0)
    off.a.check([presented('a')])
    assert.deepEqual(off.shed, [])
  })

  test('takes any request holding a priority event, by alias or URI', () => {
    const { a, shed } = admission(50, true)
    a.check([revoked('a')])
    a.check([presented('a'), { ...revoked('b'), type: REVOKED }])
    assert.deepEqual(shed, [])
  })

  test('an event validation will refuse is refused as overloaded first, never taken', () => {
    const { a, asked } = admission(50, true)
    refuses(a, ['not an object'])
    refuses(a, [{ type: 'no/such-type', subject: {} }])
    assert.deepEqual(asked, [[], []])
  })
})

describe('LoopLag', () => {
  test('shows a held loop at once, then settles once it runs freely', async () => {
    const lag = new LoopLag(100)
    lag.start()
    try {
      await new Promise((r) => setTimeout(r, 30))
      holdLoop(200)
      // Read while the held tick is still pending: a long task shows before its timer fires.
      assert.ok(lag.ms > 100, `lag ${lag.ms} ms after holding the loop for 200 ms`)
      await new Promise((r) => setImmediate(r))
      assert.ok(lag.ms > 100, `lag ${lag.ms} ms once the held tick fired`)
      await until('the lag to settle', async () => (lag.ms < 5 ? true : undefined))
    } finally {
      lag.stop()
    }
    assert.equal(lag.ms, 0, 'a stopped monitor reads 0')
  })
})

describe('StreamsBehind', () => {
  test('marks a stream at the bound, clears it below, and forgets a mark that was not renewed', () => {
    const b = new StreamsBehind()
    b.note('x', BEHIND_SETS - 1, 0)
    assert.equal(b.has('x', 1), false)
    b.note('x', BEHIND_SETS, 1000)
    assert.equal(b.has('x', 1000 + BEHIND_FOR_MS - 1), true)
    assert.equal(b.has('x', 1000 + BEHIND_FOR_MS), false)
    b.note('x', BEHIND_SETS + 5, 5000)
    b.note('x', 3, 5001)
    assert.equal(b.has('x', 5002), false)
    b.note('y', BEHIND_SETS, 0)
    b.forget('y')
    assert.equal(b.has('y', 1), false)
  })
})
