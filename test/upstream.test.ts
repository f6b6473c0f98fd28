/**
 * The broker as a receiver of another transmitter: broker A plays the IdP, broker B (its own Redis)
 * subscribes to A by push and by poll. Events posted to A reach B's downstream receivers signed by B with
 * A's txn; a replayed SET is fanned out once; refused SETs reach nobody; agents registered on B get the
 * cascade; deleting the upstream removes its stream at A.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, freePort, startTestBroker, type TestBroker } from './helpers/broker.js'
import { createReceiver } from '../src/receiver/index.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const SET_TYP = 'secevent+jwt'

let redisA: TestRedis
let redisB: TestRedis
let a: TestBroker
let b: TestBroker
let sink: TestReceiver
let aEmitter: { token: string }
let aReceiver: { token: string; audience: string }
let bReceiver: { token: string; audience: string }

async function brokerOn(redis: TestRedis): Promise<TestBroker> {
  const port = await freePort()
  return startTestBroker(redis.url, {
    SSF_BROKER_PORT: String(port),
    SSF_BROKER_ISSUER: `http://127.0.0.1:${port}`,
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
  })
}

before(async () => {
  ;[redisA, redisB] = await Promise.all([startTestRedis(), startTestRedis()])
  ;[a, b] = await Promise.all([brokerOn(redisA), brokerOn(redisB)])
  sink = await startReceiver()
  aEmitter = await a.api.createClient(['emitter'])
  aReceiver = await a.api.createClient(['receiver'])
  bReceiver = await b.api.createClient(['receiver'])
  await b.api.createPushStream(bReceiver.token, sink.url)
})

after(async () => {
  await sink.close()
  await b.close()
  await a.close()
  await Promise.all([redisA.stop(), redisB.stop()])
})

const alice = { format: 'email', email: 'alice@example.com' }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** SETs at the downstream sink, decoded, for one txn. */
const setsFor = (txn: string) =>
  sink.received.map((p) => decodeJwt(p.body) as any).filter((c) => c.txn === txn)
const waitForTxn = (txn: string, count = 1) =>
  until(`${count} SET(s) with txn ${txn}`, async () =>
    setsFor(txn).length >= count ? setsFor(txn) : undefined,
  )

async function emitAtA(txn: string, subject: unknown = alice) {
  const res = await a.api.emit(aEmitter.token, {
    type: 'caep/session-revoked',
    subject,
    txn,
    event: { reason_admin: { en: 'signed out' } },
  })
  assert.equal(res.status, 202, res.text)
}

/**
 * Proves that nothing more reached the sink for `txns`: a sentinel about the same subject, emitted after
 * them, arrives; the fan-out and the stream deliver in order, so anything earlier would have arrived first.
 */
async function nothingMoreFor(txns: Record<string, number>, sentinel: string) {
  await emitAtA(sentinel)
  await waitForTxn(sentinel)
  for (const [txn, count] of Object.entries(txns))
    assert.equal(setsFor(txn).length, count, `SETs with txn ${txn}`)
}

const register = (body: Record<string, unknown>) =>
  b.api.request('POST', '/admin/upstreams', { token: ADMIN_TOKEN, json: body })

let pushUpstream: any

