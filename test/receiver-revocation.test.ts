/**
 * The receiver SDK's revocation side: the revocation index (one contract, run against the in-memory and
 * the Redis implementations), the replay stores, and the hono enforcement middleware (401 with
 * `WWW-Authenticate: Bearer error="invalid_token"`, live streams closed, in-flight requests ended).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { SignJWT, generateKeyPair, jwtVerify, type CryptoKey } from 'jose'
import { Redis } from 'ioredis'
import {
  MemoryReplayStore,
  RedisReplayStore,
  TokenRevokedError,
  createRedisRevocationIndex,
  createRevocationIndex,
  revocationMiddleware,
  type ReplayStore,
  type RevocationEnv,
  type RevocationHookInfo,
  type RevocationIndex,
  type SubjectIdentifier,
  type TokenClaims,
  type VerifiedSet,
} from '../src/receiver/index.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const IDP = 'https://idp.example'
const AGENT = 'spiffe://example.org/agent/planner'
const ORCHESTRATOR = 'spiffe://example.org/agent/orchestrator'

const now = () => Math.floor(Date.now() / 1000)

/** A verified SET as `receiver.verify` returns it (the index does not re-verify). */
function set(
  type: string,
  subject: SubjectIdentifier,
  event: Record<string, unknown> = {},
  iat = now(),
): VerifiedSet {
  return {
    jti: randomUUID(),
    iss: 'https://broker.example',
    aud: 'rs',
    iat,
    txn: randomUUID(),
    type: `${CAEP}${type}`,
    subject,
    event,
    header: {},
    claims: { iat },
  }
}

const aliceToken = (overrides: Partial<TokenClaims> = {}): TokenClaims => ({
  iss: IDP,
  sub: 'alice',
  sid: 'sess-1',
  client_id: 'agent-app',
  jti: randomUUID(),
  iat: now() - 60,
  ...overrides,
})

let redis: TestRedis
const clients: Redis[] = []
const indexes: RevocationIndex[] = []
before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  // Also when a test failed before closing its index: nothing may keep reconnecting after Redis stops.
  for (const index of indexes) await index.close()
  for (const c of clients) c.disconnect()
  await redis.stop()
})

function track<T extends RevocationIndex>(index: T): T {
  indexes.push(index)
  return index
}

