/**
 * The resource server of scenario 6 (run as a child with an IPC channel, see resource-server.ts): a hono
 * app on a loopback port built with the receiver SDK as users build one, loaded from the package's built
 * entry (`dist/receiver/index.js`, i.e. `ssf-broker/receiver`):
 *
 * - `POST /ssf/events`: `createHonoPushHandler` (RFC 8935) with a `createReceiver` that discovers the broker
 *   and verifies every SET; `onEvent` applies it to a `createRevocationIndex`.
 * - `GET /api/data`: protected by `revocationMiddleware`, whose `verifyToken` checks the bench IdP's ES256
 *   access tokens (public key given by the parent).
 * - Its push stream is created, and warmed with a verification round trip, through `createStreamClient`.
 *
 * Times are on the high-resolution epoch clock (`performance.timeOrigin + performance.now()`).
 */
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { importJWK, jwtVerify, type JWK } from 'jose'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { randomUUID } from 'node:crypto'
import type * as Sdk from '../../src/receiver/index.js'
import type {
  ResourceServerCommand,
  ResourceServerStart,
  ResourceServerStats,
} from './resource-server-protocol.js'

const now = () => performance.timeOrigin + performance.now()
const PUSH = 'urn:ietf:rfc:8935'

let server: ServerType | undefined
let streams: Sdk.StreamClient | undefined
let streamId: string | undefined
const appliedAt = new Map<string, number>()
const stats: ResourceServerStats = {
  pushes: 0,
  pushErrors: 0,
  pushErrorSample: [],
  revocations: 0,
  refused: 0,
  refusedInFlight: 0,
  tokenErrors: 0,
}

async function start(
  opts: ResourceServerStart,
): Promise<{ url: string; streamId: string; verificationMs: number }> {
  const sdk = (await import(opts.sdkUrl)) as typeof Sdk
  const idpKey = await importJWK(opts.idp.jwk as JWK, 'ES256')
  const receiver = sdk.createReceiver({
    issuer: opts.issuer,
    audience: opts.audience,
    allowInsecureIssuer: true,
  })
  const index = sdk.createRevocationIndex()
  index.subscribe((r) => {
    stats.revocations++
    if (r.txn && !appliedAt.has(r.txn)) appliedAt.set(r.txn, now())
  })
  const pushSecret = `Bearer ${randomUUID()}`
  const app = new Hono<Sdk.RevocationEnv>()
  app.post(
    '/ssf/events',
    sdk.createHonoPushHandler({
      receiver,
      authorization: pushSecret,
      onEvent: (set) => index.apply(set).then(() => undefined),
      onAccepted: () => void stats.pushes++,
      onError: (err) => {
        stats.pushErrors++
        if (stats.pushErrorSample.length < 5) stats.pushErrorSample.push(String(err))
      },
    }),
  )
  app.use(
    '/api/*',
    sdk.revocationMiddleware({
      index,
      verifyToken: async (token) => {
        try {
          return (
            await jwtVerify(token, idpKey, { issuer: opts.idp.issuer, audience: opts.idp.audience })
          ).payload as Sdk.TokenClaims
        } catch (err) {
          stats.tokenErrors++
          throw err
        }
      },
      onRevoked: (info) => {
        if (info.phase === 'refused') stats.refused++
        else stats.refusedInFlight++
      },
    }),
  )
  app.get('/api/data', (c) => c.json({ for: c.get('ssfToken').sub, at: Date.now() }))
  const url = await new Promise<string>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
      resolve(`http://127.0.0.1:${info.port}`),
    )
  })

  streams = sdk.createStreamClient({ receiver, token: opts.receiverToken })
  const stream = await streams.create({
    delivery: { method: PUSH, endpoint_url: `${url}/ssf/events`, authorization_header: pushSecret },
    events_requested: [...opts.eventsRequested],
  })
  streamId = stream.stream_id
  // Warm the path (discovery, JWKS, push connection) as a resource server does once at start.
  const t0 = now()
  const { delivered } = await streams.triggerVerification(streamId, { timeoutMs: 15_000 })
  await delivered
  return { url, streamId, verificationMs: now() - t0 }
}

async function stop(): Promise<void> {
  if (streams && streamId) await streams.delete(streamId).catch(() => {})
  if (server) {
    ;(server as Server).closeAllConnections?.()
    await new Promise<void>((r) => server!.close(() => r()))
  }
}

async function run(msg: ResourceServerCommand): Promise<unknown> {
  switch (msg.cmd) {
    case 'start':
      return start(msg.options)
    case 'addSubject':
      if (!streams || !streamId) throw new Error('not started')
      await streams.addSubject(streamId, msg.subject as Sdk.SubjectIdentifier)
      return {}
    case 'applied':
      return { at: appliedAt.get(msg.txn) ?? null }
    case 'stats':
      return stats
    case 'now':
      return { now: now() }
    case 'stop':
      await stop()
      setImmediate(() => process.exit(0))
      return {}
  }
}

process.on('message', (raw: { id: number } & ResourceServerCommand) => {
  run(raw).then(
    (result) => process.send!({ id: raw.id, ok: true, result }),
    (err: unknown) =>
      process.send!({ id: raw.id, ok: false, error: String((err as Error).stack ?? err) }),
  )
})
// The parent is gone: nothing left to serve.
process.on('disconnect', () => process.exit(0))
