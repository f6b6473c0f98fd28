/**
 * SSF 1.0 transmitter behaviour beyond push: metadata, stream lifecycle details, poll delivery
 * (RFC 8936), verification, subjects, and the inactivity timeout.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/'
const SESSION_REVOKED = `${CAEP}session-revoked`

let redis: TestRedis
let broker: TestBroker
let rx: { token: string; client_id: string; audience: string }
let emitter: { token: string }

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, {
    SSF_BROKER_POLL_MAX_WAIT_SECONDS: '10',
    SSF_BROKER_POLL_REDELIVERY_SECONDS: '1',
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '30',
  })
  rx = await broker.api.createClient(['receiver'])
  emitter = await broker.api.createClient(['emitter'])
})

after(async () => {
  await broker.close()
  await redis.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const revoke = (subject: unknown, txn?: string) =>
  broker.api.emit(emitter.token, { type: 'caep/session-revoked', subject, ...(txn ? { txn } : {}) })
const pollPath = (stream: { delivery: { endpoint_url: string } }) =>
  new URL(stream.delivery.endpoint_url).pathname
const poll = (stream: any, body: unknown, token = rx.token) =>
  broker.api.request('POST', pollPath(stream), { token, json: body })
const createPoll = async (extra: Record<string, unknown> = {}) => {
  const res = await broker.api.request('POST', '/ssf/streams', { token: rx.token, json: extra })
  assert.equal(res.status, 201, res.text)
  return res.body
}

describe('metadata', () => {
  test('advertises every endpoint, both delivery methods, OAuth and default_subjects', async () => {
    const { body } = await broker.api.request('GET', '/.well-known/ssf-configuration')
    for (const name of [
      'configuration_endpoint',
      'status_endpoint',
      'add_subject_endpoint',
      'remove_subject_endpoint',
      'verification_endpoint',
    ]) {
      assert.ok(body[name].startsWith(`${broker.issuer}/ssf/`), name)
    }
    assert.deepEqual(body.authorization_schemes, [{ spec_urn: 'urn:ietf:rfc:6749' }])
    assert.equal(body.default_subjects, 'ALL')
    for (const [name, value] of Object.entries(body))
      if (Array.isArray(value)) assert.ok(value.length > 0, `${name} is empty`)
  })
})

describe('stream lifecycle', () => {
  test('no delivery means poll, with a transmitter-minted endpoint_url in create and read', async () => {
    const stream = await createPoll()
    assert.equal(stream.delivery.method, 'urn:ietf:rfc:8936')
    assert.equal(stream.delivery.endpoint_url, `${broker.issuer}/ssf/poll/${stream.stream_id}`)
    const read = await broker.api.request('GET', `/ssf/streams?stream_id=${stream.stream_id}`, {
      token: rx.token,
    })
    assert.deepEqual(read.body.delivery, stream.delivery)
    assert.equal(typeof read.body.min_verification_interval, 'number')
    assert.equal(typeof read.body.inactivity_timeout, 'number')
  })

  test('a second stream for the same receiver is allowed and distinct', async () => {
    const a = await createPoll()
    const b = await createPoll()
    assert.notEqual(a.stream_id, b.stream_id)
    assert.notEqual(a.delivery.endpoint_url, b.delivery.endpoint_url)
    const list = await broker.api.request('GET', '/ssf/streams', { token: rx.token })
    const ids = list.body.map((s: any) => s.stream_id)
    assert.ok(ids.includes(a.stream_id) && ids.includes(b.stream_id))
  })

  test('PATCH merges; transmitter-supplied members with current values are accepted; events_delivered is checked against the value before the update', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED], description: 'before' })
    const res = await broker.api.request('PATCH', '/ssf/streams', {
      token: rx.token,
      json: {
        stream_id: stream.stream_id,
        iss: stream.iss,
        aud: stream.aud,
        events_delivered: [SESSION_REVOKED],
        events_requested: [SESSION_REVOKED, `${CAEP}credential-change`, 'urn:example:unknown'],
      },
    })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.body.description, 'before', 'absent members are unchanged')
    assert.deepEqual(
      new Set(res.body.events_delivered),
      new Set([SESSION_REVOKED, `${CAEP}credential-change`]),
      'unknown URIs ignored',
    )
    const stale = await broker.api.request('PATCH', '/ssf/streams', {
      token: rx.token,
      json: { stream_id: stream.stream_id, events_delivered: [SESSION_REVOKED] },
    })
    assert.equal(stale.status, 400, 'events_delivered must equal the value before the update')
  })

  test('PUT replaces: receiver-supplied members left out are removed', async () => {
    const stream = await createPoll({
      events_requested: [SESSION_REVOKED],
      description: 'to be removed',
    })
    const res = await broker.api.request('PUT', '/ssf/streams', {
      token: rx.token,
      json: {
        stream_id: stream.stream_id,
        delivery: stream.delivery,
        events_requested: [SESSION_REVOKED],
      },
    })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.body.description, undefined)
    assert.deepEqual(res.body.delivery, stream.delivery)
  })

  test('a deleted stream never resolves again: read, status, poll and subjects all 404', async () => {
    const stream = await createPoll()
    assert.equal(
      (
        await broker.api.request('DELETE', `/ssf/streams?stream_id=${stream.stream_id}`, {
          token: rx.token,
        })
      ).status,
      204,
    )
    assert.equal(
      (
        await broker.api.request('GET', `/ssf/streams?stream_id=${stream.stream_id}`, {
          token: rx.token,
        })
      ).status,
      404,
    )
    assert.equal(
      (
        await broker.api.request('GET', `/ssf/status?stream_id=${stream.stream_id}`, {
          token: rx.token,
        })
      ).status,
      404,
    )
    assert.equal((await poll(stream, { returnImmediately: true })).status, 404)
    assert.equal(
      (
        await broker.api.request('POST', '/ssf/subjects/add', {
          token: rx.token,
          json: { stream_id: stream.stream_id, subject: { format: 'opaque', id: 'x' } },
        })
      ).status,
      404,
    )
    assert.equal(
      (
        await broker.api.request('POST', '/ssf/verify', {
          token: rx.token,
          json: { stream_id: stream.stream_id },
        })
      ).status,
      404,
    )
  })
})

describe('poll delivery (RFC 8936)', () => {
  test('a long poll returns as soon as an event arrives, not on a tick; ack releases it', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    const started = Date.now()
    const pending = poll(stream, {})
    await sleep(300)
    const emitted = Date.now()
    const res = await revoke({ format: 'opaque', id: 'poll-user' }, 'poll-txn-1')
    assert.equal(res.status, 202)
    const got = await pending
    const returned = Date.now()
    assert.equal(got.status, 200)
    const jtis = Object.keys(got.body.sets)
    assert.equal(jtis.length, 1)
    assert.equal(decodeJwt(got.body.sets[jtis[0]!]).txn, 'poll-txn-1')
    assert.equal(decodeJwt(got.body.sets[jtis[0]!]).jti, jtis[0])
    assert.ok(returned - started < 10_000, 'returned before the maximum wait')
    console.log(`# long poll returned ${returned - emitted} ms after the emit`)

    const ackOnly = await poll(stream, { ack: jtis, maxEvents: 0 })
    assert.deepEqual(ackOnly.body, { sets: {} })
    const empty = await poll(stream, { returnImmediately: true })
    assert.deepEqual(empty.body, { sets: {} })
  })

  test('unacknowledged SETs are handed out again; setErrs release and are recorded; moreAvailable', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    for (let i = 0; i < 3; i++) await revoke({ format: 'opaque', id: `p${i}` }, `more-${i}`)
    await sleep(200)
    const first = await poll(stream, { maxEvents: 2, returnImmediately: true })
    assert.equal(Object.keys(first.body.sets).length, 2)
    assert.equal(first.body.moreAvailable, true)
    const second = await poll(stream, { maxEvents: 5, returnImmediately: true })
    assert.equal(
      Object.keys(second.body.sets).length,
      1,
      'SETs out with an earlier poll are not handed out twice at once',
    )
    await sleep(1200) // redelivery time
    const again = await poll(stream, { maxEvents: 5, returnImmediately: true })
    assert.equal(Object.keys(again.body.sets).length, 3, 'unacknowledged SETs come back')
    const [a, b, c] = Object.keys(again.body.sets)
    const res = await poll(stream, {
      ack: [a, b],
      setErrs: { [c!]: { err: 'invalid_request', description: 'bad' } },
      returnImmediately: true,
    })
    assert.deepEqual(res.body, { sets: {} })
    const log = await broker.api.request('GET', `/admin/streams/${stream.stream_id}/deliveries`, {
      token: 'test-admin-token-0123456789abcdef0123456789',
    })
    assert.ok(
      log.body.deliveries.some(
        (d: any) => d.outcome === 'set_error' && d.jti === c && d.error === 'invalid_request',
      ),
    )
    assert.equal(log.body.deliveries.filter((d: any) => d.outcome === 'acked').length, 2)
    assert.equal(log.body.pending, 0)
  })

  test('a paused or disabled stream answers {"sets": {}} at once', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    await revoke({ format: 'opaque', id: 'held' })
    await sleep(200)
    for (const status of ['paused', 'disabled']) {
      await broker.api.request('POST', '/ssf/status', {
        token: rx.token,
        json: { stream_id: stream.stream_id, status },
      })
      const res = await poll(stream, {})
      assert.deepEqual(res.body, { sets: {} }, status)
    }
  })

  test('bad poll bodies are 400; another receiver polling is 404', async () => {
    const stream = await createPoll()
    for (const body of [
      { maxEvents: -1 },
      { maxEvents: 'ten' },
      { returnImmediately: 'yes' },
      { ack: 'jti' },
      { setErrs: { x: { description: 'no err' } } },
      [],
    ]) {
      const res = await poll(stream, body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error, 'invalid_request')
    }
    const other = await broker.api.createClient(['receiver'])
    assert.equal((await poll(stream, { returnImmediately: true }, other.token)).status, 404)
  })

  test('members RFC 8936 does not define are ignored (i2goSignals sends timeoutSecs): the poll returns the SETs', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    assert.equal(
      (await revoke({ format: 'opaque', id: 'interop-user' }, 'interop-txn')).status,
      202,
    )
    const res = await poll(stream, {
      maxEvents: 10,
      returnImmediately: false,
      timeoutSecs: 15,
      ack: [],
      wait: 5,
      vendor: { x: 1 },
    })
    assert.equal(res.status, 200, res.text)
    const sets = Object.values(res.body.sets) as string[]
    assert.equal(sets.length, 1)
    assert.equal(decodeJwt(sets[0]!).txn, 'interop-txn')
    // Unknown members are ignored, known ones still validated.
    const bad = await poll(stream, { timeoutSecs: 15, maxEvents: 'ten' })
    assert.equal(bad.status, 400)
    assert.match(bad.body.error_description, /^maxEvents: must be a non-negative integer/)
  })

  test('the same event reaches a push stream and a poll stream', async () => {
    const sink = await startReceiver()
    try {
      const pushStream = await broker.api.createPushStream(rx.token, sink.url, {
        events_requested: [`${CAEP}credential-change`],
      })
      const pollStream = await createPoll({ events_requested: [`${CAEP}credential-change`] })
      const res = await broker.api.emit(emitter.token, {
        type: 'caep/credential-change',
        subject: { format: 'email', email: 'both@example.com' },
        event: { credential_type: 'password', change_type: 'revoke' },
      })
      const [push] = await sink.waitFor(1)
      const polled = await poll(pollStream, {})
      const pollSet = Object.values(polled.body.sets)[0] as string
      assert.equal(decodeJwt(push!.body).txn, res.body.txn)
      assert.equal(decodeJwt(pollSet).txn, res.body.txn)
      assert.notEqual(decodeJwt(push!.body).jti, decodeJwt(pollSet).jti)
      assert.ok(pushStream.stream_id)
    } finally {
      await sink.close()
    }
  })
})

describe('verification', () => {
  let sink: TestReceiver
  before(async () => {
    sink = await startReceiver()
  })
  after(async () => {
    await sink.close()
  })

  test('204, a verification SET echoing state with the stream self-subject, ahead of the backlog; 429 when too frequent', async () => {
    const stream = await broker.api.createPushStream(rx.token, sink.url, {
      events_requested: [SESSION_REVOKED],
    })
    await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'paused' },
    })
    for (let i = 0; i < 3; i++) await revoke({ format: 'opaque', id: `backlog-${i}` })
    const res = await broker.api.request('POST', '/ssf/verify', {
      token: rx.token,
      json: { stream_id: stream.stream_id, state: 'abc 123 ✓' },
    })
    assert.equal(res.status, 204)
    assert.equal(res.text, '')
    const [first] = await sink.waitFor(1, 2000)
    const claims = decodeJwt(first!.body)
    assert.deepEqual(claims.sub_id, { format: 'opaque', id: stream.stream_id })
    assert.deepEqual(claims.events, { [`${SSF}verification`]: { state: 'abc 123 ✓' } })
    await sleep(200)
    assert.equal(
      sink.received.length,
      1,
      'the paused backlog waits; the verification went ahead of it',
    )

    const again = await broker.api.request('POST', '/ssf/verify', {
      token: rx.token,
      json: { stream_id: stream.stream_id },
    })
    assert.equal(again.status, 429)
    assert.ok(Number(again.headers.get('retry-after')) > 0)

    await broker.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: 'enabled' },
    })
    await sink.waitFor(4)
    assert.ok(
      sink.received
        .slice(1)
        .every((p) => Object.keys(decodeJwt(p.body).events as object)[0] === SESSION_REVOKED),
    )
  })

  test('poll streams receive verification SETs too; bad state is 400', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    const res = await broker.api.request('POST', '/ssf/verify', {
      token: rx.token,
      json: { stream_id: stream.stream_id },
    })
    assert.equal(res.status, 204)
    const got = await poll(stream, {})
    const set = Object.values(got.body.sets)[0] as string
    assert.deepEqual(
      decodeJwt(set).events,
      { [`${SSF}verification`]: {} },
      'no state when none was given',
    )
    const bad = await broker.api.request('POST', '/ssf/verify', {
      token: rx.token,
      json: { stream_id: stream.stream_id, state: 42 },
    })
    assert.equal(bad.status, 400)
  })
})

describe('subjects', () => {
  test('default ALL: removing a subject stops its events, adding it back resumes them', async () => {
    const stream = await createPoll({ events_requested: [SESSION_REVOKED] })
    const alice = { format: 'email', email: 'Alice@Example.com' }
    const rm = await broker.api.request('POST', '/ssf/subjects/remove', {
      token: rx.token,
      json: { stream_id: stream.stream_id, subject: alice },
    })
    assert.equal(rm.status, 204)
    await revoke({ format: 'email', email: 'alice@example.com' }, 'alice-1')
    await revoke({ format: 'email', email: 'bob@example.com' }, 'bob-1')
    await sleep(300)
    const got = await poll(stream, { returnImmediately: true })
    assert.deepEqual(
      Object.values(got.body.sets).map((s) => decodeJwt(s as string).txn),
      ['bob-1'],
      'removed subject (compared canonically) excluded',
    )
    const add = await broker.api.request('POST', '/ssf/subjects/add', {
      token: rx.token,
      json: { stream_id: stream.stream_id, subject: alice, verified: true },
    })
    assert.equal(add.status, 200)
    assert.equal(add.text, '')
    await revoke(alice, 'alice-2')
    const next = await poll(stream, { ack: Object.keys(got.body.sets) })
    assert.deepEqual(
      Object.values(next.body.sets).map((s) => decodeJwt(s as string).txn),
      ['alice-2'],
    )
  })

  test('bad subjects are 400 invalid_subject; unknown members 400', async () => {
    const stream = await createPoll()
    const bad = await broker.api.request('POST', '/ssf/subjects/add', {
      token: rx.token,
      json: { stream_id: stream.stream_id, subject: { format: 'email' } },
    })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error, 'invalid_subject')
    const extra = await broker.api.request('POST', '/ssf/subjects/add', {
      token: rx.token,
      json: { stream_id: stream.stream_id, subject: { format: 'opaque', id: 'x' }, note: 'x' },
    })
    assert.equal(extra.status, 400)
  })
})

describe('default_subjects NONE and complex-subject matching', () => {
  let noneRedis: TestRedis
  let none: TestBroker
  before(async () => {
    noneRedis = await startTestRedis()
    none = await startTestBroker(noneRedis.url, { SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' })
  })
  after(async () => {
    await none.close()
    await noneRedis.stop()
  })

  test('only added subjects are delivered; a missing complex member is a wildcard', async () => {
    const r = await none.api.createClient(['receiver'])
    const e = await none.api.createClient(['emitter'])
    const created = await none.api.request('POST', '/ssf/streams', {
      token: r.token,
      json: { events_requested: [SESSION_REVOKED] },
    })
    const stream = created.body
    const add = (subject: unknown) =>
      none.api.request('POST', '/ssf/subjects/add', {
        token: r.token,
        json: { stream_id: stream.stream_id, subject },
      })
    const user = { format: 'email', email: 'carol@example.com' }
    const tenant = { format: 'opaque', id: 'tenant-1' }
    const device = { format: 'opaque', id: 'device-9' }
    assert.equal((await add({ format: 'complex', tenant })).status, 200)
    assert.equal((await add({ format: 'complex', user, device })).status, 200)
    assert.equal(
      (await add({ format: 'iss_sub', iss: 'https://idp.example', sub: 'dave' })).status,
      200,
    )
    const send = (subject: unknown, txn: string) =>
      none.api.emit(e.token, { type: 'caep/session-revoked', subject, txn })
    await send(
      { format: 'complex', tenant, user: { format: 'email', email: 'zed@example.com' } },
      'tenant-match',
    ) // {tenant} added
    await send({ format: 'complex', user }, 'user-match') // {user, device} added: device absent = wildcard
    await send(
      { format: 'complex', user, device: { format: 'opaque', id: 'other-device' } },
      'device-mismatch',
    )
    await send(
      {
        format: 'complex',
        user: { format: 'iss_sub', iss: 'https://idp.example', sub: 'dave' },
        session: { format: 'opaque', id: 's1' },
      },
      'simple-in-complex',
    )
    await send({ format: 'email', email: 'nobody@example.com' }, 'not-added')
    await sleep(400)
    const res = await none.api.request('POST', new URL(stream.delivery.endpoint_url).pathname, {
      token: r.token,
      json: { returnImmediately: true },
    })
    const txns = Object.values(res.body.sets)
      .map((s) => decodeJwt(s as string).txn)
      .sort()
    assert.deepEqual(txns, ['simple-in-complex', 'tenant-match', 'user-match'])
  })
})

describe('inactivity timeout', () => {
  let idleRedis: TestRedis
  let idle: TestBroker
  before(async () => {
    idleRedis = await startTestRedis()
    idle = await startTestBroker(idleRedis.url, { SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS: '1' })
  })
  after(async () => {
    await idle.close()
    await idleRedis.stop()
  })

  test('an idle stream is paused and told so by a stream-updated event with the reason', async () => {
    const sink = await startReceiver()
    try {
      const r = await idle.api.createClient(['receiver'])
      const stream = await idle.api.createPushStream(r.token, sink.url)
      assert.equal(stream.inactivity_timeout, 1)
      const [push] = await sink.waitFor(1, 10_000)
      const claims = decodeJwt(push!.body)
      assert.deepEqual(claims.sub_id, { format: 'opaque', id: stream.stream_id })
      const event = (claims.events as Record<string, any>)[`${SSF}stream-updated`]
      assert.equal(event.status, 'paused')
      assert.match(event.reason, /inactivity/)
      const status = await idle.api.request('GET', `/ssf/status?stream_id=${stream.stream_id}`, {
        token: r.token,
      })
      assert.equal(status.body.status, 'paused')
      assert.match(status.body.reason, /inactivity/)
    } finally {
      await sink.close()
    }
  })
})

describe('sustained delivery failure', () => {
  let failRedis: TestRedis
  let failing: TestBroker
  before(async () => {
    failRedis = await startTestRedis()
    failing = await startTestBroker(failRedis.url, {
      SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS: '1',
      SSF_BROKER_RETRY_BASE_MS: '100',
      SSF_BROKER_RETRY_MAX_MS: '200',
    })
  })
  after(async () => {
    await failing.close()
    await failRedis.stop()
  })

  test('a stream failing without a break is disabled, says why, and the receiver is told first', async () => {
    const sink = await startReceiver()
    try {
      sink.respond = (_p, res) => void res.writeHead(503).end()
      const r = await failing.api.createClient(['receiver'])
      const e = await failing.api.createClient(['emitter'])
      const stream = await failing.api.createPushStream(r.token, sink.url)
      await failing.api.emit(e.token, {
        type: 'caep/session-revoked',
        subject: { format: 'opaque', id: 'u' },
      })
      let status: any
      const deadline = Date.now() + 10_000
      do {
        await sleep(100)
        status = (
          await failing.api.request('GET', `/ssf/status?stream_id=${stream.stream_id}`, {
            token: r.token,
          })
        ).body
      } while (status.status !== 'disabled' && Date.now() < deadline)
      assert.equal(status.status, 'disabled')
      assert.match(status.reason, /failing since \d{4}-\d\d-\d\dT.*last error http_503/)
      const told = sink.attempts
        .map((p) => decodeJwt(p.body).events as Record<string, any>)
        .find((ev) => ev[`${SSF}stream-updated`])
      assert.equal(told?.[`${SSF}stream-updated`].status, 'disabled')
    } finally {
      await sink.close()
    }
  })
})
