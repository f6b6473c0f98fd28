/**
 * The receiver process of the benchmark (run as a child with an IPC channel, see receivers.ts):
 *
 * - Push sinks (RFC 8935) on `ports` loopback ports: `POST /s/<key>` with a SET as the body. Every SET's
 *   signature is verified with jose against the broker's JWKS (imported once; verifications run many in
 *   flight, one per open request) before the sink answers 202; a SET that fails verification gets a 400.
 * - The raw HTTP baseline sink: `POST /b` reads the body and answers 202, nothing else.
 * - A sink can be told to answer a fixed status instead (e.g. 503, a receiver that is down); those
 *   requests are counted, not verified or recorded.
 * - Long-polling clients (RFC 8936), one loop per poll stream, verifying and acknowledging every SET.
 *
 * A SET is recorded with the time its request (push) or poll response (poll) had fully arrived, before
 * verification, on the high-resolution epoch clock (`performance.timeOrigin + performance.now()`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { importJWK, jwtVerify, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose'
import { Pool, request } from 'undici'
import type {
  CollectOptions,
  CollectResult,
  PollStartOptions,
  ReceiverCommand,
  ReceiverStats,
} from './receiver-protocol.js'

const now = () => performance.timeOrigin + performance.now()

// ---- verification ---------------------------------------------------------------------------------

let issuer = ''
let audiences: string[] = []
let jwksUrl = ''
const keys = new Map<string, CryptoKey | Uint8Array>()
let lastJwksLoad = 0
let jwksLoading: Promise<void> | undefined

async function loadJwks(): Promise<void> {
  jwksLoading ??= (async () => {
    try {
      const res = await request(jwksUrl, { headersTimeout: 10_000, bodyTimeout: 10_000 })
      const body = (await res.body.json()) as { keys?: JWK[] }
      for (const jwk of body.keys ?? []) {
        if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string' || keys.has(jwk.kid))
          continue
        keys.set(jwk.kid, await importJWK(jwk, jwk.alg))
      }
      lastJwksLoad = Date.now()
    } finally {
      jwksLoading = undefined
    }
  })()
  return jwksLoading
}

async function keyFor(header: JWTHeaderParameters): Promise<CryptoKey | Uint8Array> {
  const kid = header.kid ?? ''
  let key = keys.get(kid)
  // An unknown kid (a rotation): fetch the JWKS again, at most once a second.
  if (!key && Date.now() - lastJwksLoad > 1000) {
    await loadJwks()
    key = keys.get(kid)
  }
  if (!key) throw new Error(`unknown kid ${kid}`)
  return key
}

async function verify(set: string): Promise<{ jti: string; txn: string }> {
  const { payload } = await jwtVerify(set, keyFor, {
    issuer,
    audience: audiences,
    typ: 'secevent+jwt',
  })
  if (
    typeof payload.jti !== 'string' ||
    typeof payload.txn !== 'string' ||
    typeof payload.events !== 'object'
  )
    throw new Error('SET without jti, txn or events')
  return { jti: payload.jti, txn: payload.txn }
}

// ---- records --------------------------------------------------------------------------------------

// Parallel arrays: cheap to append at tens of thousands per second.
let recKey: string[] = []
let recTxn: string[] = []
let recJti: string[] = []
let recT: number[] = []
let failures = 0
let failureSample: string[] = []
let baselineCount = 0
let pollErrors = 0
let pollErrorSample: string[] = []

function record(key: string, txn: string, jti: string, t: number): void {
  recKey.push(key)
  recTxn.push(txn)
  recJti.push(jti)
  recT.push(t)
}

function fail(message: string): void {
  failures++
  if (failureSample.length < 5) failureSample.push(message)
}

function pollError(message: string): void {
  pollErrors++
  if (pollErrorSample.length < 5) pollErrorSample.push(message)
}

function stats(): ReceiverStats {
  return { sets: recT.length, failures, baseline: baselineCount, pollErrors, now: now() }
}

function collect(opts: CollectOptions): CollectResult {
  const prefix = opts.txnPrefix
  const byPair = new Map<string, number>()
  const jtis = new Set<string>()
  const byTxn = new Map<string, { n: number; first: number; last: number }>()
  let matched = 0
  let duplicates = 0
  let other = 0
  let first = Infinity
  let last = -Infinity
  const keySet = opts.expectKeys ? new Set(opts.expectKeys) : undefined
  for (let i = 0; i < recT.length; i++) {
    const txn = recTxn[i]!
    if (!txn.startsWith(prefix)) {
      other++
      continue
    }
    matched++
    const key = recKey[i]!
    const jti = recJti[i]!
    const t = recT[i]!
    if (jtis.has(jti)) {
      duplicates++
      continue
    }
    jtis.add(jti)
    const pair = `${key}\n${txn}`
    byPair.set(pair, (byPair.get(pair) ?? 0) + 1)
    if (t < first) first = t
    if (t > last) last = t
    const entry = byTxn.get(txn)
    if (!entry) byTxn.set(txn, { n: 1, first: t, last: t })
    else {
      entry.n++
      if (t < entry.first) entry.first = t
      if (t > entry.last) entry.last = t
    }
  }
  // Two different jtis for one (stream, event) pair would be a broker bug; count them.
  let extraPerPair = 0
  for (const n of byPair.values()) if (n > 1) extraPerPair += n - 1
  let missing = 0
  const missingSample: string[] = []
  if (keySet && opts.expectTxns) {
    for (const key of keySet) {
      for (const txn of opts.expectTxns) {
        if (!byPair.has(`${key}\n${txn}`)) {
          missing++
          if (missingSample.length < 5) missingSample.push(`${key}/${txn}`)
        }
      }
    }
  }
  let unexpected = 0
  if (keySet || opts.expectTxns) {
    const txnSet = opts.expectTxns ? new Set(opts.expectTxns) : undefined
    for (const pair of byPair.keys()) {
      const [key, txn] = pair.split('\n') as [string, string]
      if ((keySet && !keySet.has(key)) || (txnSet && !txnSet.has(txn))) unexpected++
    }
  }
  return {
    matched,
    distinct: jtis.size,
    duplicates,
    extraPerPair,
    other,
    missing,
    missingSample,
    unexpected,
    failures,
    failureSample,
    pollErrors,
    pollErrorSample,
    first: Number.isFinite(first) ? first : null,
    last: Number.isFinite(last) ? last : null,
    ...(opts.byTxn ? { byTxn: Object.fromEntries(byTxn) } : {}),
  }
}

function reset(): void {
  recKey = []
  recTxn = []
  recJti = []
  recT = []
  failures = 0
  failureSample = []
  baselineCount = 0
  pollErrors = 0
  pollErrorSample = []
}

// ---- push sinks -----------------------------------------------------------------------------------

/** Sinks answering a fixed status (an outage): key -> status and what they refused. */
const outages = new Map<
  string,
  { status: number; refused: number; first: number | null; last: number | null }
