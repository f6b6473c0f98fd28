/**
 * Push client against real node:http receivers on 127.0.0.1. Nothing here may reach another address: a
 * tripwire on the TCP handle refuses and records any non-loopback connect, so even a broken SSRF guard
 * cannot send a packet off the machine, and the tests about refusals can prove nothing connected.
 */
import assert from 'node:assert/strict'
import dns from 'node:dns'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { afterEach, describe, test, type TestContext } from 'node:test'
import {
  createPushClient,
  type PushClientOptions,
  type PushOutcome,
} from '../src/delivery/push-client.js'

const connectAttempts: string[] = []
const offMachineAttempts: string[] = []
{
  // net's TCP handle class: its connect is the last step before a SYN leaves, after any lookup.
  type Connect = (this: unknown, req: unknown, address: string, port: number) => number
  type TcpWrap = { TCP: { prototype: Record<'connect' | 'connect6', Connect> } }
  const { TCP } = (process as unknown as { binding(name: 'tcp_wrap'): TcpWrap }).binding('tcp_wrap')
  for (const method of ['connect', 'connect6'] as const) {
    const original = TCP.prototype[method]
    TCP.prototype[method] = function (req, address, port) {
      connectAttempts.push(address)
      if (address === '127.0.0.1' || address === '::1')
        return original.call(this, req, address, port)
      offMachineAttempts.push(address)
      return -os.constants.errno.ECONNREFUSED
    }
  }
}

afterEach(() => {
  assert.deepEqual(offMachineAttempts.splice(0), [], 'this test tried to connect off the machine')
})

const SET = 'eyJ0eXAiOiJzZWNldmVudCtqd3QiLCJhbGciOiJFUzI1NiJ9.eyJqdGkiOiIxIn0.c2lnbmF0dXJl'

interface Received {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

type Respond = (req: Received, res: http.ServerResponse) => void

async function startReceiver(t: TestContext, respond: Respond) {
  const received: Received[] = []
  let connections = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      }
      received.push(r)
      respond(r, res)
    })
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    port,
    url: `http://127.0.0.1:${port}/push`,
    received,
    get connections() {
      return connections
    },
  }
}

function client(t: TestContext, overrides: Partial<PushClientOptions> = {}) {
  const c = createPushClient({
    allowPrivate: true,
    connectTimeoutMs: 1000,
    requestTimeoutMs: 2000,
    maxResponseBytes: 65_536,
    connectionsPerOrigin: 4,
    userAgent: 'ssf-broker-test/1',
    ...overrides,
  })
  t.after(() => c.close())
  return c
}

/** kind, status and error of an outcome, for one comparison. */
function summary(outcome: PushOutcome): [string, number | undefined, string | undefined] {
  return [outcome.kind, outcome.status, outcome.kind === 'delivered' ? undefined : outcome.error]
}

function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
) {
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify(body))
}

describe('push client: successful delivery', () => {
  test('202 is delivered; the request is exactly the RFC 8935 POST', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(202).end())
    const c = client(t)

    const withAuth = await c.push({
      url: `${receiver.url}?tenant=a%20b`,
      authorization: 'Bearer s3cr3t.Token',
      set: SET,
    })
    assert.equal(withAuth.kind, 'delivered')
    assert.equal(withAuth.status, 202)
    assert.ok(withAuth.latencyMs >= 0)

    const withoutAuth = await c.push({ url: receiver.url, set: SET })
    assert.equal(withoutAuth.kind, 'delivered')

    const [first, second] = receiver.received
    assert.ok(first && second)
    assert.equal(first.method, 'POST')
    assert.equal(first.url, '/push?tenant=a%20b')
    assert.equal(first.body, SET)
    assert.equal(first.headers['content-type'], 'application/secevent+jwt')
    assert.equal(first.headers.accept, 'application/json')
    assert.equal(first.headers['user-agent'], 'ssf-broker-test/1')
    assert.equal(first.headers.authorization, 'Bearer s3cr3t.Token')
    assert.equal(second.body, SET)
    assert.equal('authorization' in second.headers, false)
  })

  test('any 2xx is delivered', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(204).end())
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.deepEqual([outcome.kind, outcome.status], ['delivered', 204])
  })

  test('keep-alive: two pushes share one connection', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(202).end('{}'))
    const c = client(t)
    const before = connectAttempts.length
    assert.equal((await c.push({ url: receiver.url, set: SET })).kind, 'delivered')
    // undici hands a socket back to the pool one event-loop turn after a response (so that a server closing
    // it anyway is noticed); a push issued sooner opens another connection, up to connectionsPerOrigin.
    await new Promise(setImmediate)
    assert.equal((await c.push({ url: receiver.url, set: SET })).kind, 'delivered')
    assert.equal(receiver.connections, 1)
    assert.deepEqual(connectAttempts.slice(before), ['127.0.0.1'])
  })
})

