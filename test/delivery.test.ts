/**
 * Push delivery against real loopback receivers: outages, 503s, permanent refusals, hangs, paused and
 * disabled streams, dead letters and their redrive.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'

let redis: TestRedis
let broker: TestBroker
let emitter: { token: string }

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, {
    SSF_BROKER_PUSH_TIMEOUT_MS: '300',
    SSF_BROKER_DELIVERY_MAX_AGE_SECONDS: '5',
  })
  emitter = await broker.api.createClient(['emitter'])
})

after(async () => {
  await broker.close()
  await redis.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function setup(receiver: TestReceiver) {
  const rx = await broker.api.createClient(['receiver'])
  const stream = await broker.api.createPushStream(rx.token, receiver.url)
  return { rx, stream }
}

/** Emits `n` session-revoked events about distinct subjects (or one subject) and returns their txns. */
async function emit(
  n: number,
  subjectOf: (i: number) => unknown = (i) => ({ format: 'opaque', id: `user-${i}` }),
): Promise<string[]> {
  const txns: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: subjectOf(i),
      txn: `txn-${Date.now()}-${i}-${Math.random()}`,
    })
    assert.equal(res.status, 202, res.text)
    txns.push(res.body.txn)
  }
  return txns
}

const txnsOf = (r: TestReceiver) => r.received.map((p) => decodeJwt(p.body).txn as string)

test('a receiver answering 503 gets every SET once it recovers', async () => {
  const receiver = await startReceiver()
  try {
    let failures = 0
    receiver.respond = (_p, res) => {
      if (failures++ < 4) res.writeHead(503, { 'retry-after': '0' }).end()
      else res.writeHead(202).end()
    }
    const { stream } = await setup(receiver)
    const txns = await emit(5)
    await receiver.waitFor(5).catch(async (err: Error) => {
      const letters = await broker.api.request(
        'GET',
        `/admin/dead-letters?stream_id=${stream.stream_id}`,
        { token: ADMIN_TOKEN },
      )
      throw new Error(`${err.message}; dead letters: ${letters.text}`)
    })
    assert.deepEqual(new Set(txnsOf(receiver)), new Set(txns))
    assert.ok(receiver.attempts.length > 5, 'the 503 answers were retried')
  } finally {
    await receiver.close()
  }
})

test('a receiver that is down for a while gets everything once it is back', async () => {
  const receiver = await startReceiver()
  const { stream } = await setup(receiver)
  const url = new URL(receiver.url)
  await receiver.close() // down: connections refused
  const txns = await emit(10)
  await sleep(800)
  // Back up on the same port.
  const { createServer } = await import('node:http')
  const got: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      got.push(decodeJwt(body).txn as string)
      res.writeHead(202).end()
    })
  })
  await new Promise<void>((r) => server.listen(Number(url.port), '127.0.0.1', r))
  try {
    const deadline = Date.now() + 15_000
    while (got.length < 10 && Date.now() < deadline) await sleep(50)
    assert.deepEqual(new Set(got), new Set(txns))
    const deliveries = await broker.api.request(
      'GET',
      `/admin/streams/${stream.stream_id}/deliveries`,
      { token: ADMIN_TOKEN },
    )
    assert.equal(deliveries.status, 200)
    assert.ok(
      deliveries.body.deliveries.some((d: any) => d.outcome === 'retry' && d.error),
      'failed attempts are recorded',
    )
  } finally {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})

