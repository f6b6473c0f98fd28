/**
 * OAuth 2.0 JWT access tokens from an external authorization server (CAEP interop): signature, iss, aud,
 * exp; ssf.read vs ssf.manage scopes; 401 challenges; tokens never in the query string. Also: the broker
 * serves its OpenAPI document and the interactive reference page.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const AS_ISSUER = 'https://as.example.test'
const AUDIENCE = 'https://broker.example.test'
let redis: TestRedis
let broker: TestBroker
let jwksServer: Server
let signingKey: CryptoKey
let strangerKey: CryptoKey

before(async () => {
  const pair = await generateKeyPair('RS256')
  signingKey = pair.privateKey
  strangerKey = (await generateKeyPair('RS256')).privateKey
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-1', alg: 'RS256', use: 'sig' }
  jwksServer = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
  )
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r))
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, {
    SSF_BROKER_OAUTH_ISSUER: AS_ISSUER,
    SSF_BROKER_OAUTH_JWKS_URL: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`,
    SSF_BROKER_OAUTH_AUDIENCE: AUDIENCE,
  })
})

after(async () => {
  await broker.close()
  await redis.stop()
  jwksServer.close()
})

function token(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; exp?: string | number; iss?: string; aud?: string } = {},
) {
  return new SignJWT({ client_id: 'rp-42', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'as-1', typ: 'at+jwt' })
    .setIssuer(options.iss ?? AS_ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? signingKey)
}

test('ssf.manage creates streams, ssf.read reads and polls them, the receiver is the token client_id', async () => {
  const manage = await token({ scope: 'ssf.manage ssf.read' })
  const created = await broker.api.request('POST', '/ssf/streams', { token: manage, json: {} })
  assert.equal(created.status, 201, created.text)
  assert.equal(created.body.aud, 'rp-42')
  const read = await token({ scope: 'ssf.read' })
  const got = await broker.api.request('GET', `/ssf/streams?stream_id=${created.body.stream_id}`, {
    token: read,
  })
  assert.equal(got.status, 200)
  const polled = await broker.api.request(
    'POST',
    new URL(created.body.delivery.endpoint_url).pathname,
    { token: read, json: { returnImmediately: true } },
  )
  assert.equal(polled.status, 200)
  assert.deepEqual(polled.body, { sets: {} })
  // Another client of the same authorization server does not see it.
  const other = await token({ client_id: 'rp-7', scope: 'ssf.read' })
  assert.equal(
    (
      await broker.api.request('GET', `/ssf/streams?stream_id=${created.body.stream_id}`, {
        token: other,
      })
    ).status,
    404,
  )
})

test('too little scope is 403 insufficient_scope with a challenge naming the scope', async () => {
  const read = await token({ scope: 'ssf.read' })
  const res = await broker.api.request('POST', '/ssf/streams', { token: read, json: {} })
  assert.equal(res.status, 403)
  assert.equal(res.body.error, 'insufficient_scope')
  assert.match(
    res.headers.get('www-authenticate') ?? '',
    /error="insufficient_scope", scope="ssf.manage"/,
  )
  const none = await token({})
  assert.equal((await broker.api.request('GET', '/ssf/streams', { token: none })).status, 403)
})

test('bad tokens are 401 with a WWW-Authenticate challenge', async () => {
  const cases: [string, string][] = [
    ['foreign key', await token({ scope: 'ssf.read' }, { key: strangerKey })],
    ['expired', await token({ scope: 'ssf.read' }, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['wrong issuer', await token({ scope: 'ssf.read' }, { iss: 'https://evil.example' })],
    ['wrong audience', await token({ scope: 'ssf.read' }, { aud: 'https://someone-else.example' })],
    ['garbage', 'abc.def.ghi'],
  ]
  for (const [name, bad] of cases) {
    const res = await broker.api.request('GET', '/ssf/streams', { token: bad })
    assert.equal(res.status, 401, name)
    assert.equal(res.body.error, 'invalid_token', name)
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, name)
  }
})

test('OAuth tokens do not open admin or emitter endpoints; tokens in the query string are refused', async () => {
  const manage = await token({ scope: 'ssf.manage ssf.read' })
  assert.equal((await broker.api.request('GET', '/admin/clients', { token: manage })).status, 401)
  assert.equal(
    (
      await broker.api.emit(manage, {
        type: 'caep/session-revoked',
        subject: { format: 'opaque', id: 'x' },
      })
    ).status,
    401,
  )
  const res = await broker.api.request('GET', `/ssf/streams?access_token=${manage}`)
  assert.equal(res.status, 400)
})

test('/openapi.json and /docs are served', async () => {
  const spec = await broker.api.request('GET', '/openapi.json')
  assert.equal(spec.status, 200)
  assert.equal(spec.body.openapi, '3.1.0')
  assert.deepEqual(spec.body.servers, [{ url: broker.issuer }])
  assert.ok(spec.body.paths['/ssf/streams'])
  const docs = await broker.api.request('GET', '/docs')
  assert.equal(docs.status, 200)
  assert.match(docs.headers.get('content-type') ?? '', /text\/html/)
  assert.match(docs.text, /openapi\.json/)
})
