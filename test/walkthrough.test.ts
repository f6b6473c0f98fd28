/**
 * The first-time walk-through: create a receiver and a push stream, post a session-revoked event, and
 * verify the SET that arrives against the broker's own jwks_uri, every header and claim.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

let redis: TestRedis
let broker: TestBroker
let receiver: TestReceiver

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
  receiver = await startReceiver()
})

after(async () => {
  await broker.close()
  await receiver.close()
  await redis.stop()
})

test('metadata advertises the issuer, jwks_uri, push delivery and the stream endpoints, with no empty arrays', async () => {
  const res = await broker.api.request('GET', '/.well-known/ssf-configuration')
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /application\/json/)
  assert.equal(res.body.spec_version, '1_0')
  assert.equal(res.body.issuer, broker.issuer)
  assert.equal(res.body.jwks_uri, `${broker.issuer}/jwks.json`)
  assert.deepEqual(res.body.delivery_methods_supported, ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'])
  assert.equal(res.body.configuration_endpoint, `${broker.issuer}/ssf/streams`)
  assert.equal(res.body.status_endpoint, `${broker.issuer}/ssf/status`)
  for (const [name, value] of Object.entries(res.body)) {
    if (Array.isArray(value)) assert.ok(value.length > 0, `${name} is an empty array`)
  }
})

test('the JWKS serves public keys only, each with a kid, including RSA of at least 2048 bits', async () => {
  const res = await broker.api.request('GET', '/jwks.json')
  assert.equal(res.status, 200)
  const keys = res.body.keys as Record<string, unknown>[]
  assert.ok(keys.length >= 3)
  for (const key of keys) {
    assert.equal(typeof key.kid, 'string')
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'])
      assert.equal(key[secret], undefined, `private member ${secret} published`)
  }
  const rsa = keys.find((k) => k.kty === 'RSA')!
  assert.ok(Buffer.from(rsa.n as string, 'base64url').length * 8 >= 2048)
  assert.deepEqual(new Set(keys.map((k) => k.alg)), new Set(['RS256', 'ES256', 'EdDSA']))
})

test('walk-through: receiver, push stream, session-revoked event, verified SET', async () => {
  const { api } = broker
  const rx = await api.createClient(['receiver'])
  const emitter = await api.createClient(['emitter'])
  const stream = await api.createPushStream(rx.token, receiver.url, {
    events_requested: [SESSION_REVOKED],
    description: 'walk-through',
  })
  assert.equal(typeof stream.stream_id, 'string')
  assert.match(stream.stream_id, /^[A-Za-z0-9._~-]+$/)
  assert.equal(stream.iss, broker.issuer)
  assert.equal(stream.aud, rx.audience)
  assert.deepEqual(stream.events_delivered, [SESSION_REVOKED])
  assert.ok(stream.events_supported.includes(SESSION_REVOKED))

  const subject = { format: 'email', email: 'alice@example.com' }
  const res = await api.emit(emitter.token, {
    type: 'caep/session-revoked',
    subject,
    event: { reason_admin: { en: 'Session ended by admin' }, initiating_entity: 'admin' },
  })
  assert.equal(res.status, 202)
  const txn = res.body.txn as string
  assert.equal(typeof txn, 'string')

  const push = (await receiver.waitFor(1))[0]!
  assert.equal(push.headers['content-type'], 'application/secevent+jwt')
  assert.equal(push.headers.authorization, undefined)

  const jwks = createRemoteJWKSet(new URL(`${broker.issuer}/jwks.json`))
  const header = decodeProtectedHeader(push.body)
  assert.equal(header.typ, 'secevent+jwt')
  assert.equal(header.alg, 'RS256')
  assert.equal(typeof header.kid, 'string')
  const { payload } = await jwtVerify(push.body, jwks, {
    issuer: broker.issuer,
    audience: rx.audience,
    typ: 'secevent+jwt',
    algorithms: ['RS256'],
  })
  assert.equal(payload.iss, broker.issuer)
  assert.equal(payload.aud, rx.audience)
  assert.equal(payload.txn, txn)
  assert.equal(typeof payload.jti, 'string')
  assert.ok(Number.isInteger(payload.iat))
  assert.ok(payload.iat! <= Math.floor(Date.now() / 1000))
  assert.equal(payload.sub, undefined)
  assert.equal(payload.exp, undefined)
  assert.deepEqual(payload.sub_id, subject)
  const events = payload.events as Record<string, Record<string, unknown>>
  assert.deepEqual(Object.keys(events), [SESSION_REVOKED])
  const event = events[SESSION_REVOKED]!
  assert.deepEqual(event.reason_admin, { en: 'Session ended by admin' })
  assert.equal(event.initiating_entity, 'admin')
  assert.ok(Number.isInteger(event.event_timestamp))
})

test('per-client signing_alg: ES256 and EdDSA receivers get SETs signed with that algorithm', async () => {
  const { api } = broker
  const emitter = await api.createClient(['emitter'])
  const jwks = createRemoteJWKSet(new URL(`${broker.issuer}/jwks.json`))
  for (const alg of ['ES256', 'EdDSA'] as const) {
    const sink = await startReceiver()
    try {
      const rx = await api.createClient(['receiver'], { signing_alg: alg })
      await api.createPushStream(rx.token, sink.url, { events_requested: [SESSION_REVOKED] })
      const res = await api.emit(emitter.token, {
        type: SESSION_REVOKED,
        subject: { format: 'opaque', id: `s-${alg}` },
      })
      assert.equal(res.status, 202)
      const [push] = await sink.waitFor(1)
      assert.equal(decodeProtectedHeader(push!.body).alg, alg)
      const { payload } = await jwtVerify(push!.body, jwks, {
        issuer: broker.issuer,
        audience: rx.audience,
        typ: 'secevent+jwt',
        algorithms: [alg],
      })
      assert.deepEqual(payload.sub_id, { format: 'opaque', id: `s-${alg}` })
    } finally {
      await sink.close()
    }
  }
})

test('the stream authorization_header is sent verbatim as Authorization', async () => {
  const { api } = broker
  const sink = await startReceiver()
  try {
    const rx = await api.createClient(['receiver'])
    const emitter = await api.createClient(['emitter'])
    await api.request('POST', '/ssf/streams', {
      token: rx.token,
      json: {
        delivery: {
          method: 'urn:ietf:rfc:8935',
          endpoint_url: sink.url,
          authorization_header: 'Bearer receiver-secret-123',
        },
      },
    })
    await api.emit(emitter.token, {
      type: 'risc/account-disabled',
      subject: { format: 'iss_sub', iss: 'https://idp.example.com', sub: 'u1' },
      event: { reason: 'hijacking' },
    })
    const [push] = await sink.waitFor(1)
    assert.equal(push!.headers.authorization, 'Bearer receiver-secret-123')
  } finally {
    await sink.close()
  }
})