test('register A as a push upstream: discovery, a stream at A pointing at B, verified end to end', async () => {
  const res = await register({
    issuer: a.issuer,
    delivery: 'push',
    authorization: { type: 'bearer', token: aReceiver.token },
    events_requested: [SESSION_REVOKED],
  })
  assert.equal(res.status, 201, res.text)
  pushUpstream = res.body
  assert.equal(pushUpstream.issuer, a.issuer)
  assert.equal(pushUpstream.delivery, 'push')
  assert.equal(typeof pushUpstream.upstream_id, 'string')
  assert.equal(pushUpstream.status, 'enabled')
  assert.equal(pushUpstream.endpoint_url, `${b.issuer}/ssf/inbound/${pushUpstream.upstream_id}`)
  assert.ok(!res.text.includes(aReceiver.token), 'the bearer token is never returned')
  const atA = await a.api.request('GET', `/ssf/streams?stream_id=${pushUpstream.stream_id}`, {
    token: aReceiver.token,
  })
  assert.equal(atA.status, 200)
  assert.equal(atA.body.delivery.method, 'urn:ietf:rfc:8935')
  assert.equal(atA.body.delivery.endpoint_url, pushUpstream.endpoint_url)
  assert.match(atA.body.delivery.authorization_header, /^Bearer [A-Za-z0-9_-]{43}$/)
  const stored = await redisB.client.hget('ssf:{upstreams}:rec', pushUpstream.upstream_id)
  assert.ok(
    stored && !stored.includes(atA.body.delivery.authorization_header.slice(7)),
    'the inbound authorization is stored only as a hash',
  )
  // A's verification SET (requested at registration) came back through the push endpoint.
  const verified = await until('verified_at', async () => {
    const r = await b.api.request('GET', `/admin/upstreams/${pushUpstream.upstream_id}`, {
      token: ADMIN_TOKEN,
    })
    return r.body.verified_at ?? undefined
  })
  assert.ok(verified > 0)
  const list = await b.api.request('GET', '/admin/upstreams', { token: ADMIN_TOKEN })
  assert.deepEqual(
    list.body.upstreams.map((u: any) => u.upstream_id),
    [pushUpstream.upstream_id],
  )
  const noAuth = await b.api.request('GET', '/admin/upstreams')
  assert.equal(noAuth.status, 401)
})

test("an event posted to A arrives at B's receiver signed by B, with A's txn, within milliseconds; audited with A's iss and jti", async () => {
  const started = Date.now()
  await emitAtA('push-1')
  const [claims] = await waitForTxn('push-1')
  const elapsed = Date.now() - started
  console.log(`# upstream push: A's POST /events to B's downstream receiver in ${elapsed} ms`)
  const push = sink.received.find((p) => (decodeJwt(p.body) as any).txn === 'push-1')!
  const verifier = createReceiver({
    issuer: b.issuer,
    audience: bReceiver.audience,
    allowInsecureIssuer: true,
  })
  const set = await verifier.verify(push.body)
  assert.equal(set.iss, b.issuer, 're-signed by B')
  assert.equal(set.txn, 'push-1', "A's txn kept")
  assert.deepEqual(set.subject, alice)
  assert.deepEqual((set.event as any).reason_admin, { en: 'signed out' })
  assert.equal(claims.iss, b.issuer)
  const status = await b.api.request('GET', `/admin/upstreams/${pushUpstream.upstream_id}`, {
    token: ADMIN_TOKEN,
  })
  assert.equal(status.body.events_received, 1)
  assert.ok(status.body.last_event_at > 0)
  const metrics = await (await fetch(`${b.url}/metrics`)).text()
  assert.match(
    metrics,
    new RegExp(
      `^ssf_broker_upstream_events_total\\{upstream="${pushUpstream.upstream_id}"\\} 1$`,
      'm',
    ),
  )
  const audit = await until('the audit record', async () => {
    const r = await b.api.request('GET', `/admin/audit?txn=push-1&kind=event.ingested`, {
      token: ADMIN_TOKEN,
    })
    return r.body.records[0]
  })
  assert.equal(audit.details.upstream_iss, a.issuer)
  assert.equal(typeof audit.details.upstream_jti, 'string')
  assert.equal(audit.client_id, `upstream:${pushUpstream.upstream_id}`)
})

