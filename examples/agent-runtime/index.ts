/**
 * Example agent runtime using the receiver SDK (`@ssf-broker/receiver`).
 *
 * The agent holds a long-lived streaming session with the resource server for a user, using a delegated
 * token (RFC 8693 `act`: the agent acts for the user). It subscribes to the broker by poll (RFC 8936) and
 * tears the session down the moment a revocation for the user (or the agent) arrives, then stops its
 * poll loop cleanly. If the resource server ends the stream first (it is subscribed by push), the agent
 * tears down all the same.
 *
 *   npx tsx examples/agent-runtime/index.ts
 *
 * In this repository `@ssf-broker/receiver` is the workspace package under packages/receiver (run
 * `npm run build` first); elsewhere, `npm install @ssf-broker/receiver`.
 *
 * Environment:
 *   SSF_BROKER_URL          the broker's issuer URL (default http://localhost:8080)
 *   SSF_RECEIVER_TOKEN      this runtime's receiver-client token at the broker (required)
 *   SSF_RECEIVER_AUDIENCE   that client's audience (default urn:example:agent-runtime)
 *   RESOURCE_URL            the resource server (default http://127.0.0.1:9000)
 *   USER_SUB                the user the agent works for (default alice@example.com)
 *   AGENT_ID                the agent's identity (default spiffe://example.org/agent/assistant)
 *   AGENT_TOKEN             a delegated access token; default: one from the resource server's demo issuer
 */
import { decodeJwt } from 'jose'
import {
  REVOKING_EVENT_TYPES,
  TokenRevokedError,
  createPollClient,
  createReceiver,
  createRevocationIndex,
  createStreamClient,
  type TokenClaims,
} from '@ssf-broker/receiver'

const env = process.env
const brokerUrl = env.SSF_BROKER_URL ?? 'http://localhost:8080'
const receiverToken = env.SSF_RECEIVER_TOKEN
const audience = env.SSF_RECEIVER_AUDIENCE ?? 'urn:example:agent-runtime'
const resourceUrl = (env.RESOURCE_URL ?? 'http://127.0.0.1:9000').replace(/\/$/, '')
const user = env.USER_SUB ?? 'alice@example.com'
const agentId = env.AGENT_ID ?? 'spiffe://example.org/agent/assistant'
if (!receiverToken) {
  console.error(
    'SSF_RECEIVER_TOKEN is required: the token of a receiver client at the broker (see README, "Receiver SDK").',
  )
  process.exit(1)
}
const log = (message: string) =>
  console.log(`${new Date().toISOString()} [agent-runtime] ${message}`)
const shutdown = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => shutdown.abort(new Error(signal)))

// 1. Subscribe by poll: the stream's poll URL comes from the broker (SSF §8.1.1.1).
const receiver = createReceiver({
  issuer: brokerUrl,
  audience,
  allowInsecureIssuer: brokerUrl.startsWith('http:'),
})
await receiver.ready() // discovery and keys now, not when the first SET arrives
const streams = createStreamClient({ receiver, token: receiverToken })
const stream = await streams.ensureStream({
  delivery: { method: 'urn:ietf:rfc:8936' },
  events_requested: [...REVOKING_EVENT_TYPES],
})
log(`poll stream ${stream.stream_id} at ${stream.delivery.endpoint_url}`)

const index = createRevocationIndex()
const poller = createPollClient({
  receiver,
  endpoint: stream,
  token: receiverToken,
  onEvent: async (set) => {
    log(`SET ${set.type.split('/').pop()} about ${JSON.stringify(set.subject)} (by poll)`)
    await index.apply(set)
  },
  onError: (error, { retryInMs }) =>
    log(
      `poll: ${error instanceof Error ? error.message : String(error)}${retryInMs !== undefined ? `; retrying in ${retryInMs} ms` : ''}`,
    ),
})
const polling = poller.start(shutdown.signal)

// 2. A delegated token: the agent acting for the user.
async function delegatedToken(): Promise<string> {
  if (env.AGENT_TOKEN) return env.AGENT_TOKEN
  const res = await fetch(`${resourceUrl}/demo/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: user, client_id: agentId, act: { sub: agentId } }),
  })
  if (!res.ok)
    throw new Error(`the resource server's demo issuer answered ${res.status}; set AGENT_TOKEN`)
  return ((await res.json()) as { access_token: string }).access_token
}
const token = await delegatedToken()
const claims = decodeJwt(token) as TokenClaims // our own token: we only read its claims
log(`working for ${claims.sub} as ${agentId}`)

// 3. The live session: stopped the moment the index records a matching revocation.
const watch = index.watch(claims)
const session = AbortSignal.any([watch.signal, shutdown.signal])
const openedAt = Date.now()
let ticks = 0
let ending = 'the resource server ended the stream'
try {
  const res = await fetch(`${resourceUrl}/api/stream`, {
    headers: { authorization: `Bearer ${token}` },
    signal: session,
  })
  if (!res.ok)
    throw new Error(
      `the resource server refused the session: ${res.status} ${res.headers.get('www-authenticate') ?? ''}`,
    )
  log("session open; press Ctrl-C to stop, or revoke the user's session at the broker")
  const decoder = new TextDecoder()
  for await (const chunk of res.body!) {
    const text = decoder.decode(chunk as Uint8Array, { stream: true })
    if (text.includes('event: revoked'))
      ending = 'the resource server closed the stream: token revoked'
    ticks += (text.match(/event: tick/g) ?? []).length
  }
} catch (error) {
  if (watch.signal.aborted && watch.signal.reason instanceof TokenRevokedError) {
    const r = watch.signal.reason.revocation
    ending = `revocation received by poll (${r.eventType?.split('/').pop()}, txn ${r.txn ?? '-'})`
  } else if (shutdown.signal.aborted) ending = 'stopped'
  else ending = error instanceof Error ? error.message : String(error)
} finally {
  watch.release()
}
log(`session torn down after ${Date.now() - openedAt} ms and ${ticks} ticks: ${ending}`)

// 4. Stop polling cleanly (pending acknowledgements are flushed).
shutdown.abort(new Error('done'))
await polling
log('poll loop stopped')