function redisClient(): Redis {
  const c = new Redis({ path: redis.url.replace('unix://', ''), maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  clients.push(c)
  return c
}

const implementations: [string, (retentionSeconds?: number) => RevocationIndex][] = [
  [
    'memory',
    (retentionSeconds) =>
      track(createRevocationIndex(retentionSeconds ? { retentionSeconds } : {})),
  ],
  [
    'redis',
    (retentionSeconds) =>
      track(
        createRedisRevocationIndex({
          redis: redisClient(),
          prefix: `t:${randomUUID()}:`,
          ...(retentionSeconds ? { retentionSeconds } : {}),
        }),
      ),
  ],
]

for (const [name, make] of implementations) {
  describe(`revocation index contract: ${name}`, () => {
    test('session-revoked for a user refuses tokens issued at or before it, for every agent acting for the user', async () => {
      const index = make()
      const revokedAt = now() - 10
      const [record] = await index.apply(
        set(
          'session-revoked',
          { format: 'iss_sub', iss: IDP, sub: 'alice' },
          { event_timestamp: revokedAt },
        ),
      )
      assert.ok(record)
      assert.deepEqual(record.targets, [{ kind: 'user', iss: IDP, id: 'alice' }])
      assert.equal(record.revokedAt, revokedAt)
      assert.ok(await index.check(aliceToken({ iat: revokedAt - 100 })), 'issued before')
      assert.ok(await index.check(aliceToken({ iat: revokedAt })), 'issued at the same second')
      assert.ok(
        await index.check(aliceToken({ iat: undefined } as unknown as Partial<TokenClaims>)),
        'no iat: refused',
      )
      assert.ok(
        await index.check(
          aliceToken({ iat: revokedAt - 5, act: { sub: AGENT, act: { sub: ORCHESTRATOR } } }),
        ),
        'an agent acting for alice',
      )
      assert.equal(
        await index.check(aliceToken({ iat: revokedAt + 1 })),
        undefined,
        'issued after the revocation',
      )
      assert.equal(await index.check(aliceToken({ sub: 'bob' })), undefined, 'another user')
      assert.equal(
        await index.check(aliceToken({ iss: 'https://other-idp.example' })),
        undefined,
        'same sub at another issuer',
      )
      await index.close()
    })

    test('an agent identity is revoked wherever it acts in the act chain, or is the client', async () => {
      const index = make()
      await index.apply(set('session-revoked', { format: 'uri', uri: ORCHESTRATOR }))
      assert.ok(
        await index.check(aliceToken({ act: { sub: AGENT, act: { sub: ORCHESTRATOR } } })),
        'nested actor',
      )
      assert.ok(await index.check(aliceToken({ act: { sub: ORCHESTRATOR } })), 'current actor')
      assert.ok(await index.check(aliceToken({ client_id: ORCHESTRATOR })), 'client_id')
      assert.equal(
        await index.check(aliceToken({ act: { sub: AGENT } })),
        undefined,
        'another agent',
      )
      await index.close()
    })

    test('a complex subject is one principal: {user, session} revokes that session only; {user, agent} that agent for that user only', async () => {
      const index = make()
      await index.apply(
        set('session-revoked', {
          format: 'complex',
          user: { format: 'iss_sub', iss: IDP, sub: 'alice' },
          session: { format: 'opaque', id: 'sess-1' },
        }),
      )
      assert.ok(await index.check(aliceToken()))
      assert.equal(
        await index.check(aliceToken({ sid: 'sess-2' })),
        undefined,
        'another session of alice',
      )
      assert.equal(
        await index.check(aliceToken({ sub: 'bob' })),
        undefined,
        'another user with the same sid string',
      )
      await index.apply(
        set('session-revoked', {
          format: 'complex',
          user: { format: 'iss_sub', iss: IDP, sub: 'bob' },
          agent: { format: 'uri', uri: AGENT },
        }),
      )
      assert.ok(await index.check({ iss: IDP, sub: 'bob', iat: now() - 5, act: { sub: AGENT } }))
      assert.equal(
        await index.check({ iss: IDP, sub: 'bob', iat: now() - 5 }),
        undefined,
        'bob without the agent',
      )
      assert.equal(
        await index.check({ iss: IDP, sub: 'carol', iat: now() - 5, act: { sub: AGENT } }),
        undefined,
        'the agent for carol',
      )
      await index.close()
    })

    test('jwt_id revokes one token whatever its iat; application revokes a client; email matches case-insensitively', async () => {
      const index = make()
      const jti = randomUUID()
      await index.apply(
        set(
          'token-claims-change',
          { format: 'jwt_id', iss: IDP, jti },
          { claims: { scope: 'read' } },
        ),
      )
      assert.ok(await index.check(aliceToken({ jti, iat: now() + 3600 })))
      assert.equal(await index.check(aliceToken()), undefined)
      await index.apply(
        set('session-revoked', {
          format: 'complex',
          application: { format: 'opaque', id: 'rogue-app' },
        }),
      )
      assert.ok(await index.check(aliceToken({ client_id: 'rogue-app' })))
      assert.ok(await index.check(aliceToken({ act: { sub: 'x', client_id: 'rogue-app' } })))
      await index.apply(set('session-revoked', { format: 'email', email: 'Dana@Example.com' }))
      assert.ok(
        await index.check({ iss: IDP, sub: 'u-42', email: 'dana@example.COM', iat: now() - 5 }),
      )
      assert.ok(await index.check({ iss: IDP, sub: 'DANA@example.com', iat: now() - 5 }))
      await index.close()
    })

    test('only revoking events are recorded; the event time never exceeds the SET iat; the later time wins', async () => {
      const index = make()
      assert.deepEqual(
        await index.apply(set('session-established', { format: 'iss_sub', iss: IDP, sub: 'erin' })),
        [],
      )
      assert.deepEqual(
        await index.apply(
          set(
            'credential-change',
            { format: 'iss_sub', iss: IDP, sub: 'erin' },
            { credential_type: 'password', change_type: 'update' },
          ),
        ),
        [],
      )
      assert.equal(
        (
          await index.apply(
            set(
              'credential-change',
              { format: 'iss_sub', iss: IDP, sub: 'erin' },
              { credential_type: 'app', change_type: 'revoke' },
            ),
          )
        ).length,
        1,
      )
      const iat = now() - 100
      const [capped] = await index.apply(
        set(
          'session-revoked',
          { format: 'iss_sub', iss: IDP, sub: 'frank' },
          { event_timestamp: iat + 10_000 },
          iat,
        ),
      )
      assert.equal(capped!.revokedAt, iat, 'capped at the SET iat')
      const [later] = await index.apply(
        set(
          'session-revoked',
          { format: 'iss_sub', iss: IDP, sub: 'frank' },
          { event_timestamp: iat - 50 },
          iat,
        ),
      )
      assert.equal(
        later!.revokedAt,
        iat,
        'an older event for the same targets keeps the later time',
      )
      assert.ok(await index.check({ iss: IDP, sub: 'frank', iat: iat - 1 }))
      await index.close()
    })

    test('entries expire after the retention', async () => {
      const index = make(0.2)
      await index.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'gina' }))
      assert.ok(await index.check({ iss: IDP, sub: 'gina', iat: now() - 5 }))
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(await index.check({ iss: IDP, sub: 'gina', iat: now() - 5 }), undefined)
      await index.close()
    })

    test('watch: live work stops the moment a matching revocation is recorded, and only then', async () => {
      const index = make()
      const seen: string[] = []
      index.subscribe((r) => seen.push(r.targets[0]!.id))
      const alice = index.watch(aliceToken({ act: { sub: AGENT } }))
      const bob = index.watch({ iss: IDP, sub: 'bob', iat: now() - 5 })
      await index.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'alice' }))
      assert.equal(alice.signal.aborted, true)
      assert.ok(alice.signal.reason instanceof TokenRevokedError)
      assert.equal(alice.signal.reason.code, 'ERR_TOKEN_REVOKED')
      assert.equal(alice.signal.reason.revocation.targets[0]!.id, 'alice')
      assert.equal(bob.signal.aborted, false)
      assert.deepEqual(seen, ['alice'])
      bob.release()
      await index.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'bob' }))
      assert.equal(bob.signal.aborted, false, 'a released watch is not aborted')
      await index.close()
    })
  })
}

