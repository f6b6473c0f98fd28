/**
 * A transmitter that is not ssf-broker: a small IdP written here with plain `jose` (RS256 and ES256
 * keys), its own SSF metadata, JWKS, client-credentials token endpoint, stream management, pushes and a
 * poll endpoint. The broker registers it, takes its SETs by push and by poll, refuses the bad ones with
 * the right RFC 8935 codes, de-duplicates replays, tracks its stream status, and refreshes its token.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, freePort, startTestBroker, type TestBroker } from './helpers/broker.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/'
const PUSH = 'urn:ietf:rfc:8935'
const POLL = 'urn:ietf:rfc:8936'
const AUD = 'https://broker-b.example.com/aud'
const CLIENT = { id: 'broker-b', secret: 'fake-idp-client-secret-0123456789' }

interface FakeStream {
  stream_id: string
  delivery: { method: string; endpoint_url?: string; authorization_header?: string }
  queue: Map<string, string>
  acks: string[]
  setErrs: Record<string, { err: string; description?: string }>
  deleted: boolean
}

/** The fake IdP. */
class FakeIdp {
  issuer = ''
  server!: Server
  keys!: { rsa: CryptoKey; ec: CryptoKey; jwks: unknown }
  tokenLifetimeSeconds = 3600
  readonly tokens = new Map<string, number>() // token -> expiry (ms)
  readonly issued: string[] = []
  /** The token each poll request carried. */
  readonly pollTokens: string[] = []
  readonly tokenRequests: { authorization: string | undefined; body: string }[] = []
  readonly managementAuth: string[] = []
  unauthorized = 0
  readonly streams = new Map<string, FakeStream>()
  #pollWaiters: (() => void)[] = []