test('a replayed upstream SET is fanned out once', async () => {
  // A genuine A-signed SET for B's audience: from a poll stream of the same A client.
  const poll = await a.api.request('POST', '/ssf/streams', {
    token: aReceiver.token,
    json: { delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: [SESSION_REVOKED] },
  })
  assert.equal(poll.status, 201)
  await emitAtA('replay-1')
  await waitForTxn('replay-1') // through the push stream
  const got = await a.api.request('POST', `/ssf/poll/${poll.body.stream_id}`, {
    token: aReceiver.token,
    json: { returnImmediately: true },
  })
  const compact = Object.values(got.body.sets)[0] as string
  assert.equal((decodeJwt(compact) as any).txn, 'replay-1')
  await a.api.request('DELETE', `/ssf/streams?stream_id=${poll.body.stream_id}`, {
    token: aReceiver.token,
  })
  const atA = await a.api.request('GET', `/ssf/streams?stream_id=${pushUpstream.stream_id}`, {
    token: aReceiver.token,
  })
  const authorization = atA.body.delivery.authorization_header
  const send = () =>
    b.api.request('POST', `/ssf/inbound/${pushUpstream.upstream_id}`, {
      body: compact,
      contentType: 'application/secevent+jwt',
      headers: { authorization },
    })
  const answers = await Promise.all([send(), send()].map(async (p) => (await p).status))
  for (let i = 0; i < 3; i++) answers.push((await send()).status)
  // Concurrent copies: one ingests, the other is told to retry (503) or is a duplicate (202).
  assert.ok(
    answers.every((s) => s === 202 || s === 503),
    String(answers),
  )
  assert.ok(answers.slice(2).every((s) => s === 202))
  await nothingMoreFor({ 'replay-1': 2 }, 'after-replay')
})

test('a SET signed by a foreign key, or sent without the inbound authorization, is refused with the RFC 8935 error; nothing reaches downstream', async () => {
  const atA = await a.api.request('GET', `/ssf/streams?stream_id=${pushUpstream.stream_id}`, {
    token: aReceiver.token,
  })
  const authorization = atA.body.delivery.authorization_header as string
  const { privateKey } = await generateKeyPair('RS256')
  // A's own key id, so the broker finds a key and the signature itself is what fails.
  const kid = (await a.api.request('GET', '/jwks.json')).body.keys.find(
    (k: any) => k.alg === 'RS256',
  ).kid
  const forged = await new SignJWT({
    jti: 'forged-1',
    txn: 'forged',
    aud: aReceiver.audience,
    sub_id: alice,
    events: { [SESSION_REVOKED]: { event_timestamp: 1 } },
  })
    .setProtectedHeader({ alg: 'RS256', typ: SET_TYP, kid })
    .setIssuer(a.issuer)
    .setIssuedAt()
    .sign(privateKey)
  const post = (body: string, headers: Record<string, string>) =>
    b.api.request('POST', `/ssf/inbound/${pushUpstream.upstream_id}`, {
      body,
      contentType: 'application/secevent+jwt',
      headers,
    })
  const foreign = await post(forged, { authorization })
  assert.equal(foreign.status, 400)
  assert.equal(foreign.body.err, 'invalid_key')
  const missing = await post(forged, {})
  assert.equal(missing.status, 400)
  assert.equal(missing.body.err, 'authentication_failed')
  const wrong = await post(forged, { authorization: `${authorization}x` })
  assert.equal(wrong.body.err, 'authentication_failed')
  const unknown = await b.api.request('POST', '/ssf/inbound/no-such-upstream', {
    body: forged,
    contentType: 'application/secevent+jwt',
    headers: { authorization },
  })
  assert.equal(unknown.status, 400)
  assert.equal(unknown.body.err, 'authentication_failed')
  const notJws = await post('not-a-set', { authorization })
  assert.equal(notJws.body.err, 'invalid_request')
  const status = await b.api.request('GET', `/admin/upstreams/${pushUpstream.upstream_id}`, {
    token: ADMIN_TOKEN,
  })
  assert.match(
    status.body.last_error,
    /ERR_SET_MALFORMED|ERR_PUSH_AUTHENTICATION_FAILED|ERR_SET_KEY_NOT_FOUND|ERR_SET_SIGNATURE_INVALID/,
  )
  await nothingMoreFor({ forged: 0 }, 'after-forged')
})