test('redis: a revocation recorded by one process refuses tokens and stops live work in another', async () => {
  const prefix = `t:${randomUUID()}:`
  const a = track(createRedisRevocationIndex({ redis: redisClient(), prefix }))
  const b = track(createRedisRevocationIndex({ redis: redisClient(), prefix }))
  await b.ready()
  const watch = b.watch(aliceToken({ act: { sub: AGENT } }))
  const aborted = new Promise<unknown>((resolve) =>
    watch.signal.addEventListener('abort', () => resolve(watch.signal.reason), { once: true }),
  )
  await a.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'alice' }))
  assert.ok(await b.check(aliceToken()), 'process B refuses the token')
  const reason = await aborted
  assert.ok(reason instanceof TokenRevokedError, 'process B stopped its live work')
  await a.close()
  await b.close()
})

describe('replay stores', () => {
  const stores: [string, () => ReplayStore][] = [
    ['memory', () => new MemoryReplayStore({ maxEntries: 3 })],
    ['redis', () => new RedisReplayStore({ redis: redisClient(), prefix: `r:${randomUUID()}:` })],
  ]
  for (const [name, make] of stores) {
    test(`${name}: remember once, forget, expire`, async () => {
      const store = make()
      assert.equal(await store.remember('k1', 10_000), true)
      assert.equal(await store.remember('k1', 10_000), false)
      await store.forget('k1')
      assert.equal(await store.remember('k1', 10_000), true)
      assert.equal(await store.remember('short', 50), true)
      await new Promise((r) => setTimeout(r, 100))
      assert.equal(await store.remember('short', 50), true, 'expired')
    })
  }
  test('memory: the oldest entries are dropped beyond maxEntries', async () => {
    const store = new MemoryReplayStore({ maxEntries: 2 })
    for (const k of ['a', 'b', 'c']) await store.remember(k, 10_000)
    assert.equal(store.size, 2)
    assert.equal(await store.remember('a', 10_000), true, 'a was dropped')
  })
})