describe('push client: RFC 8935 error responses', () => {
  test('400 invalid_request fails permanently with err and description', async (t) => {
    const receiver = await startReceiver(t, (_req, res) =>
      json(res, 400, { err: 'invalid_request', description: 'bad events claim' }),
    )
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.deepEqual(
      { ...outcome, latencyMs: 0 },
      {
        kind: 'failed',
        status: 400,
        error: 'err_invalid_request',
        err: 'invalid_request',
        description: 'bad events claim',
        latencyMs: 0,
      },
    )
  })

  test('400 invalid_key and authentication_failed are retried', async (t) => {
    for (const err of ['invalid_key', 'authentication_failed']) {
      const receiver = await startReceiver(t, (_req, res) => json(res, 400, { err }))
      const outcome = await client(t).push({ url: receiver.url, set: SET })
      assert.deepEqual(summary(outcome), ['retry', 400, `err_${err}`])
    }
  })

  test('400 with an unknown code fails; the hostile description is truncated and non-strings dropped', async (t) => {
    const bodies = [
      { err: 'made_up_code', description: 'x'.repeat(5000) },
      { err: 'access_denied', description: { nested: 'object' } },
    ]
    const receiver = await startReceiver(t, (_req, res) =>
      json(res, 400, bodies[receiver.received.length - 1]),
    )
    const c = client(t)

    const unknown = await c.push({ url: receiver.url, set: SET })
    assert.equal(unknown.kind, 'failed')
    assert.equal(unknown.error, 'err_unknown')
    assert.equal(unknown.kind === 'failed' && unknown.err, 'made_up_code')
    assert.equal(unknown.kind === 'failed' && unknown.description, 'x'.repeat(512))

    const denied = await c.push({ url: receiver.url, set: SET })
    assert.equal(denied.kind, 'failed')
    assert.equal(denied.error, 'err_access_denied')
    assert.equal('description' in denied, false)
  })

  test('400 without an RFC 8935 body fails', async (t) => {
    const bodies = [
      '<html>Bad Request</html>',
      '{"error":"invalid_request"}',
      '["invalid_request"]',
      '{"err":42}',
    ]
    const receiver = await startReceiver(t, (_req, res) =>
      res.writeHead(400).end(bodies[receiver.received.length - 1]),
    )
    const c = client(t)
    for (const body of bodies) {
      const outcome = await c.push({ url: receiver.url, set: SET })
      assert.deepEqual(summary(outcome), ['failed', 400, 'http_400'], body)
    }
  })
})

describe('push client: HTTP status classes', () => {
  test('503 with Retry-After: 2 is retried after 2000 ms', async (t) => {
    const receiver = await startReceiver(t, (_req, res) =>
      res.writeHead(503, { 'retry-after': '2' }).end('busy'),
    )
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.equal(outcome.kind, 'retry')
    assert.equal(outcome.status, 503)
    assert.equal(outcome.error, 'http_503')
    assert.equal(outcome.kind === 'retry' && outcome.retryAfterMs, 2000)
  })

  test('429 with an HTTP-date Retry-After', async (t) => {
    const receiver = await startReceiver(t, (_req, res) =>
      res.writeHead(429, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() }).end(),
    )
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.equal(outcome.kind, 'retry')
    assert.equal(outcome.error, 'http_429')
    const after = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined
    assert.ok(after !== undefined && after > 28_000 && after <= 30_000, `retryAfterMs ${after}`)
  })

  test('Retry-After is capped at one hour', async (t) => {
    const receiver = await startReceiver(t, (_req, res) =>
      res.writeHead(503, { 'retry-after': '86400' }).end(),
    )
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.equal(outcome.kind === 'retry' && outcome.retryAfterMs, 3_600_000)
  })

  test('500 and 408 are retried; Retry-After counts only on 429 and 503', async (t) => {
    const statuses = [500, 408]
    const receiver = await startReceiver(t, (_req, res) =>
      res.writeHead(statuses[receiver.received.length - 1] ?? 500, { 'retry-after': '5' }).end(),
    )
    const c = client(t)
    for (const status of statuses) {
      const outcome = await c.push({ url: receiver.url, set: SET })
      assert.deepEqual(
        { ...outcome, latencyMs: 0 },
        { kind: 'retry', status, error: `http_${status}`, latencyMs: 0 },
      )
    }
  })

  test('404 fails', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(404).end('not here'))
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.deepEqual(summary(outcome), ['failed', 404, 'http_404'])
  })

  test('302 fails and the redirect is never followed', async (t) => {
    const receiver = await startReceiver(t, (req, res) => {
      if (req.url === '/push')
        res.writeHead(302, { location: `http://127.0.0.1:${receiver.port}/elsewhere` }).end()
      else res.writeHead(202).end()
    })
    const outcome = await client(t).push({ url: receiver.url, set: SET })
    assert.deepEqual(summary(outcome), ['failed', 302, 'http_302'])
    assert.deepEqual(
      receiver.received.map((r) => r.url),
      ['/push'],
    )
  })
})