test('delete removes the upstream and its stream at A', async () => {
  const res = await b.api.request('DELETE', `/admin/upstreams/${pushUpstream.upstream_id}`, {
    token: ADMIN_TOKEN,
  })
  assert.equal(res.status, 204, res.text)
  const atA = await a.api.request('GET', `/ssf/streams?stream_id=${pushUpstream.stream_id}`, {
    token: aReceiver.token,
  })
  assert.equal(atA.status, 404)
  assert.equal(
    (
      await b.api.request('GET', `/admin/upstreams/${pushUpstream.upstream_id}`, {
        token: ADMIN_TOKEN,
      })
    ).status,
    404,
  )
  assert.equal(
    (
      await b.api.request('DELETE', `/admin/upstreams/${pushUpstream.upstream_id}`, {
        token: ADMIN_TOKEN,
      })
    ).status,
    404,
  )
})

test("B subscribes to A by poll: events arrive with A's txn, and cascade to the agents registered on B", async () => {
  const res = await register({
    issuer: a.issuer,
    delivery: 'poll',
    authorization: { type: 'bearer', token: aReceiver.token },
  })
  assert.equal(res.status, 201, res.text)
  const upstream = res.body
  assert.equal(upstream.delivery, 'poll')
  const atA = await a.api.request('GET', `/ssf/streams?stream_id=${upstream.stream_id}`, {
    token: aReceiver.token,
  })
  assert.equal(atA.body.delivery.method, 'urn:ietf:rfc:8936')
  await until(
    'a poller',
    async () =>
      (
        await b.api.request('GET', `/admin/upstreams/${upstream.upstream_id}`, {
          token: ADMIN_TOKEN,
        })
      ).body.poller ?? undefined,
  )

  const started = Date.now()
  await emitAtA('poll-1')
  const [claims] = await waitForTxn('poll-1')
  console.log(
    `# upstream poll: A's POST /events to B's downstream receiver in ${Date.now() - started} ms`,
  )
  assert.equal(claims.iss, b.issuer)

  // An agent acting for alice, registered on B: a revocation about alice from A reaches it.
  const bEmitter = await b.api.createClient(['emitter'])
  const agent = { format: 'uri', uri: 'spiffe://example.org/agent/helper' }
  const reg = await b.api.request('POST', '/agents', {
    token: bEmitter.token,
    json: {
      agent,
      delegator: alice,
      task: 'summarise mail',
      scopes: ['mail.read'],
      expires_in: 3600,
    },
  })
  assert.equal(reg.status, 201, reg.text)
  await emitAtA('cascade-1')
  const sets = await waitForTxn('cascade-1', 2)
  const forAgent = sets.find(
    (c) => c.sub_id.format === 'complex' && c.sub_id.agent?.uri === agent.uri,
  )
  assert.ok(forAgent, 'the agent acting for alice got its own SET')
  assert.equal(forAgent.iss, b.issuer)

  const del = await b.api.request('DELETE', `/admin/upstreams/${upstream.upstream_id}`, {
    token: ADMIN_TOKEN,
  })
  assert.equal(del.status, 204)
  assert.equal(
    (
      await a.api.request('GET', `/ssf/streams?stream_id=${upstream.stream_id}`, {
        token: aReceiver.token,
      })
    ).status,
    404,
  )
})

test('registration is refused for an issuer that does not match its metadata, and for bad input', async () => {
  const mismatch = await register({
    issuer: `${a.issuer}/other`,
    delivery: 'push',
    authorization: { type: 'bearer', token: aReceiver.token },
  })
  assert.ok(mismatch.status === 400 || mismatch.status === 502, mismatch.text)
  const bad = await register({
    issuer: a.issuer,
    delivery: 'carrier-pigeon',
    authorization: { type: 'bearer', token: 'x' },
  })
  assert.equal(bad.status, 400)
  const unknown = await register({
    issuer: a.issuer,
    delivery: 'push',
    authorization: { type: 'bearer', token: 'x' },
    extra: 1,
  })
  assert.equal(unknown.status, 400)
  const refused = await register({
    issuer: a.issuer,
    delivery: 'push',
    authorization: { type: 'bearer', token: 'ssf_not-a-valid-token' },
  })
  assert.equal(refused.status, 400, refused.text)
  assert.equal(refused.body.error, 'invalid_upstream')
  assert.deepEqual(
    (await b.api.request('GET', '/admin/upstreams', { token: ADMIN_TOKEN })).body.upstreams,
    [],
  )
})