  async start(): Promise<void> {
    const [rsa, ec] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('ES256')])
    const jwk = async (k: CryptoKey, kid: string, alg: string) => ({
      ...(await exportJWK(k)),
      kid,
      alg,
      use: 'sig',
    })
    this.keys = {
      rsa: rsa.privateKey,
      ec: ec.privateKey,
      jwks: {
        keys: [
          await jwk(rsa.publicKey, 'rsa-1', 'RS256'),
          await jwk(ec.publicKey, 'ec-1', 'ES256'),
        ],
      },
    }
    this.server = createServer((req, res) => {
      void this.#route(req).then(
        ({ status, body }) => {
          res
            .writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' })
            .end(body === undefined ? undefined : JSON.stringify(body))
        },
        () => res.writeHead(500).end(),
      )
    })
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/tenant-1`
  }

  close(): Promise<void> {
    for (const w of this.#pollWaiters) w()
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }

  async sign(
    claims: Record<string, unknown>,
    alg: 'RS256' | 'ES256' = 'RS256',
    header: Record<string, unknown> = {},
    key?: CryptoKey,
  ): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({
        alg,
        typ: 'secevent+jwt',
        kid: alg === 'RS256' ? 'rsa-1' : 'ec-1',
        ...header,
      })
      .sign(key ?? (alg === 'RS256' ? this.keys.rsa : this.keys.ec))
  }

  /** A standard SET of this IdP (override any claim; `undefined` removes it). */
  set(
    type: string,
    event: Record<string, unknown>,
    overrides: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const claims: Record<string, unknown> = {
      iss: this.issuer,
      aud: AUD,
      jti: randomUUID(),
      iat: Math.floor(Date.now() / 1000),
      txn: `idp-${randomUUID()}`,
      sub_id: { format: 'email', email: 'carol@example.com' },
      events: { [type]: event },
      ...overrides,
    }
    for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k]
    return claims
  }

  async push(
    stream: FakeStream,
    compact: string,
    authorization = stream.delivery.authorization_header,
  ): Promise<{ status: number; body: any }> {
    const res = await fetch(stream.delivery.endpoint_url!, {
      method: 'POST',
      headers: {
        'content-type': 'application/secevent+jwt',
        ...(authorization ? { authorization } : {}),
      },
      body: compact,
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined }
  }

  enqueue(stream: FakeStream, jti: string, compact: string): void {
    stream.queue.set(jti, compact)
    for (const w of this.#pollWaiters.splice(0)) w()
  }

  #authorized(req: IncomingMessage): boolean {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const expiry = token === undefined ? undefined : this.tokens.get(token)
    if (expiry === undefined || expiry < Date.now()) {
      this.unauthorized++
      return false
    }
    return true
  }

  async #route(req: IncomingMessage): Promise<{ status: number; body?: unknown }> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    const url = new URL(req.url ?? '/', 'http://x')
    const base = new URL(this.issuer).origin
    const path = url.pathname
    if (req.method === 'GET' && path === '/.well-known/ssf-configuration/tenant-1') {
      return {
        status: 200,
        body: {
          spec_version: '1_0',
          issuer: this.issuer,
          jwks_uri: `${base}/keys`,
          delivery_methods_supported: [PUSH, POLL],
          configuration_endpoint: `${base}/ssf/streams`,
          status_endpoint: `${base}/ssf/status`,
          verification_endpoint: `${base}/ssf/verify`,
        },
      }
    }
    if (req.method === 'GET' && path === '/keys') return { status: 200, body: this.keys.jwks }
    if (req.method === 'POST' && path === '/oauth/token') {
      this.tokenRequests.push({ authorization: req.headers.authorization, body: text })
      const expected = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`
      if (
        req.headers.authorization !== expected ||
        new URLSearchParams(text).get('grant_type') !== 'client_credentials'
      )
        return { status: 401, body: { error: 'invalid_client' } }
      const token = `at-${randomUUID()}`
      this.tokens.set(token, Date.now() + this.tokenLifetimeSeconds * 1000)
      this.issued.push(token)
      return {
        status: 200,
        body: { access_token: token, token_type: 'Bearer', expires_in: this.tokenLifetimeSeconds },
      }
    }
    if (!this.#authorized(req)) return { status: 401, body: { error: 'invalid_token' } }
    if (path === '/ssf/streams' && req.method === 'POST') {
      this.managementAuth.push(req.headers.authorization!)
      const body = JSON.parse(text)
      const stream_id = randomUUID()
      const delivery =
        body.delivery.method === POLL
          ? { method: POLL, endpoint_url: `${base}/ssf/poll/${stream_id}` }
          : body.delivery
      this.streams.set(stream_id, {
        stream_id,
        delivery,
        queue: new Map(),
        acks: [],
        setErrs: {},
        deleted: false,
      })
      return {
        status: 201,
        body: {
          stream_id,
          iss: this.issuer,
          aud: AUD,
          delivery,
          events_requested: body.events_requested,
          events_delivered: body.events_requested,
        },
      }
    }
    if (path === '/ssf/streams' && req.method === 'DELETE') {
      const stream = this.streams.get(url.searchParams.get('stream_id') ?? '')
      if (!stream) return { status: 404 }
      stream.deleted = true
      return { status: 204 }
    }
    if (path === '/ssf/status' && req.method === 'GET')
      return {
        status: 200,
        body: { stream_id: url.searchParams.get('stream_id'), status: 'enabled' },
      }
    if (path === '/ssf/verify' && req.method === 'POST') {
      const body = JSON.parse(text)
      const stream = this.streams.get(body.stream_id)!
      const claims = this.set(
        `${SSF}verification`,
        { state: body.state },
        { sub_id: { format: 'opaque', id: stream.stream_id }, txn: undefined },
      )
      const compact = await this.sign(claims, 'ES256')
      // Sent after the answer, as a real transmitter does.
      setTimeout(
        () =>
          void (stream.delivery.method === PUSH
            ? this.push(stream, compact)
            : this.enqueue(stream, claims.jti as string, compact)),
        10,
      )
      return { status: 204 }
    }
    const poll = /^\/ssf\/poll\/(.+)$/.exec(path)
    if (poll && req.method === 'POST') {
      const stream = this.streams.get(poll[1]!)!
      this.pollTokens.push(req.headers.authorization!.slice(7))
      const body = JSON.parse(text)
      for (const jti of body.ack ?? []) {
        stream.acks.push(jti)
        stream.queue.delete(jti)
      }
      for (const [jti, e] of Object.entries(body.setErrs ?? {})) {
        stream.setErrs[jti] = e as { err: string }
        stream.queue.delete(jti)
      }
      if (stream.queue.size === 0 && body.returnImmediately !== true && body.maxEvents !== 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000)
          this.#pollWaiters.push(() => {
            clearTimeout(timer)
            resolve()
          })
        })
      }
      const sets =
        body.maxEvents === 0
          ? {}
          : Object.fromEntries([...stream.queue].slice(0, body.maxEvents ?? 100))
      return { status: 200, body: { sets, moreAvailable: false } }
    }
    return { status: 404 }
  }
}