describe('push client: slow, hostile and absent receivers', () => {
  test('a receiver that never answers is retried after the request timeout', async (t) => {
    const receiver = await startReceiver(t, () => {})
    const outcome = await client(t, { requestTimeoutMs: 300 }).push({ url: receiver.url, set: SET })
    assert.equal(outcome.kind, 'retry')
    assert.equal(outcome.error, 'timeout_headers')
    assert.ok(outcome.latencyMs >= 250 && outcome.latencyMs < 1500, `latency ${outcome.latencyMs}`)
  })

  test('a body trickled slower than the overall deadline is cut off', async (t) => {
    // Each byte arrives within the body timeout, so only the overall deadline (100 + 2 × 300 ms) stops it.
    const receiver = await startReceiver(t, (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' })
      const timer = setInterval(() => res.write(' '), 100)
      res.on('close', () => clearInterval(timer))
    })
    const outcome = await client(t, { connectTimeoutMs: 100, requestTimeoutMs: 300 }).push({
      url: receiver.url,
      set: SET,
    })
    assert.deepEqual(summary(outcome), ['failed', 400, 'timeout_total'])
    assert.ok(outcome.latencyMs >= 650 && outcome.latencyMs < 2000, `latency ${outcome.latencyMs}`)
  })

  test('a 10 MB response is cut at maxResponseBytes whatever the status', async (t) => {
    const huge = JSON.stringify({ err: 'invalid_key', description: 'x'.repeat(10 * 1024 * 1024) })
    const statuses = [400, 503, 202]
    const receiver = await startReceiver(t, (_req, res) => {
      res.on('error', () => {}) // the client hangs up mid-body
      res
        .writeHead(statuses[receiver.received.length - 1] ?? 202, {
          'content-type': 'application/json',
        })
        .end(huge)
    })
    const c = client(t)
    // Read in full, the 400 body would say invalid_key and be retried; cut short, it is not an RFC 8935 body.
    const rejected = await c.push({ url: receiver.url, set: SET })
    assert.deepEqual(summary(rejected), ['failed', 400, 'response_too_large'])
    const unavailable = await c.push({ url: receiver.url, set: SET })
    assert.deepEqual(summary(unavailable), ['retry', 503, 'http_503'])
    const accepted = await c.push({ url: receiver.url, set: SET })
    assert.deepEqual([accepted.kind, accepted.status], ['delivered', 202])
  })

  test('connection refused is retried', async (t) => {
    const receiver = await startReceiver(t, () => {})
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const { port } = closed.address() as AddressInfo
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    assert.notEqual(port, receiver.port)

    const outcome = await client(t).push({ url: `http://127.0.0.1:${port}/push`, set: SET })
    assert.deepEqual(summary(outcome), ['retry', undefined, 'connection_refused'])
  })

  test('a lookup that never answers ends in a connect timeout', async (t) => {
    const stuck = (() => {}) as unknown as typeof dns.lookup
    const outcome = await client(t, { connectTimeoutMs: 200, lookup: stuck }).push({
      url: 'http://receiver.test/push',
      set: SET,
    })
    assert.deepEqual(summary(outcome), ['retry', undefined, 'timeout_connect'])
    assert.ok(outcome.latencyMs < 1500, `latency ${outcome.latencyMs}`)
  })

  test('the caller can abort a push', async (t) => {
    const receiver = await startReceiver(t, () => {})
    const outcome = await client(t).push({
      url: receiver.url,
      set: SET,
      signal: AbortSignal.timeout(100),
    })
    assert.deepEqual(summary(outcome), ['retry', undefined, 'aborted'])
    assert.ok(outcome.latencyMs < 1000, `latency ${outcome.latencyMs}`)
  })
})

