/**
 * End to end against the real broker (in-process, real Redis, real push over loopback): a resource server
 * protected by the receiver SDK's enforcement middleware, subscribed by push; an agent calls it every few
 * milliseconds with a token acting for a user (RFC 8693 `act`) and holds an open SSE stream; a SOC client
 * emits `caep/session-revoked` for that user. The next call is refused with 401 invalid_token and the open
 * stream is closed. The time from the emit to the refusal is printed, not asserted.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { SignJWT, generateKeyPair, jwtVerify, type CryptoKey } from 'jose'
import {
  createHonoPushHandler,
  createReceiver,
  createRevocationIndex,
  createStreamClient,
  revocationMiddleware,
  type RevocationEnv,
  type RevocationHookInfo,
  type RevocationRecord,
  type TokenClaims,
} from '../src/receiver/index.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const IDP = 'https://idp.example.test'
const AGENT = 'spiffe://example.test/agent/research-assistant'
const ORCHESTRATOR = 'spiffe://example.test/agent/orchestrator'

let redis: TestRedis
let broker: TestBroker
let rs: ServerType
let rsUrl = ''
let idpKey: { privateKey: CryptoKey; publicKey: CryptoKey }
const index = createRevocationIndex()
const hooks: RevocationHookInfo[] = []
const recorded: RevocationRecord[] = []
const recordedAt = new Map<string, number>() // txn -> performance.now() when the index recorded it

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
  idpKey = await generateKeyPair('ES256')
  index.subscribe((r) => {
    recorded.push(r)
    if (r.txn) recordedAt.set(r.txn, performance.now())
  })
})

after(async () => {
  if (rs) {
    ;(rs as import('node:http').Server).closeAllConnections?.()
    await new Promise<void>((r) => rs.close(() => r()))
  }
  await broker?.close()
  await redis?.stop()
})

/** The authorization server's delegated token: the agent acting for `sub`, via the orchestrator. */
function agentToken(sub: string): Promise<string> {
  return new SignJWT({
    sid: `sess-${sub}`,
    client_id: 'agent-runtime',
    act: { sub: AGENT, act: { sub: ORCHESTRATOR } },
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
    .setIssuer(IDP)
    .setSubject(sub)
    .setAudience('https://rs.example.test')
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(idpKey.privateKey)
}

test(
  'an emitted session-revoked refuses the agent on its next call and closes its open stream',
  { timeout: 60_000 },
  async () => {
    // The resource server's receiver client at the broker, and the SOC's emitter client.
    const rsClient = await broker.api.createClient(['receiver'])
    const soc = await broker.api.createClient(['emitter'])
    const pushSecret = `Bearer ${randomUUID()}`

    // The resource server: push endpoint + protected API.
    const receiver = createReceiver({
      issuer: broker.issuer,
      audience: rsClient.audience,
      allowInsecureIssuer: true,
    })
    const app = new Hono<RevocationEnv>()
    app.post(
      '/ssf/events',
      createHonoPushHandler({
        receiver,
        authorization: pushSecret,
        onEvent: (set) => index.apply(set).then(() => undefined),
      }),
    )
    app.use(
      '/api/*',
      revocationMiddleware({
        index,
        verifyToken: async (token) =>
          (
            await jwtVerify(token, idpKey.publicKey, {
              issuer: IDP,
              audience: 'https://rs.example.test',
            })
          ).payload as TokenClaims,
        onRevoked: (info) => hooks.push(info),
      }),
    )
    app.get('/api/data', (c) => c.json({ for: c.get('ssfToken').sub, at: Date.now() }))
    app.get('/api/stream', (c) =>
      streamSSE(c, async (s) => {
        const signal = c.get('ssfSignal')
        let n = 0
        while (!signal.aborted && !s.aborted) {
          await s.writeSSE({ event: 'token', data: String(n++) })
          await s.sleep(20)
        }
      }),
    )
    await new Promise<void>((resolve) => {
      rs = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
        rsUrl = `http://127.0.0.1:${info.port}`
        resolve()
      })
    })

    // Subscribe by push, discovered from the broker's metadata.
    const streams = createStreamClient({ receiver, token: rsClient.token })
    const stream = await streams.ensureStream({
      delivery: {
        method: 'urn:ietf:rfc:8935',
        endpoint_url: `${rsUrl}/ssf/events`,
        authorization_header: pushSecret,
      },
      events_requested: [SESSION_REVOKED],
    })
    const metadata = await receiver.metadata()
    const alice = { format: 'iss_sub', iss: IDP, sub: 'alice' }
    if (metadata.add_subject_endpoint) await streams.addSubject(stream.stream_id, alice)
    // Warm the path (push delivery, discovery, JWKS) with a verification round trip.
    const { delivered } = await streams.triggerVerification(stream.stream_id, { timeoutMs: 15_000 })
    await delivered

    // The agent: an open stream, and a call every few milliseconds, for alice. A second agent works for bob.
    const aliceToken = await agentToken('alice')
    const bobToken = await agentToken('bob')
    const streamRes = await fetch(`${rsUrl}/api/stream`, {
      headers: { authorization: `Bearer ${aliceToken}` },
    })
    assert.equal(streamRes.status, 200)
    let streamText = ''
    let streamClosedAt: number | undefined
    const reader = streamRes.body!.getReader()
    const streamDone = (async () => {
      const decoder = new TextDecoder()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        streamText += decoder.decode(value, { stream: true })
      }
      streamClosedAt = performance.now()
    })()

    interface Call {
      at: number
      status: number
      challenge: string | null
    }
    const calls: { alice: Call[]; bob: Call[] } = { alice: [], bob: [] }
    let stopAgents = false
    const agent = async (who: 'alice' | 'bob', token: string) => {
      while (!stopAgents) {
        const res = await fetch(`${rsUrl}/api/data`, {
          headers: { authorization: `Bearer ${token}` },
        })
        await res.arrayBuffer()
        calls[who].push({
          at: performance.now(),
          status: res.status,
          challenge: res.headers.get('www-authenticate'),
        })
        await new Promise((r) => setTimeout(r, 3))
      }
    }
    const agents = Promise.all([agent('alice', aliceToken), agent('bob', bobToken)])
    const waitFor = async (check: () => boolean, what: string) => {
      const deadline = Date.now() + 15_000
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
        await new Promise((r) => setTimeout(r, 2))
      }
    }

    try {
      await waitFor(
        () => calls.alice.length >= 10 && streamText.includes('data: 3'),
        'the agent to be working',
      )
      assert.ok(
        calls.alice.every((c) => c.status === 200),
        "alice's agent is served before the revocation",
      )

      // The SOC revokes alice's session.
      const emittedAt = performance.now()
      const callsBeforeEmit = calls.alice.length
      const emitted = await broker.api.emit(soc.token, {
        type: 'caep/session-revoked',
        subject: alice,
        event: {
          initiating_entity: 'admin',
          reason_admin: { en: 'Suspicious activity reported by the SOC' },
        },
      })
      assert.equal(emitted.status, 202, emitted.text)
      const acceptedAt = performance.now()

      await waitFor(
        () => calls.alice.slice(callsBeforeEmit).some((c) => c.status !== 200),
        'the refusal',
      )
      const refusal = calls.alice.slice(callsBeforeEmit).find((c) => c.status !== 200)!
      await waitFor(() => streamClosedAt !== undefined, 'the stream to close')
      console.log(`# emit→refusal: ${(refusal.at - emittedAt).toFixed(1)} ms`)
      console.log(`# emit→stream closed: ${(streamClosedAt! - emittedAt).toFixed(1)} ms`)
      const pushedAt = recordedAt.get(emitted.body.txn as string)
      console.log(
        `#   (emit→202 from the broker: ${(acceptedAt - emittedAt).toFixed(1)} ms; emit→SET verified and recorded at the resource server: ${pushedAt === undefined ? '?' : (pushedAt - emittedAt).toFixed(1)} ms)`,
      )

      // The refusal is a 401 invalid_token, and every call after it is refused too.
      assert.equal(refusal.status, 401)
      assert.match(refusal.challenge ?? '', /^Bearer error="invalid_token"/)
      await waitFor(
        () => calls.alice.length >= calls.alice.indexOf(refusal) + 4,
        'more calls after the refusal',
      )
      assert.ok(
        calls.alice.slice(calls.alice.indexOf(refusal)).every((c) => c.status === 401),
        'every later call is refused',
      )

      // The open stream was closed by the revocation, with a final "revoked" event.
      assert.match(streamText, /event: revoked\ndata: \{"error":"invalid_token"/)
      assert.ok(
        hooks.some((h) => h.phase === 'stream' && h.claims.sub === 'alice'),
        'the stream hook ran for alice',
      )

      // Bob's agent is unaffected.
      const bobAfter = calls.bob.filter((c) => c.at > refusal.at)
      await waitFor(
        () => calls.bob.filter((c) => c.at > refusal.at).length >= 3,
        "bob's calls after the refusal",
      )
      assert.ok(
        calls.bob.every((c) => c.status === 200),
        `bob was never refused (${bobAfter.length} calls after alice's refusal)`,
      )

      // What was recorded: alice (from the user subject), with the SET's txn for audit.
      const record = recorded.find((r) => r.txn === emitted.body.txn)
      assert.ok(record, 'the revocation carries the emitted txn')
      assert.deepEqual(record.targets, [{ kind: 'user', iss: IDP, id: 'alice' }])
      assert.equal(record.eventType, SESSION_REVOKED)
    } finally {
      // If the test failed before the stream closed, end it here so nothing keeps the process alive.
      stopAgents = true
      if (streamClosedAt === undefined) await reader.cancel().catch(() => {})
      await agents
      await streamDone.catch(() => {})
    }
  },
)
