/**
 * The receiver SDK's push endpoint (RFC 8935 §2): 202 on success, 400 `{err, description}` with the RFC's
 * codes, the configured Authorization value, duplicates, retries. Part one runs against the real broker
 * (in-process, real Redis): streams made with the stream client, SETs pushed by the broker's dispatcher.
 * Part two posts crafted SETs from a loopback transmitter to the hono and the plain Node handlers.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import {
  createHonoPushHandler,
  createNodePushHandler,
  createReceiver,
  createStreamClient,
  ReceiverError,
  type PushHandlerOptions,
  type Receiver,
  type VerifiedSet,
} from '../src/receiver/index.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'

async function listen(app: Hono): Promise<{ url: string; server: ServerType }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, server }),
    )
  })
}

function closeServer(server: ServerType | Server): Promise<void> {
  return new Promise((resolve) => {
    ;(server as Server).closeAllConnections?.()
    server.close(() => resolve())
  })
}

/** Waits until `check` is true (polling a local condition, bounded). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('push from the real broker', () => {
  let redis: TestRedis
  let broker: TestBroker
  let http: { url: string; server: ServerType }
  const secret = `Bearer ${randomUUID()}`
  const received: VerifiedSet[] = []
  const errors: unknown[] = []
  let failNext = 0
  let calls = 0
  let receiver: Receiver
  let token: string
  let audience: string

  before(async () => {
    redis = await startTestRedis()
    broker = await startTestBroker(redis.url)
    const client = await broker.api.createClient(['receiver'], { signing_alg: 'EdDSA' })
    token = client.token
    audience = client.audience
    receiver = createReceiver({ issuer: broker.issuer, audience, allowInsecureIssuer: true })
    const app = new Hono()
    app.post(
      '/ssf/events',
      createHonoPushHandler({
        receiver,
        authorization: secret,
        onEvent: (set) => {
          calls++
          if (failNext > 0) {
            failNext--
            throw new Error('the application could not store the event')
          }
          received.push(set)
        },
        onError: (error) => errors.push(error),
      }),
    )
    http = await listen(app)
  })

  after(async () => {
    await broker?.close()
    if (http) await closeServer(http.server)
    await redis?.stop()
  })

  test('a stream is created, then reused; an emitted event arrives verified (202)', async () => {
    const streams = createStreamClient({ receiver, token })
    const request = {
      delivery: {
        method: 'urn:ietf:rfc:8935',
        endpoint_url: `${http.url}/ssf/events`,
        authorization_header: secret,
      },
      events_requested: [SESSION_REVOKED],
    }
    const stream = await streams.ensureStream(request)
    const again = await streams.ensureStream(request)
    assert.equal(again.stream_id, stream.stream_id, 'ensureStream reuses the stream')
    assert.equal((await streams.list()).length, 1)

    const emitter = await broker.api.createClient(['emitter'])
    const subject = { format: 'email', email: 'alice@example.com' }
    const res = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject,
      event: { reason_admin: { en: 'test' }, initiating_entity: 'admin' },
    })
    assert.equal(res.status, 202)
    await until(() => received.length >= 1, 'the pushed SET')
    const set = received[0]!
    assert.equal(set.type, SESSION_REVOKED)
    assert.equal(set.iss, broker.issuer)
    assert.equal(set.aud, audience)
    assert.deepEqual(set.subject, subject)
    assert.equal(set.txn, res.body.txn)
    assert.equal(set.header.alg, 'EdDSA')
    assert.equal(typeof set.event.event_timestamp, 'number')
  })

  test('a handler failure answers 503; the broker retries and the retry is processed (jti forgotten)', async () => {
    const emitter = await broker.api.createClient(['emitter'])
    const before = received.length
    const callsBefore = calls
    failNext = 1
    await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: { format: 'email', email: 'bob@example.com' },
      event: { reason_admin: { en: 'retry' } },
    })
    await until(() => received.length > before, 'the retried SET')
    assert.equal(
      calls - callsBefore,
      2,
      'the handler ran for the failed delivery and for the retry',
    )
    assert.deepEqual(received.at(-1)!.subject, { format: 'email', email: 'bob@example.com' })
  })

  test('a triggered verification arrives by push with its state', async () => {
    const streams = createStreamClient({ receiver, token })
    const [stream] = await streams.list()
    const { state, delivered } = await streams.triggerVerification(stream!.stream_id, {
      timeoutMs: 10_000,
    })
    const set = await delivered
    assert.equal(set.type, VERIFICATION)
    assert.equal(set.event.state, state)
    assert.deepEqual(set.subject, { format: 'opaque', id: stream!.stream_id })
  })

  test('a stream configured with the wrong Authorization value is refused with authentication_failed', async () => {
    const other = await broker.api.createClient(['receiver'])
    const streams = createStreamClient({
      receiver: createReceiver({
        issuer: broker.issuer,
        audience: other.audience,
        allowInsecureIssuer: true,
      }),
      token: other.token,
    })
    await streams.create({
      delivery: {
        method: 'urn:ietf:rfc:8935',
        endpoint_url: `${http.url}/ssf/events`,
        authorization_header: 'Bearer wrong',
      },
      events_requested: [SESSION_REVOKED],
    })
    const errorsBefore = errors.length
    const emitter = await broker.api.createClient(['emitter'])
    await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: { format: 'email', email: 'carol@example.com' },
      event: { reason_admin: { en: 'x' } },
    })
    await until(
      () =>
        errors
          .slice(errorsBefore)
          .some((e) => e instanceof ReceiverError && e.code === 'ERR_PUSH_AUTHENTICATION_FAILED'),
      'the refused push',
    )
  })
})

/** A loopback transmitter with one ES256 key, so crafted SETs can be posted to the handlers. */
describe('push handler answers (RFC 8935 §2.2–2.4)', () => {
  const AUD = 'push-test-aud'
  let server: Server
  let issuer = ''
  let jwksStatus = 200
  let key: { privateKey: CryptoKey; jwk: JWK }
  let honoUrl = ''
  let nodeUrl = ''
  let honoServer: ServerType
  let nodeServer: Server
  let handled: VerifiedSet[] = []
  let denyNext = false
  let failNext = false
  const AUTH = 'Bearer push-secret'

  const claims = (overrides: Record<string, unknown> = {}) => ({
    iss: issuer,
    aud: AUD,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    sub_id: { format: 'email', email: 'dave@example.com' },
    events: { [SESSION_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } },
    ...overrides,
  })
  const sign = (payload: Record<string, unknown>) =>
    new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'secevent+jwt' })
      .sign(key.privateKey)

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true })
    key = {
      privateKey: pair.privateKey,
      jwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' },
    }
    server = createServer((req, res) => {
      if (req.url === '/.well-known/ssf-configuration')
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks.json` }))
      else if (req.url === '/jwks.json')
        res
          .writeHead(jwksStatus, { 'content-type': 'application/json' })
          .end(JSON.stringify({ keys: [key.jwk] }))
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    const options = (): PushHandlerOptions => ({
      receiver: createReceiver({ issuer, audience: AUD, allowInsecureIssuer: true }),
      authorization: AUTH,
      maxBodyBytes: 4096,
      onEvent: (set) => {
        if (denyNext) {
          denyNext = false
          throw new ReceiverError(
            'ERR_SET_ACCESS_DENIED',
            'this transmitter may not revoke that subject',
          )
        }
        if (failNext) {
          failNext = false
          throw new Error('database password rejected')
        }
        handled.push(set)
      },
    })
    const app = new Hono()
    app.all('/events', createHonoPushHandler(options()))
    const h = await listen(app)
    honoServer = h.server
    honoUrl = `${h.url}/events`
    const push = createNodePushHandler(options())
    nodeServer = createServer((req, res) =>
      req.url === '/events' ? push(req, res) : res.writeHead(404).end(),
    )
    await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r))
    nodeUrl = `http://127.0.0.1:${(nodeServer.address() as AddressInfo).port}/events`
  })

  after(async () => {
    await Promise.all([closeServer(server), closeServer(honoServer), closeServer(nodeServer)])
  })

  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/secevent+jwt',
        accept: 'application/json',
        authorization: AUTH,
        ...headers,
      },
      body,
    })

  async function expectErr(res: Response, status: number, err: string): Promise<void> {
    const text = await res.text()
    assert.equal(res.status, status, text)
    assert.match(res.headers.get('content-type') ?? '', /application\/json/)
    const body = JSON.parse(text) as { err: string; description?: string }
    assert.equal(body.err, err)
    assert.equal(typeof body.description, 'string')
    assert.equal(res.headers.get('content-language'), 'en')
  }

  for (const flavour of ['hono', 'node'] as const) {
    const url = () => (flavour === 'hono' ? honoUrl : nodeUrl)

    test(`${flavour}: a valid SET is 202 with an empty body; a redelivery is 202 without running the handler again`, async () => {
      handled = []
      const compact = await sign(claims())
      const res = await post(url(), compact)
      assert.equal(res.status, 202)
      assert.equal(await res.text(), '')
      assert.equal(handled.length, 1)
      const again = await post(url(), compact)
      assert.equal(again.status, 202)
      assert.equal(handled.length, 1, 'the duplicate did not run the handler')
    })

    test(`${flavour}: missing or wrong Authorization → 400 authentication_failed`, async () => {
      const compact = await sign(claims())
      await expectErr(
        await post(url(), compact, { authorization: 'Bearer nope' }),
        400,
        'authentication_failed',
      )
      await expectErr(
        await fetch(url(), {
          method: 'POST',
          headers: { 'content-type': 'application/secevent+jwt' },
          body: compact,
        }),
        400,
        'authentication_failed',
      )
    })

    test(`${flavour}: unparseable body or wrong media type → 400 invalid_request`, async () => {
      await expectErr(await post(url(), 'not a set'), 400, 'invalid_request')
      await expectErr(
        await post(url(), await sign(claims()), { 'content-type': 'application/json' }),
        400,
        'invalid_request',
      )
      await expectErr(await post(url(), await sign(claims({ exp: 1 }))), 400, 'invalid_request')
    })

    test(`${flavour}: tampered SET → 400 invalid_key`, async () => {
      const [h, , s] = (await sign(claims())).split('.')
      await expectErr(
        await post(
          url(),
          `${h}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.${s}`,
        ),
        400,
        'invalid_key',
      )
    })

    test(`${flavour}: another issuer → 400 invalid_issuer; another audience → 400 invalid_audience`, async () => {
      await expectErr(
        await post(url(), await sign(claims({ iss: 'https://evil.example' }))),
        400,
        'invalid_issuer',
      )
      await expectErr(
        await post(url(), await sign(claims({ aud: 'someone-else' }))),
        400,
        'invalid_audience',
      )
    })

    test(`${flavour}: the application refuses the SET → 400 access_denied (and a redelivery is evaluated again)`, async () => {
      const compact = await sign(claims())
      denyNext = true
      await expectErr(await post(url(), compact), 400, 'access_denied')
      handled = []
      assert.equal((await post(url(), compact)).status, 202)
      assert.equal(handled.length, 1)
    })

    test(`${flavour}: the application's handler fails → 503 with Retry-After, its message kept private; the retry is processed`, async () => {
      const compact = await sign(claims())
      failNext = true
      const res = await post(url(), compact)
      const text = await res.text()
      assert.equal(res.status, 503, text)
      assert.equal(res.headers.get('retry-after'), '2')
      assert.equal(JSON.parse(text).err, 'temporarily_unavailable')
      assert.doesNotMatch(text, /password/)
      handled = []
      assert.equal((await post(url(), compact)).status, 202)
      assert.equal(handled.length, 1, 'the jti was forgotten, so the retry ran the handler')
    })

    test(`${flavour}: a verification with a state this receiver never asked for → 400 invalid_state; without state → 202`, async () => {
      const verification = (event: Record<string, unknown>) =>
        claims({ sub_id: { format: 'opaque', id: 'stream-1' }, events: { [VERIFICATION]: event } })
      await expectErr(
        await post(url(), await sign(verification({ state: 'forged' }))),
        400,
        'invalid_state',
      )
      assert.equal((await post(url(), await sign(verification({})))).status, 202)
    })

    test(`${flavour}: GET → 405; an oversized body → 413`, async () => {
      const res = await fetch(url())
      assert.equal(res.status, 405)
      assert.equal(res.headers.get('allow'), 'POST')
      const big = await post(url(), 'x'.repeat(10_000))
      assert.equal(big.status, 413)
    })
  }

  test("the transmitter's JWKS unreachable → 503 (the transmitter retries)", async () => {
    // A fresh receiver has no keys yet: its JWKS fetch fails.
    jwksStatus = 500
    try {
      const fresh = createReceiver({ issuer, audience: AUD, allowInsecureIssuer: true })
      const app = new Hono()
      app.post(
        '/e',
        createHonoPushHandler({ receiver: fresh, authorization: AUTH, onEvent: () => {} }),
      )
      const res = await app.request('/e', {
        method: 'POST',
        headers: { 'content-type': 'application/secevent+jwt', authorization: AUTH },
        body: await sign(claims()),
      })
      assert.equal(res.status, 503)
      assert.ok(res.headers.get('retry-after'))
    } finally {
      jwksStatus = 200
    }
  })

  test('a replay store that is down → 503, and the handler does not run', async () => {
    let ran = false
    const receiver = createReceiver({
      issuer,
      audience: AUD,
      allowInsecureIssuer: true,
      replayStore: {
        remember: () => Promise.reject(new Error('ECONNREFUSED')),
        forget: async () => {},
      },
    })
    const app = new Hono()
    app.post(
      '/e',
      createHonoPushHandler({ receiver, authorization: AUTH, onEvent: () => void (ran = true) }),
    )
    const res = await app.request('/e', {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', authorization: AUTH },
      body: await sign(claims()),
    })
    assert.equal(res.status, 503)
    assert.equal(ran, false)
  })

  test('misuse: no authorization option is a TypeError', () => {
    const receiver = createReceiver({ issuer, audience: AUD, allowInsecureIssuer: true })
    assert.throws(
      () => createHonoPushHandler({ receiver, onEvent: () => {} } as unknown as PushHandlerOptions),
      TypeError,
    )
    assert.throws(
      () => createNodePushHandler({ receiver, authorization: [], onEvent: () => {} }),
      TypeError,
    )
  })
})