>()

function setSinkStatus(
  key: string,
  status: number | null,
): { refused: number; first: number | null; last: number | null } {
  const before = outages.get(key)
  if (status === null) outages.delete(key)
  else outages.set(key, { status, refused: 0, first: null, last: null })
  return { refused: before?.refused ?? 0, first: before?.first ?? null, last: before?.last ?? null }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = []
  req.on('error', () => {}) // a sender that went away; nothing to record
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const t = now()
    const url = req.url ?? ''
    if (req.method !== 'POST') {
      res.writeHead(405).end()
      return
    }
    if (url === '/b') {
      baselineCount++
      res.writeHead(202).end()
      return
    }
    if (!url.startsWith('/s/')) {
      res.writeHead(404).end()
      return
    }
    const key = url.slice(3)
    const outage = outages.get(key)
    if (outage) {
      outage.refused++
      outage.first ??= t
      outage.last = t
      res.writeHead(outage.status).end()
      return
    }
    const body =
      chunks.length === 1 ? chunks[0]!.toString('latin1') : Buffer.concat(chunks).toString('latin1')
    verify(body).then(
      ({ jti, txn }) => {
        record(key, txn, jti, t)
        res.writeHead(202).end()
      },
      (err: unknown) => {
        fail(`push ${key}: ${String(err)}`)
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end('{"err":"invalid_request","description":"SET verification failed"}')
      },
    )
  })
}

const servers: Server[] = []

async function listen(count: number): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < count; i++) {
    const server = createServer(
      { keepAliveTimeout: 65_000, headersTimeout: 70_000, requestTimeout: 0 },
      handle,
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    ports.push((server.address() as AddressInfo).port)
  }
  return ports
}

// ---- poll clients ---------------------------------------------------------------------------------

interface Poller {
  opts: PollStartOptions
  stopped: boolean
  abort: AbortController
  done: Promise<void>
  polls: number
}
const pollers = new Map<string, Poller>()