test('400 invalid_request is not retried and ends in the dead-letter list; redrive delivers it', async () => {
  const receiver = await startReceiver()
  try {
    receiver.respond = (_p, res) => {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ err: 'invalid_request', description: 'nope' }))
    }
    const { stream } = await setup(receiver)
    const sid = stream.stream_id as string
    const [txn] = await emit(1)
    let letters: any[] = []
    const deadline = Date.now() + 10_000
    while (letters.length === 0 && Date.now() < deadline) {
      await sleep(50)
      letters = (
        await broker.api.request('GET', `/admin/dead-letters?stream_id=${sid}`, {
          token: ADMIN_TOKEN,
        })
      ).body.dead_letters
    }
    assert.equal(letters.length, 1)
    assert.equal(letters[0].err, 'invalid_request')
    assert.equal(letters[0].status, 400)
    assert.equal(letters[0].txn, txn)
    // Not retried: nothing of the stream is held any more, so nothing is left to send again.
    const held = await broker.api.request('GET', `/admin/streams/${sid}/deliveries`, {
      token: ADMIN_TOKEN,
    })
    assert.equal(
      (held.body as { pending: number }).pending,
      0,
      'a permanent refusal is not held for a retry',
    )
    assert.equal(receiver.attempts.length, 1, 'a permanent refusal is not retried')

    receiver.respond = (_p, res) => void res.writeHead(202).end()
    const redrive = await broker.api.request('POST', '/admin/dead-letters/redrive', {
      token: ADMIN_TOKEN,
      json: { stream_id: stream.stream_id },
    })
    assert.equal(redrive.status, 200)
    assert.deepEqual(redrive.body.redriven, [letters[0].id])
    const [push] = await receiver.waitFor(1)
    assert.equal(decodeJwt(push!.body).jti, letters[0].jti, 'the redriven SET keeps its jti')
    const after = await broker.api.request(
      'GET',
      `/admin/dead-letters?stream_id=${stream.stream_id}`,
      { token: ADMIN_TOKEN },
    )
    assert.deepEqual(after.body.dead_letters, [])
  } finally {
    await receiver.close()
  }
})

test('a hanging receiver is cut off by the timeout, retried, and dead-lettered past the maximum age', async () => {
  const receiver = await startReceiver()
  try {
    receiver.respond = () => {} // never answers
    const { stream } = await setup(receiver)
    await emit(1)
    let letters: any[] = []
    const deadline = Date.now() + 15_000
    while (letters.length === 0 && Date.now() < deadline) {
      await sleep(100)
      letters = (
        await broker.api.request('GET', `/admin/dead-letters?stream_id=${stream.stream_id}`, {
          token: ADMIN_TOKEN,
        })
      ).body.dead_letters
    }
    assert.equal(letters.length, 1)
    assert.match(letters[0].reason, /max_age_exceeded.*timeout/)
    assert.ok(
      receiver.attempts.length >= 2,
      `retried after timeouts (${receiver.attempts.length} attempts)`,
    )
  } finally {
    await receiver.close()
  }
})

test('paused: events are held and arrive in order when enabled again; disabled: nothing arrives', async () => {
  const receiver = await startReceiver()
  try {
    const { rx, stream } = await setup(receiver)
    const pause = await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' },
    })
    assert.equal(pause.status, 200)
    assert.deepEqual(pause.body, {
      stream_id: stream.stream_id,
      status: 'paused',
      reason: 'maintenance',
    })
    // Same subject throughout: order matters for it.
    const txns = await emit(20, () => ({ format: 'email', email: 'bob@example.com' }))
    await sleep(500)
    assert.equal(receiver.attempts.length, 0, 'nothing is sent while paused')
    const enable = await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'enabled' },
    })
    assert.equal(enable.status, 200)
    await receiver.waitFor(20)
    assert.deepEqual(txnsOf(receiver), txns, 'held events arrive in the order they were posted')

    const disable = await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'disabled' },
    })
    assert.equal(disable.status, 200)
    await emit(3)
    await sleep(500)
    const reenable = await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'enabled' },
    })
    assert.equal(reenable.status, 200)
    const probe = await emit(1)
    await receiver.waitFor(21)
    await sleep(200)
    assert.equal(receiver.received.length, 21, 'events posted while disabled are dropped')
    assert.equal(txnsOf(receiver)[20], probe[0])
  } finally {
    await receiver.close()
  }
})

test('SETs about different subjects go out in parallel, but one subject stays in order', async () => {
  const receiver = await startReceiver()
  try {
    let inFlight = 0
    let maxInFlight = 0
    receiver.respond = async (_p, res) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await sleep(20)
      inFlight--
      res.writeHead(202).end()
    }
    const { rx, stream } = await setup(receiver)
    await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'paused' },
    })
    const txns = await emit(24, (i) => ({ format: 'opaque', id: `user-${i % 3}` }))
    await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'enabled' },
    })
    await receiver.waitFor(24)
    assert.ok(maxInFlight > 1, 'different subjects are delivered concurrently')
    assert.ok(
      maxInFlight <= 3,
      `never two SETs about one subject at once (saw ${maxInFlight} in flight for 3 subjects)`,
    )
    for (let s = 0; s < 3; s++) {
      const expected = txns.filter((_, i) => i % 3 === s)
      const got = txnsOf(receiver).filter((t) => expected.includes(t))
      assert.deepEqual(got, expected, `subject ${s} in order`)
    }
  } finally {
    await receiver.close()
  }
})