describe('enforcement middleware', () => {
  let asKey: { privateKey: CryptoKey; publicKey: CryptoKey }
  let index: RevocationIndex
  let hooks: RevocationHookInfo[]
  let toolSignal: AbortSignal | undefined
  let app: Hono<RevocationEnv>
  let failIndex = false

  const mint = (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(IDP)
      .setAudience('api')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(asKey.privateKey)

  before(async () => {
    asKey = await generateKeyPair('ES256')
    index = createRevocationIndex()
    hooks = []
    const guarded: RevocationIndex = {
      ...index,
      revoke: (r) => index.revoke(r),
      apply: (s) => index.apply(s),
      check: (c) => (failIndex ? Promise.reject(new Error('down')) : index.check(c)),
      watch: (c) => index.watch(c),
      subscribe: (l) => index.subscribe(l),
      close: () => index.close(),
    }
    app = new Hono<RevocationEnv>()
    app.use(
      '/api/*',
      revocationMiddleware({
        index: guarded,
        realm: 'api',
        verifyToken: async (token) =>
          (await jwtVerify(token, asKey.publicKey, { issuer: IDP, audience: 'api' }))
            .payload as TokenClaims,
        onRevoked: (info) => hooks.push(info),
      }),
    )
    app.get('/api/me', (c) => c.json({ sub: c.get('ssfToken').sub }))
    app.get('/api/tool', async (c) => {
      // An in-flight tool call that honours the signal.
      toolSignal = c.get('ssfSignal')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000)
        toolSignal!.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      return c.json({ done: true })
    })
    app.get('/api/stream', (c) =>
      streamSSE(c, async (s) => {
        const signal = c.get('ssfSignal')
        let i = 0
        while (!signal.aborted && !s.aborted && i < 500) {
          await s.writeSSE({ data: String(i++) })
          await s.sleep(10)
        }
      }),
    )
  })

  const get = async (path: string, token?: string) =>
    app.request(path, token ? { headers: { authorization: `Bearer ${token}` } } : {})

  test('no token → 401 with a bare Bearer challenge; an invalid token → 401 invalid_token', async () => {
    const none = await get('/api/me')
    assert.equal(none.status, 401)
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="api"')
    const bad = await get('/api/me', 'not.a.jwt')
    assert.equal(bad.status, 401)
    assert.match(
      bad.headers.get('www-authenticate') ?? '',
      /^Bearer realm="api", error="invalid_token"/,
    )
  })

  test('a valid token passes; once its user is revoked it gets 401 invalid_token', async () => {
    const token = await mint({ sub: 'henry', sid: 's-h', act: { sub: AGENT } })
    const ok = await get('/api/me', token)
    assert.equal(ok.status, 200)
    assert.deepEqual(await ok.json(), { sub: 'henry' })
    await index.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'henry' }))
    const refused = await get('/api/me', token)
    assert.equal(refused.status, 401)
    assert.match(
      refused.headers.get('www-authenticate') ?? '',
      /error="invalid_token", error_description="the access token has been revoked"/,
    )
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_token')
    assert.equal(hooks.at(-1)!.phase, 'refused')
  })

  test('an in-flight request is answered 401 the moment its token is revoked, and its tool call is aborted', async () => {
    const token = await mint({ sub: 'ivy' })
    const pending = get('/api/tool', token)
    await new Promise<void>((r) => {
      const t = setInterval(() => toolSignal && (clearInterval(t), r()), 5)
    })
    await index.apply(set('session-revoked', { format: 'iss_sub', iss: IDP, sub: 'ivy' }))
    const res = await pending
    assert.equal(res.status, 401)
    assert.equal(toolSignal!.aborted, true)
    assert.equal(hooks.at(-1)!.phase, 'request')
  })

  test('an open SSE stream is closed with a final "revoked" event when its token is revoked', async () => {
    const token = await mint({ sub: 'jack', act: { sub: AGENT } })
    const res = await get('/api/stream', token)
    assert.equal(res.status, 200)
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    while (!text.includes('data: 2')) text += decoder.decode((await reader.read()).value)
    await index.apply(set('session-revoked', { format: 'uri', uri: AGENT }))
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value)
    }
    assert.match(text, /event: revoked\ndata: \{"error":"invalid_token"/)
    assert.ok(!text.includes('data: 499'), 'the stream ended early')
    assert.equal(hooks.at(-1)!.phase, 'stream')
  })

  test('the index unreachable → 503 (fail closed by default)', async () => {
    const token = await mint({ sub: 'kim' })
    failIndex = true
    try {
      const res = await get('/api/me', token)
      assert.equal(res.status, 503)
    } finally {
      failIndex = false
    }
  })
})
