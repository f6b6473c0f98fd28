/**
 * OAuth access tokens when the authorization server's JWKS is unreachable or failing: 503 with
 * `Retry-After` for a token that may be valid, 401 for one that cannot be whatever the JWKS holds, never
 * 500. The receiver is the token's `client_id`; `sub` only with SSF_BROKER_OAUTH_SUBJECT_FALLBACK=true.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { freePort, startTestBroker, type TestBroker } from './helpers/broker.js'

const AS_ISSUER = 'https://as.example.test'
const AUDIENCE = 'https://broker.example.test'
let redis: TestRedis
let jwksServer: Server
let jwksMode: 'ok' | 'error' | 'garbage' | 'hang' = 'ok'
let jwksUrl: string
let signingKey: CryptoKey
let jwk: JWK
const brokers: TestBroker[] = []

before(async () => {
  const pair = await generateKeyPair('RS256')
  signingKey = pair.privateKey
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-1', alg: 'RS256', use: 'sig' }
  jwksServer = createServer((_req, res) => {
    if (jwksMode === 'error') return void res.writeHead(500).end('down')
    if (jwksMode === 'garbage')
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>')
    if (jwksMode === 'hang') return // never answers: the fetch times out
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r))
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`
  redis = await startTestRedis()
})

after(async () => {
  for (const b of brokers) await b.close()
  await redis.stop()
  jwksServer.closeAllConnections()
  jwksServer.close()
})

async function brokerWith(extra: Record<string, string>): Promise<TestBroker> {
  const broker = await startTestBroker(redis.url, {
    SSF_BROKER_OAUTH_ISSUER: AS_ISSUER,
    SSF_BROKER_OAUTH_AUDIENCE: AUDIENCE,
    SSF_BROKER_OAUTH_JWKS_URL: jwksUrl,
    ...extra,
  })
  brokers.push(broker)
  return broker
}

function token(
  claims: Record<string, unknown>,
  options: { kid?: string; exp?: string | number; iss?: string; aud?: string } = {},
) {
  return new SignJWT({ scope: 'ssf.manage ssf.read', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'as-1', typ: 'at+jwt' })
    .setIssuer(options.iss ?? AS_ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(signingKey)
}

test('JWKS unreachable (connection refused): a possibly valid token gets 503 with Retry-After; an impossible one 401', async () => {
  const broker = await brokerWith({
    SSF_BROKER_OAUTH_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks`,
  })
  const plausible = await token({ client_id: 'rp-1' }, { kid: 'unknown-kid' })
  const res = await broker.api.request('GET', '/ssf/streams', { token: plausible })
  assert.equal(res.status, 503, res.text)
  assert.equal(res.body.error, 'temporarily_unavailable')
  assert.match(res.headers.get('retry-after') ?? '', /^\d+$/)
  const impossible: [string, string][] = [
    ['wrong issuer', await token({ client_id: 'rp-1' }, { iss: 'https://other.example' })],
    ['wrong audience', await token({ client_id: 'rp-1' }, { aud: 'https://other.example' })],
    ['expired', await token({ client_id: 'rp-1' }, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['no client_id', await token({ sub: 'rp-1' })],
    ['not a JWT payload', 'eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24.c2ln'],
  ]
  for (const [what, bad] of impossible) {
    const r = await broker.api.request('GET', '/ssf/streams', { token: bad })
    assert.equal(r.status, 401, `${what}: ${r.text}`)
    assert.ok(r.headers.get('www-authenticate'), what)
  }
})

test(
  'JWKS answering 500, garbage, or not at all: 503, never 500; once it answers, the token is accepted',
  { timeout: 30_000 },
  async () => {
    const broker = await brokerWith({})
    for (const mode of ['error', 'garbage', 'hang'] as const) {
      jwksMode = mode
      const started = Date.now()
      const res = await broker.api.request('GET', '/ssf/streams', {
        token: await token({ client_id: `rp-${mode}` }, { kid: `kid-${mode}` }),
      })
      assert.equal(res.status, 503, `${mode}: ${res.text}`)
      assert.ok(res.headers.get('retry-after'), mode)
      assert.ok(Date.now() - started <= 5500, `${mode}: answered after ${Date.now() - started} ms`)
    }
    jwksMode = 'ok'
    // jose refetches a JWKS for an unknown kid only after its cooldown; a fresh broker has none.
    const fresh = await brokerWith({})
    const res = await fresh.api.request('GET', '/ssf/streams', {
      token: await token({ client_id: 'rp-ok' }),
    })
    assert.equal(res.status, 200, res.text)
    // With the JWKS reachable, a kid it does not hold is simply a bad token.
    const unknown = await fresh.api.request('GET', '/ssf/streams', {
      token: await token({ client_id: 'rp-ok' }, { kid: 'not-there' }),
    })
    assert.equal(unknown.status, 401, unknown.text)
  },
)

test('the receiver is client_id; a token with only sub is refused unless SSF_BROKER_OAUTH_SUBJECT_FALLBACK=true', async () => {
  jwksMode = 'ok'
  const strict = await brokerWith({})
  const subOnly = await token({ sub: 'rp-sub' })
  const refused = await strict.api.request('POST', '/ssf/streams', { token: subOnly, json: {} })
  assert.equal(refused.status, 401, refused.text)
  // client_id wins over sub: a user token whose sub names a client does not act as it.
  const both = await strict.api.request('POST', '/ssf/streams', {
    token: await token({ client_id: 'rp-real', sub: 'rp-victim' }),
    json: {},
  })
  assert.equal(both.status, 201, both.text)
  assert.equal(both.body.aud, 'rp-real')

  const lenient = await brokerWith({ SSF_BROKER_OAUTH_SUBJECT_FALLBACK: 'true' })
  const accepted = await lenient.api.request('POST', '/ssf/streams', { token: subOnly, json: {} })
  assert.equal(accepted.status, 201, accepted.text)
  assert.equal(accepted.body.aud, 'rp-sub')
})