async function pollLoop(p: Poller): Promise<void> {
  const url = new URL(p.opts.url)
  const pool = new Pool(url.origin, {
    connections: 1,
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  })
  const headers = { authorization: `Bearer ${p.opts.token}`, 'content-type': 'application/json' }
  const deadline = Date.now() + p.opts.maxMs
  let acks: string[] = []
  let consecutiveErrors = 0
  try {
    while (!p.stopped && Date.now() < deadline && consecutiveErrors < 50) {
      const body = JSON.stringify({
        maxEvents: p.opts.maxEvents,
        returnImmediately: false,
        ...(acks.length > 0 ? { ack: acks } : {}),
      })
      const sending = acks
      acks = []
      let sets: Record<string, string>
      let t: number
      try {
        const res = await pool.request({
          method: 'POST',
          path: url.pathname + url.search,
          headers,
          body,
          signal: p.abort.signal,
        })
        const text = await res.body.text()
        t = now()
        p.polls++
        if (res.statusCode !== 200)
          throw new Error(`poll answered ${res.statusCode}: ${text.slice(0, 200)}`)
        sets = (JSON.parse(text) as { sets?: Record<string, string> }).sets ?? {}
        consecutiveErrors = 0
      } catch (err) {
        if (p.stopped) {
          acks = sending
          break
        }
        pollError(`poll ${p.opts.key}: ${String(err)}`)
        consecutiveErrors++
        acks = sending // not acknowledged: send them again
        await new Promise((r) => setTimeout(r, 100))
        continue
      }
      await Promise.all(
        Object.entries(sets).map(async ([jti, set]) => {
          try {
            const v = await verify(set)
            if (v.jti !== jti) throw new Error(`poll key ${jti} is not the SET's jti ${v.jti}`)
            record(p.opts.key, v.txn, v.jti, t)
            acks.push(jti)
          } catch (err) {
            fail(`poll ${p.opts.key}: ${String(err)}`)
          }
        }),
      )
    }
    if (acks.length > 0) {
      // Acknowledge-only request (RFC 8936 §2.4: maxEvents 0), so nothing is handed out again.
      const res = await pool.request({
        method: 'POST',
        path: url.pathname + url.search,
        headers,
        body: JSON.stringify({ maxEvents: 0, returnImmediately: true, ack: acks }),
      })
      await res.body.text()
    }
  } catch (err) {
    pollError(`poll ${p.opts.key} final ack: ${String(err)}`)
  } finally {
    await pool.destroy()
  }
}

function startPoll(opts: PollStartOptions): void {
  if (pollers.has(opts.key)) throw new Error(`poller ${opts.key} already running`)
  const p: Poller = {
    opts,
    stopped: false,
    abort: new AbortController(),
    done: Promise.resolve(),
    polls: 0,
  }
  p.done = pollLoop(p)
  pollers.set(opts.key, p)
}

async function stopPoll(key: string): Promise<{ polls: number }> {
  const p = pollers.get(key)
  if (!p) return { polls: 0 }
  p.stopped = true
  p.abort.abort()
  await p.done
  pollers.delete(key)
  return { polls: p.polls }
}

// ---- IPC ------------------------------------------------------------------------------------------

async function run(msg: ReceiverCommand): Promise<unknown> {
  switch (msg.cmd) {
    case 'listen':
      return { ports: await listen(msg.ports) }
    case 'config':
      issuer = msg.issuer
      audiences = msg.audiences
      jwksUrl = msg.jwksUrl
      keys.clear()
      await loadJwks()
      return { keys: keys.size }
    case 'now':
      return { now: now() }
    case 'stats':
      return stats()
    case 'reset':
      reset()
      return {}
    case 'collect':
      return collect(msg.options)
    case 'pollStart':
      startPoll(msg.options)
      return {}
    case 'pollStop':
      return stopPoll(msg.key)
    case 'sinkStatus':
      return setSinkStatus(msg.key, msg.status)
    case 'stop':
      for (const key of [...pollers.keys()]) await stopPoll(key)
      for (const s of servers) s.closeAllConnections()
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
      setImmediate(() => process.exit(0))
      return {}
  }
}

process.on('message', (raw: { id: number } & ReceiverCommand) => {
  run(raw).then(
    (result) => process.send!({ id: raw.id, ok: true, result }),
    (err: unknown) =>
      process.send!({ id: raw.id, ok: false, error: String((err as Error).stack ?? err) }),
  )
})
// The parent is gone: nothing left to serve.
process.on('disconnect', () => process.exit(0))
