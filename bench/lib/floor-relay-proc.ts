/**
 * The floor relay (run as a child with an IPC channel, see floor-relay.ts): the least work a durable push
 * relay can do on this machine, to measure what the machine allows the broker.
 *
 * `POST /events` (one event, or `{"events": [...]}`; bearer token compared as a string): the body is
 * appended to a Redis stream with one XADD (the broker's own Redis, AOF with fsync every second) and
 * answered 202. Then, for every event and every sink that takes its type, a SET is signed with the
 * broker's own `signSet` and signing key and pushed over undici keep-alive pools per origin (16
 * connections). As in the broker, a sink has at most 16 SETs in flight, and the broker's default priority
 * types go at once on connections of their own. Once all are answered the entry is deleted (XDEL).
 *
 * It does nothing else: no subjects, per-subject order, audit, retries, limits, metrics or validation
 * beyond JSON.parse. A push that fails is lost (the benchmark counts it missing).
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import type { SigningAlg } from '../../src/config/config.js'
import { DEFAULT_PRIORITY_EVENT_TYPES, resolveEventTypeUri } from '../../src/events/priority.js'
import { KeyStore } from '../../src/keys/keystore.js'
import { signSet } from '../../src/keys/sign-set.js'

const LOG = 'bench:floor-relay:log'

const setting = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const redis = new Redis({ path: setting('FLOOR_REDIS_SOCKET'), enableAutoPipelining: true })
const keys = new KeyStore(redis, 604_800)
await keys.init()
const alg = setting('FLOOR_ALG') as SigningAlg
const iss = setting('FLOOR_ISSUER')
const aud = setting('FLOOR_AUDIENCE')
const token = setting('FLOOR_TOKEN')

/** A push endpoint and the event types it takes (all when `types` is null). */
interface Sink {
  url: URL
  types: Set<string> | null
  /** Normal SETs waiting for a slot of the window, in order. */
  queue: { event: Record<string, unknown>; uri: string; settle: (ok: boolean) => void }[]
  inFlight: number
}

// As the broker: at most WINDOW normal SETs in flight per stream, priority SETs on connections of their own.
const WINDOW = 16
const PRIORITY = new Set(DEFAULT_PRIORITY_EVENT_TYPES)

let sinks: Sink[] = []
const pools = new Map<string, Pool>()
const poolFor = (origin: string, priority: boolean): Pool => {
  const name = `${priority ? 'p' : 'n'}${origin}`
  let pool = pools.get(name)
  if (!pool) pools.set(name, (pool = new Pool(origin, { connections: 16, pipelining: 1 })))
  return pool
}
let failures = 0

async function push(sink: Sink, event: Record<string, unknown>, uri: string): Promise<boolean> {
  try {
    const set = await signSet(keys, alg, {
      iss,
      aud,
      jti: randomBytes(16).toString('base64url'),
      txn: String(event.txn),
      sub_id: event.subject,
      eventType: uri,
      event: { ...(event.event as object), event_timestamp: Math.floor(Date.now() / 1000) },
    })
    const res = await poolFor(sink.url.origin, PRIORITY.has(uri)).request({
      method: 'POST',
      path: sink.url.pathname,
      headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
      body: set,
    })
    await res.body.dump()
    return res.statusCode >= 200 && res.statusCode < 300
  } catch {
    return false
  }
}

function pump(sink: Sink): void {
  while (sink.inFlight < WINDOW && sink.queue.length > 0) {
    const { event, uri, settle } = sink.queue.shift()!
    sink.inFlight++
    void push(sink, event, uri).then((ok) => {
      sink.inFlight--
      settle(ok)
      pump(sink)
    })
  }
}

/** Pushes every event to every sink that takes its type; the log entry is deleted once all are answered. */
function relay(events: Record<string, unknown>[], id: string): void {
  let open = 1
  const settle = (ok: boolean) => {
    if (!ok) failures++
    if (--open === 0) void redis.xdel(LOG, id).catch(() => failures++)
  }
  for (const event of events) {
    const uri = resolveEventTypeUri(String(event.type)) ?? String(event.type)
    for (const sink of sinks) {
      if (sink.types && !sink.types.has(uri)) continue
      open++
      if (PRIORITY.has(uri)) void push(sink, event, uri).then(settle)
      else {
        sink.queue.push({ event, uri, settle })
        pump(sink)
      }
    }
  }
  settle(true)
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    if (
      req.method !== 'POST' ||
      req.url !== '/events' ||
      req.headers.authorization !== `Bearer ${token}`
    ) {
      res.writeHead(404).end()
      return
    }
    const body = Buffer.concat(chunks).toString('utf8')
    let events: Record<string, unknown>[]
    try {
      const parsed = JSON.parse(body) as { events?: Record<string, unknown>[] }
      events = Array.isArray(parsed.events) ? parsed.events : [parsed]
    } catch {
      res.writeHead(400).end()
      return
    }
    redis.xadd(LOG, '*', 'e', body).then(
      (id) => {
        res.writeHead(202, { 'content-type': 'application/json' }).end('{}')
        relay(events, id!)
      },
      () => res.writeHead(503).end(),
    )
  })
})

type Command =
  | { id: number; cmd: 'sinks'; sinks: { url: string; types?: string[] }[] }
  | { id: number; cmd: 'stats' }
process.on('message', (msg: Command) => {
  if (msg.cmd === 'sinks')
    sinks = msg.sinks.map(({ url, types }) => ({
      url: new URL(url),
      types: types ? new Set(types.map((t) => resolveEventTypeUri(t) ?? t)) : null,
      queue: [],
      inFlight: 0,
    }))
  process.send!({ id: msg.id, failures })
})
server.listen(0, '127.0.0.1', () =>
  process.send!({ id: 0, port: (server.address() as AddressInfo).port }),
)
// The parent is gone: nothing left to relay for.
process.on('disconnect', () => process.exit(0))