let redis: TestRedis
let broker: TestBroker
let sink: TestReceiver
let idp: FakeIdp

before(async () => {
  redis = await startTestRedis()
  const port = await freePort()
  broker = await startTestBroker(redis.url, {
    SSF_BROKER_PORT: String(port),
    SSF_BROKER_ISSUER: `http://127.0.0.1:${port}`,
    SSF_BROKER_SECRETS_KEY: 'test-secrets-key-0123456789abcdef0123',
  })
  sink = await startReceiver()
  const receiver = await broker.api.createClient(['receiver'])
  await broker.api.createPushStream(receiver.token, sink.url)
  idp = new FakeIdp()
  await idp.start()
})

after(async () => {
  await idp.close()
  await sink.close()
  await broker.close()
  await redis.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
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
const setsFor = (txn: string) =>
  sink.received.map((p) => decodeJwt(p.body) as any).filter((c) => c.txn === txn)
const waitForTxn = (txn: string, count = 1) =>
  until(`${count} SET(s) with txn ${txn}`, () =>
    setsFor(txn).length >= count ? setsFor(txn) : undefined,
  )
const upstream = async (id: string) =>
  (await broker.api.request('GET', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).body
const clientCredentials = () => ({
  type: 'client_credentials',
  token_endpoint: `${new URL(idp.issuer).origin}/oauth/token`,
  client_id: CLIENT.id,
  client_secret: CLIENT.secret,
  scope: 'ssf.manage ssf.read',
})

test('push from a jose-built IdP (RS256 and ES256): verified, re-signed, de-duplicated; bad SETs refused with RFC 8935 codes', async () => {
  const res = await broker.api.request('POST', '/admin/upstreams', {
    token: ADMIN_TOKEN,
    json: {
      issuer: idp.issuer,
      delivery: 'push',
      authorization: clientCredentials(),
      events_requested: [`${CAEP}session-revoked`, `${CAEP}credential-change`],
    },
  })
  assert.equal(res.status, 201, res.text)
  assert.ok(!res.text.includes(CLIENT.secret), 'the client secret is never returned')
  assert.deepEqual(res.body.authorization, {
    type: 'client_credentials',
    token_endpoint: clientCredentials().token_endpoint,
    client_id: CLIENT.id,
    scope: 'ssf.manage ssf.read',
  })
  const stored = (await redis.client.hget('ssf:{upstreams}:rec', res.body.upstream_id))!
  assert.ok(!stored.includes(CLIENT.secret), 'the client secret is sealed at rest')
  assert.equal(idp.tokenRequests.length, 1)
  assert.match(idp.tokenRequests[0]!.body, /scope=ssf\.manage\+ssf\.read/)
  assert.ok(
    idp.tokens.has(idp.managementAuth[0]!.slice(7)),
    'the stream was created with the fetched token',
  )
  const id = res.body.upstream_id
  const stream = [...idp.streams.values()].find(
    (s) => s.delivery.endpoint_url === res.body.endpoint_url,
  )!
  assert.ok(stream, 'the IdP stream pushes to the broker')
  await until('verification', async () => (await upstream(id)).verified_at)

  const rs = idp.set(`${CAEP}session-revoked`, {
    event_timestamp: 1_700_000_000,
    reason_admin: { en: 'risk' },
  })
  const es = idp.set(`${CAEP}credential-change`, {
    event_timestamp: 1_700_000_001,
    credential_type: 'password',
    change_type: 'update',
  })
  const rsCompact = await idp.sign(rs, 'RS256')
  assert.equal((await idp.push(stream, rsCompact)).status, 202)
  assert.equal((await idp.push(stream, await idp.sign(es, 'ES256'))).status, 202)
  const [fromRs] = await waitForTxn(rs.txn as string)
  const [fromEs] = await waitForTxn(es.txn as string)
  assert.equal(fromRs.iss, broker.issuer)
  assert.deepEqual(fromRs.sub_id, rs.sub_id)
  assert.deepEqual(fromRs.events[`${CAEP}session-revoked`].reason_admin, { en: 'risk' })
  assert.equal(fromEs.iss, broker.issuer)
  assert.notEqual(fromRs.jti, rs.jti, "a SET of the broker's own")

  // Replays and refusals: each answered, none fanned out.
  assert.equal((await idp.push(stream, rsCompact)).status, 202, 'a replay is acknowledged')
  const foreign = (await generateKeyPair('RS256')).privateKey
  const refusals: [string, Promise<string>, string?][] = [
    [
      'invalid_issuer',
      idp.sign(
        idp.set(`${CAEP}session-revoked`, {}, { iss: 'https://evil.example.com', txn: 'bad' }),
      ),
    ],
    [
      'invalid_audience',
      idp.sign(idp.set(`${CAEP}session-revoked`, {}, { aud: 'someone-else', txn: 'bad' }), 'ES256'),
    ],
    [
      'invalid_key',
      idp.sign(idp.set(`${CAEP}session-revoked`, {}, { txn: 'bad' }), 'RS256', {}, foreign),
    ],
    [
      'invalid_request',
      idp.sign(idp.set(`${CAEP}session-revoked`, {}, { sub: 'carol', txn: 'bad' })),
    ],
    [
      'invalid_request',
      idp.sign(idp.set(`${CAEP}session-revoked`, {}, { txn: 'bad' }), 'RS256', { typ: 'JWT' }),
    ],
    [
      'invalid_request',
      idp.sign(idp.set(`${CAEP}session-revoked`, { not_a_caep_member: 1 }, { txn: 'bad' })),
    ],
    [
      'invalid_request',
      idp.sign(
        idp.set(
          `${CAEP}session-revoked`,
          {},
          {
            txn: 'bad',
            events: {
              [`${CAEP}session-revoked`]: {},
              [`${CAEP}token-claims-change`]: { claims: { a: 1 } },
            },
          },
        ),
      ),
    ],
    [
      'authentication_failed',
      idp.sign(idp.set(`${CAEP}session-revoked`, {}, { txn: 'bad' })),
      'Bearer wrong',
    ],
  ]
  for (const [err, compact, authorization] of refusals) {
    const answer = await idp.push(stream, await compact, authorization)
    assert.equal(answer.status, 400, err)
    assert.equal(answer.body.err, err)
    assert.equal(typeof answer.body.description, 'string')
  }

  // While the broker's Redis does not answer, a push is not acknowledged (503: the IdP retries); the
  // retry after it is back is ingested.
  const during = idp.set(`${CAEP}session-revoked`, {})
  const duringCompact = await idp.sign(during, 'ES256')
  redis.pause()
  let outage
  try {
    outage = await idp.push(stream, duringCompact)
  } finally {
    redis.resume()
  }
  assert.equal(outage.status, 503)
  assert.equal(outage.body.err, 'temporarily_unavailable')
  assert.equal((await idp.push(stream, duringCompact)).status, 202)
  await waitForTxn(during.txn as string)

  // The upstream pauses its stream: its status here follows; nothing is fanned out.
  const paused = idp.set(
    `${SSF}stream-updated`,
    { status: 'paused', reason: 'maintenance' },
    { sub_id: { format: 'opaque', id: stream.stream_id }, txn: 'status-change' },
  )
  assert.equal((await idp.push(stream, await idp.sign(paused))).status, 202)
  const status = await upstream(id)
  assert.equal(status.status, 'paused')
  assert.equal(status.reason, 'maintenance')

  const sentinel = idp.set(`${CAEP}session-revoked`, {})
  assert.equal((await idp.push(stream, await idp.sign(sentinel))).status, 202)
  await waitForTxn(sentinel.txn as string)
  assert.equal(setsFor(rs.txn as string).length, 1, 'the replay was fanned out once')
  assert.equal(setsFor('bad').length, 0, 'no refused SET reached downstream')
  assert.equal(setsFor('status-change').length, 0, 'stream-updated is not fanned out')
  assert.equal((await upstream(id)).events_received, 4)

  assert.equal(
    (await broker.api.request('DELETE', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).status,
    204,
  )
  assert.equal(stream.deleted, true, 'the stream at the IdP was deleted')
})

test('poll from the IdP: acknowledged once durable, setErrs for refused SETs, token refreshed before it expires', async () => {
  idp.tokenLifetimeSeconds = 2
  const issuedBefore = idp.tokenRequests.length
  const res = await broker.api.request('POST', '/admin/upstreams', {
    token: ADMIN_TOKEN,
    json: { issuer: idp.issuer, delivery: 'poll', authorization: clientCredentials() },
  })
  assert.equal(res.status, 201, res.text)
  const id = res.body.upstream_id
  const stream = idp.streams.get(res.body.stream_id)!
  assert.equal(stream.delivery.method, POLL)
  await until('verification by poll', async () => (await upstream(id)).verified_at)

  const good = [
    idp.set(`${CAEP}session-revoked`, {}),
    idp.set(`${CAEP}session-revoked`, { reason_user: { en: 'bye' } }),
  ]
  const bad = idp.set(`${CAEP}session-revoked`, { unknown_member: true })
  idp.enqueue(stream, good[0]!.jti as string, await idp.sign(good[0]!, 'RS256'))
  idp.enqueue(stream, good[1]!.jti as string, await idp.sign(good[1]!, 'ES256'))
  idp.enqueue(stream, bad.jti as string, await idp.sign(bad))
  for (const set of good) await waitForTxn(set.txn as string)
  await until('acks', () =>
    good.every((s) => stream.acks.includes(s.jti as string)) ? true : undefined,
  )
  await until('setErrs', () => stream.setErrs[bad.jti as string])
  assert.equal(stream.setErrs[bad.jti as string]!.err, 'invalid_request')
  assert.ok(!stream.acks.includes(bad.jti as string))

  // Tokens: one for the registration, one for the poll loop, then the loop's replacement, fetched before
  // the 2 s token runs out. Polling goes on past the first loop token's expiry; the IdP never refuses one.
  const refreshed = await until('a refreshed token in use', () => {
    const third = idp.issued[issuedBefore + 2]
    return third !== undefined && idp.pollTokens.includes(third) ? third : undefined
  })
  const firstLoopToken = idp.issued[issuedBefore + 1]!
  assert.ok(idp.pollTokens.includes(firstLoopToken) && refreshed !== firstLoopToken)
  await until('the first loop token to expire', () =>
    Date.now() > idp.tokens.get(firstLoopToken)! + 100 ? true : undefined,
  )
  const later = idp.set(`${CAEP}session-revoked`, {})
  idp.enqueue(stream, later.jti as string, await idp.sign(later, 'ES256'))
  await waitForTxn(later.txn as string)
  assert.equal(idp.unauthorized, 0)
  assert.ok(
    stream.acks.includes(later.jti as string) ||
      (await until('ack', () => (stream.acks.includes(later.jti as string) ? true : undefined))),
  )

  assert.equal(
    (await broker.api.request('DELETE', `/admin/upstreams/${id}`, { token: ADMIN_TOKEN })).status,
    204,
  )
  assert.equal(stream.deleted, true)
})
