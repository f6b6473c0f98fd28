/**
 * Example resource server protected by the receiver SDK (`@ssf-broker/receiver`).
 *
 * - Subscribes to the broker by push (RFC 8935): `POST /ssf/events`, with a per-run Authorization secret.
 * - Protects `/api/*` with the enforcement middleware: revoked tokens get 401 invalid_token, open streams
 *   (`GET /api/stream`, SSE) are closed the moment a matching revocation arrives.
 * - Verifies access tokens with `TOKEN_ISSUER` + `TOKEN_JWKS_URL` if set; otherwise runs a built-in demo
 *   token issuer (`POST /demo/token`, `GET /demo/jwks.json`). The demo issuer is for trying things out only.
 *
 *   npx tsx examples/resource-server/index.ts
 *
 * In this repository `@ssf-broker/receiver` is the workspace package under packages/receiver (run
 * `npm run build` first); elsewhere, `npm install @ssf-broker/receiver hono @hono/node-server`.
 *
 * Environment:
 *   SSF_BROKER_URL          the broker's issuer URL (default http://localhost:8080)
 *   SSF_RECEIVER_TOKEN      this server's receiver-client token at the broker (required)
 *   SSF_RECEIVER_AUDIENCE   that client's audience (default urn:example:resource-server)
 *   PORT                    port to listen on (default 9000)
 *   PUBLIC_URL              URL the broker pushes to (default http://127.0.0.1:$PORT)
 *   TOKEN_ISSUER, TOKEN_JWKS_URL, TOKEN_AUDIENCE   your authorization server (optional)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import {
  SignJWT,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose'
import {
  REVOKING_EVENT_TYPES,
  createHonoPushHandler,
  createReceiver,
  createRevocationIndex,
  createStreamClient,
  revocationMiddleware,
  type RevocationEnv,
  type TokenClaims,
} from '@ssf-broker/receiver'

const env = process.env
const brokerUrl = env.SSF_BROKER_URL ?? 'http://localhost:8080'
const receiverToken = env.SSF_RECEIVER_TOKEN
const audience = env.SSF_RECEIVER_AUDIENCE ?? 'urn:example:resource-server'
const port = Number(env.PORT ?? 9000)
const publicUrl = (env.PUBLIC_URL ?? `http://127.0.0.1:${port}`).replace(/\/$/, '')
if (!receiverToken) {
  console.error(
    'SSF_RECEIVER_TOKEN is required: the token of a receiver client at the broker (see README, "Receiver SDK").',
  )
  process.exit(1)
}

const log = (message: string) =>
  console.log(`${new Date().toISOString()} [resource-server] ${message}`)

// Access tokens: your authorization server, or the built-in demo issuer.
const demo = !env.TOKEN_ISSUER
const tokenIssuer = env.TOKEN_ISSUER ?? `${publicUrl}/demo`
const tokenAudience = env.TOKEN_AUDIENCE ?? `${publicUrl}/api`
const demoKey = demo ? await generateKeyPair('ES256', { extractable: true }) : undefined
const demoJwk = demoKey
  ? { ...(await exportJWK(demoKey.publicKey)), kid: 'demo', alg: 'ES256' }
  : undefined
const keys: JWTVerifyGetKey = demoJwk
  ? createLocalJWKSet({ keys: [demoJwk] })
  : createRemoteJWKSet(new URL(env.TOKEN_JWKS_URL ?? `${tokenIssuer}/jwks.json`))

// The SSF receiver: discovery, JWKS, strict SET verification, replay protection.
const insecure = brokerUrl.startsWith('http:')
const receiver = createReceiver({ issuer: brokerUrl, audience, allowInsecureIssuer: insecure })
const index = createRevocationIndex({ retentionSeconds: 24 * 3600 })
index.subscribe((r) =>
  log(
    `revocation recorded: ${r.targets.map((t) => `${t.kind} ${t.id}`).join(' + ')} (${r.eventType?.split('/').pop()}, txn ${r.txn ?? '-'})`,
  ),
)

const pushSecret = `Bearer ${randomBytes(24).toString('base64url')}`
const app = new Hono<RevocationEnv>()

app.post(
  '/ssf/events',
  createHonoPushHandler({
    receiver,
    authorization: pushSecret,
    onEvent: async (set) => {
      log(`SET ${set.type.split('/').pop()} about ${JSON.stringify(set.subject)}`)
      await index.apply(set)
    },
    onError: (error) =>
      log(`push refused: ${error instanceof Error ? error.message : String(error)}`),
  }),
)

app.use(
  '/api/*',
  revocationMiddleware({
    index,
    verifyToken: async (token) =>
      (await jwtVerify(token, keys, { issuer: tokenIssuer, audience: tokenAudience }))
        .payload as TokenClaims,
    onRevoked: ({ claims, phase }) =>
      log(
        `token of ${claims.sub}${claims.act ? ` (acting: ${JSON.stringify(claims.act)})` : ''} refused (${phase})`,
      ),
  }),
)

app.get('/api/data', (c) => c.json({ hello: c.get('ssfToken').sub, at: new Date().toISOString() }))

// A long-lived stream (think: an LLM response, a tool's progress): closed by the middleware on revocation.
app.get('/api/stream', (c) =>
  streamSSE(c, async (s) => {
    const signal = c.get('ssfSignal')
    let n = 0
    while (!signal.aborted && !s.aborted) {
      await s.writeSSE({
        event: 'tick',
        data: JSON.stringify({ n: n++, for: c.get('ssfToken').sub }),
      })
      await s.sleep(500)
    }
  }),
)

if (demoKey && demoJwk) {
  app.get('/demo/jwks.json', (c) => c.json({ keys: [demoJwk] }))
  // Demo only: mints a delegated token for `sub`, with the RFC 8693 `act` chain given.
  app.post('/demo/token', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as {
      sub?: string
      act?: Record<string, unknown>
      client_id?: string
    }
    const token = await new SignJWT({
      ...(body.act ? { act: body.act } : {}),
      client_id: body.client_id ?? 'demo-agent',
      sid: randomUUID(),
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'demo', typ: 'at+jwt' })
      .setIssuer(tokenIssuer)
      .setAudience(tokenAudience)
      .setSubject(body.sub ?? 'alice@example.com')
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(demoKey.privateKey)
    return c.json({ access_token: token, token_type: 'Bearer', expires_in: 3600 })
  })
}

const server = serve({ fetch: app.fetch, port, hostname: '0.0.0.0' }, () =>
  log(`listening on ${publicUrl}${demo ? ' (demo token issuer at /demo/token)' : ''}`),
)

// Subscribe by push once listening: the broker may verify the endpoint at once.
try {
  await receiver.ready() // discovery and keys now, not when the first SET arrives
  const streams = createStreamClient({ receiver, token: receiverToken })
  const stream = await streams.ensureStream({
    delivery: {
      method: 'urn:ietf:rfc:8935',
      endpoint_url: `${publicUrl}/ssf/events`,
      authorization_header: pushSecret,
    },
    events_requested: [...REVOKING_EVENT_TYPES],
  })
  log(
    `push stream ${stream.stream_id}: ${stream.events_delivered.length} event types delivered to ${publicUrl}/ssf/events`,
  )
} catch (error) {
  log(
    `could not subscribe at the broker: ${error instanceof Error ? error.message : String(error)}`,
  )
  server.close()
  process.exit(1)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log('shutting down')
    server.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  })
}