describe('push client: SSRF guard (allowPrivate false)', () => {
  test('loopback IP literals are refused before any connection', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(202).end())
    const c = client(t, { allowPrivate: false })
    const before = connectAttempts.length
    for (const url of [
      receiver.url,
      `https://127.0.0.1:${receiver.port}/push`,
      `https://[::1]:${receiver.port}/push`,
    ]) {
      const outcome = await c.push({ url, set: SET })
      assert.equal(outcome.kind, 'failed', url)
      assert.match(outcome.error, /^address_not_allowed/, url)
    }
    assert.equal(receiver.connections, 0)
    assert.equal(connectAttempts.length, before)
  })

  test('https://localhost is refused by the connect-time lookup', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(202).end())
    const looked: string[] = []
    const spy = ((hostname: string, options: dns.LookupOptions, callback: never) => {
      looked.push(hostname)
      dns.lookup(hostname, options, callback)
    }) as unknown as typeof dns.lookup
    const before = connectAttempts.length

    const outcome = await client(t, { allowPrivate: false, lookup: spy }).push({
      url: `https://localhost:${receiver.port}/push`,
      set: SET,
    })
    assert.equal(outcome.kind, 'failed')
    assert.match(outcome.error, /^address_not_allowed: localhost resolves to /)
    assert.deepEqual(looked, ['localhost'])
    assert.equal(receiver.connections, 0)
    assert.equal(connectAttempts.length, before)
  })

  test('a name that resolves to a private address is refused before connecting', async (t) => {
    const looked: string[] = []
    const rebinding = ((
      hostname: string,
      options: dns.LookupOptions,
      callback: (...args: unknown[]) => void,
    ) => {
      looked.push(hostname)
      if (options.all) callback(null, [{ address: '10.1.2.3', family: 4 }])
      else callback(null, '10.1.2.3', 4)
    }) as unknown as typeof dns.lookup
    const before = connectAttempts.length

    const outcome = await client(t, { allowPrivate: false, lookup: rebinding }).push({
      url: 'https://receiver.test/push',
      set: SET,
    })
    assert.equal(outcome.kind, 'failed')
    assert.equal(
      outcome.error,
      'address_not_allowed: receiver.test resolves to 10.1.2.3, which is not a public address',
    )
    assert.deepEqual(looked, ['receiver.test'])
    assert.equal(connectAttempts.length, before)
  })
})

describe('push client: options', () => {
  test('nonsense options are a TypeError at construction', () => {
    const good: PushClientOptions = {
      allowPrivate: false,
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      maxResponseBytes: 1024,
      connectionsPerOrigin: 1,
      userAgent: 'ua',
    }
    const bad: Array<Partial<Record<keyof PushClientOptions, unknown>>> = [
      { connectTimeoutMs: 0 },
      { requestTimeoutMs: -1 },
      { requestTimeoutMs: Number.NaN },
      { maxResponseBytes: 1.5 },
      { connectionsPerOrigin: Infinity },
      { userAgent: '' },
      { userAgent: 'ua\r\nx-injected: 1' },
      { allowPrivate: 'yes' },
      { lookup: 'dns' },
    ]
    for (const override of bad) {
      assert.throws(
        () => createPushClient({ ...good, ...override } as PushClientOptions),
        TypeError,
        JSON.stringify(override),
      )
    }
    return createPushClient(good).close()
  })

  test('an authorization value that could inject headers is refused without sending', async (t) => {
    const receiver = await startReceiver(t, (_req, res) => res.writeHead(202).end())
    const outcome = await client(t).push({
      url: receiver.url,
      authorization: 'Bearer x\r\nx-injected: 1',
      set: SET,
    })
    assert.deepEqual(summary(outcome), ['failed', undefined, 'invalid_authorization'])
    assert.equal(receiver.received.length, 0)
  })
})

describe('push client: urgent SETs', () => {
  test('an urgent push goes over connections of its own: it does not wait for a busy pool of normal pushes', async (t) => {
    const held: http.ServerResponse[] = []
    const receiver = await startReceiver(t, (req, res) => {
      // Normal pushes are held until the end; the urgent one is answered at once.
      if (req.body === 'urgent') res.writeHead(202).end()
      else held.push(res)
    })
    const heldOne = async () => {
      while (held.length === 0) await new Promise((r) => setTimeout(r, 5))
    }
    const c = client(t, { connectionsPerOrigin: 1 })
    const normal = [
      c.push({ url: receiver.url, set: SET }),
      c.push({ url: receiver.url, set: SET }),
    ]
    await heldOne()
    // The one normal connection is busy and a second normal push waits for it.
    const urgent = await c.push({ url: receiver.url, set: 'urgent', urgent: true })
    assert.deepEqual(summary(urgent), ['delivered', 202, undefined])
    assert.equal(
      held.length,
      1,
      'the second normal push is still waiting for the normal connection',
    )
    for (const res of held.splice(0)) res.writeHead(202).end()
    await heldOne()
    for (const res of held.splice(0)) res.writeHead(202).end()
    for (const outcome of await Promise.all(normal))
      assert.deepEqual(summary(outcome), ['delivered', 202, undefined])
  })
})
