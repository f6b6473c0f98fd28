/**
 * The broker as operators run it (`node dist/main.js`): its log lines on stderr (JSON only, a warning per
 * failed push attempt, request ids, no secrets), and its shutdown (long polls answered, in-flight pushes
 * finished, bounded even with Redis frozen).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import {
  ADMIN_TOKEN,
  Api,
  freePort,
  spawnBroker,
  testEnv,
  type SpawnedBroker,
} from './helpers/broker.js'
import { startReceiver } from './helpers/receiver.js'
import { createLogger, REDACTED } from '../src/lib/log.js'

let redis: TestRedis

before(async () => {
  redis = await startTestRedis()
})

after(async () => {
  await redis?.stop()
})

const SESSION_REVOKED = 'caep/session-revoked'

function lines(broker: SpawnedBroker): string[] {
  return broker.stderr
    .join('')
    .split('\n')
    .filter((l) => l.trim() !== '')
}

function records(broker: SpawnedBroker): Record<string, any>[] {
  return lines(broker).map((line) => {
    try {
      return JSON.parse(line) as Record<string, any>
    } catch {
      throw new Error(`not a JSON log line: ${line}`)
    }
  })
}

async function waitForLog(
  broker: SpawnedBroker,
  what: string,
  match: (r: Record<string, any>) => boolean,
  timeoutMs = 10_000,
): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = records(broker).find(match)
    if (found) return found
    if (Date.now() > deadline)
      throw new Error(`no log line for ${what}:\n${lines(broker).join('\n')}`)
    await new Promise<void>((resolve) => broker.child.stderr!.once('data', () => resolve()))
  }
}

test('the logger redacts credential fields at any depth and writes errors with their stack as a field', () => {
  const out: string[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      out.push(chunk.toString())
      done()
    },
  })
  const log = createLogger('debug', sink as never)
  log.info('request', {
    authorization: 'Bearer top-secret-1',
    token: 'ssf_top-secret-2',
    headers: { authorization: 'Bearer top-secret-3' },
    nested: { deeper: { client_secret: 'top-secret-4' } },
    stream_id: 's1',
  })
  log.error('boom', { error: new Error('it broke') })
  log.debug('visible at debug')
  const [first, second, third] = out.map((l) => JSON.parse(l))
  assert.equal(first.level, 'info')
  assert.equal(first.msg, 'request')
  assert.equal(first.stream_id, 's1')
  assert.equal(first.authorization, REDACTED)
  assert.equal(first.token, REDACTED)
  assert.equal(first.headers.authorization, REDACTED)
  assert.equal(first.nested.deeper.client_secret, REDACTED)
  assert.doesNotMatch(out.join(''), /top-secret/)
  assert.equal(second.level, 'error')
  assert.equal(second.error.message, 'it broke')
  assert.match(second.error.stack, /Error: it broke\n\s+at /)
  assert.equal(out[1]!.split('\n').filter(Boolean).length, 1, 'one line, the stack inside the JSON')
  assert.equal(third.level, 'debug')
  const quiet: string[] = []
  createLogger(
    'warn',
    new Writable({
      write(c, _e, d) {
        quiet.push(c.toString())
        d()
      },
    }) as never,
  ).info('hidden')
  assert.equal(quiet.length, 0)
})

test(
  'logs: a warn line per failed push attempt, request ids, JSON only (also during a Redis outage), no secret ever',
  { timeout: 60_000 },
  async () => {
    const port = await freePort()
    const broker = await spawnBroker(testEnv(redis.url, port), { logLevel: 'debug' })
    const failing = await startReceiver()
    failing.respond = (_push, res) => void res.writeHead(503).end()
    try {
      const api = new Api(broker.url)
      const rx = await api.createClient(['receiver'])
      const emitter = await api.createClient(['emitter'])
      const pushSecret = 'Bearer push-secret-0123456789abcdef'
      // A receiver that refuses every connection, and one that answers 503.
      const closedPort = await freePort()
      const refused = await api.createPushStream(
        rx.token,
        `http://127.0.0.1:${closedPort}/events`,
        {
          delivery: {
            method: 'urn:ietf:rfc:8935',
            endpoint_url: `http://127.0.0.1:${closedPort}/events`,
            authorization_header: pushSecret,
          },
        },
      )
      const unavailable = await api.createPushStream(rx.token, failing.url)
      const emitted = await api.request('POST', '/events', {
        token: emitter.token,
        json: { type: SESSION_REVOKED, subject: { format: 'email', email: 'alice@example.com' } },
        headers: { 'x-request-id': 'trace-me-123' },
      })
      assert.equal(emitted.status, 202)

      const refusedLine = await waitForLog(
        broker,
        'refused push',
        (r) => r.level === 'warn' && r.stream_id === refused.stream_id && r.outcome === 'retry',
      )
      assert.equal(typeof refusedLine.jti, 'string')
      assert.match(refusedLine.error, /connection_refused/)
      assert.equal(typeof refusedLine.latency_ms, 'number')
      const unavailableLine = await waitForLog(
        broker,
        '503 push',
        (r) => r.level === 'warn' && r.stream_id === unavailable.stream_id && r.outcome === 'retry',
      )
      assert.equal(unavailableLine.status, 503)
      assert.equal(typeof unavailableLine.latency_ms, 'number')
      // Retries keep logging, one line per attempt.
      await waitForLog(
        broker,
        'second attempt',
        () =>
          records(broker).filter((r) => r.stream_id === refused.stream_id && r.outcome === 'retry')
            .length >= 2,
      )

      // The request's id is in its log line.
      const requestLine = await waitForLog(
        broker,
        'request id',
        (r) => r.request_id === 'trace-me-123',
      )
      assert.equal(requestLine.route, '/events')
      assert.equal(requestLine.status, 202)

      // A Redis outage: requests fail with 503, the logs stay one JSON object per line.
      redis.pause()
      try {
        const res = await api.request('GET', '/ssf/streams', {
          token: rx.token,
          headers: { 'x-request-id': 'during-outage' },
        })
        assert.equal(res.status, 503)
      } finally {
        redis.resume()
      }
      await waitForLog(
        broker,
        'outage request',
        (r) => r.request_id === 'during-outage' && r.level === 'warn',
      )

      const all = broker.stderr.join('')
      for (const secret of [ADMIN_TOKEN, rx.token, emitter.token, 'push-secret-0123456789abcdef'])
        assert.ok(!all.includes(secret), 'a secret reached the log')
      records(broker) // throws on any non-JSON line
    } finally {
      await broker.kill('SIGKILL')
      await failing.close()
    }
  },
)

test(
  'shutdown: a long poll in flight is answered 200 {"sets":{}} and the process exits 0',
  { timeout: 30_000 },
  async () => {
    const port = await freePort()
    const broker = await spawnBroker(
      testEnv(redis.url, port, { SSF_BROKER_POLL_MAX_WAIT_SECONDS: '30' }),
    )
    try {
      const api = new Api(broker.url)
      const rx = await api.createClient(['receiver'])
      const stream = await api.request('POST', '/ssf/streams', {
        token: rx.token,
        json: { delivery: { method: 'urn:ietf:rfc:8936' } },
      })
      assert.equal(stream.status, 201)
      const pollPath = new URL(stream.body.delivery.endpoint_url).pathname
      const poll = api.request('POST', pollPath, {
        token: rx.token,
        json: { maxEvents: 10, returnImmediately: false },
      })
      // The poll is held (nothing to hand out).
      const held = await Promise.race([
        poll.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), 500)),
      ])
      assert.equal(held, true, 'the long poll should be waiting')
      const signalledAt = Date.now()
      broker.child.kill('SIGTERM')
      const res = await poll
      assert.equal(res.status, 200)
      assert.deepEqual(res.body, { sets: {} })
      assert.equal(await broker.exited, 0)
      assert.ok(Date.now() - signalledAt < 3000, `exit took ${Date.now() - signalledAt} ms`)
      // Stopped accepting.
      await assert.rejects(fetch(`${broker.url}/healthz`))
    } finally {
      await broker.kill('SIGKILL')
    }
  },
)

test(
  'shutdown: an in-flight push finishes within the grace period before the process exits',
  { timeout: 30_000 },
  async () => {
    let release!: (res: ServerResponse) => void
    let arrived!: () => void
    const pushArrived = new Promise<void>((r) => (arrived = r))
    let answeredAt = 0
    const slow = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        arrived()
        release = (r) => {
          answeredAt = Date.now()
          r.writeHead(202).end()
        }
        setTimeout(() => release(res), 800)
      })
    })
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r))
    const port = await freePort()
    const broker = await spawnBroker(
      testEnv(redis.url, port, { SSF_BROKER_SHUTDOWN_GRACE_SECONDS: '5' }),
      { logLevel: 'debug' },
    )
    try {
      const api = new Api(broker.url)
      const rx = await api.createClient(['receiver'])
      const emitter = await api.createClient(['emitter'])
      const stream = await api.createPushStream(
        rx.token,
        `http://127.0.0.1:${(slow.address() as AddressInfo).port}/events`,
      )
      // Ignore the verification SETs some setups send first: wait for the push of the emitted event.
      await api.emit(emitter.token, {
        type: SESSION_REVOKED,
        subject: { format: 'email', email: 'bob@example.com' },
      })
      await pushArrived
      broker.child.kill('SIGTERM')
      assert.equal(await broker.exited, 0)
      assert.ok(answeredAt > 0 && Date.now() >= answeredAt, 'exited before the push was answered')
      const delivered = records(broker).find(
        (r) => r.msg === 'SET delivered' && r.stream_id === stream.stream_id,
      )
      assert.ok(delivered, 'the in-flight push was completed and recorded')
    } finally {
      await broker.kill('SIGKILL')
      slow.closeAllConnections()
      await new Promise((r) => slow.close(r))
    }
  },
)

test(
  'shutdown: a push that never answers cannot hold the process past the grace period',
  { timeout: 30_000 },
  async () => {
    let arrived!: () => void
    const pushArrived = new Promise<void>((r) => (arrived = r))
    const hanging = createServer((req) => {
      req.resume()
      req.on('end', () => arrived())
    })
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r))
    const port = await freePort()
    const broker = await spawnBroker(
      testEnv(redis.url, port, {
        SSF_BROKER_SHUTDOWN_GRACE_SECONDS: '1',
        SSF_BROKER_PUSH_TIMEOUT_MS: '60000',
      }),
    )
    try {
      const api = new Api(broker.url)
      const rx = await api.createClient(['receiver'])
      const emitter = await api.createClient(['emitter'])
      await api.createPushStream(
        rx.token,
        `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/events`,
      )
      await api.emit(emitter.token, {
        type: SESSION_REVOKED,
        subject: { format: 'email', email: 'carol@example.com' },
      })
      await pushArrived
      const signalledAt = Date.now()
      broker.child.kill('SIGTERM')
      await broker.exited
      const took = Date.now() - signalledAt
      assert.ok(took >= 900, `exited after ${took} ms: did not wait for the push`)
      assert.ok(took <= 3000, `exit took ${took} ms (grace 1 s + 2 s)`)
    } finally {
      await broker.kill('SIGKILL')
      hanging.closeAllConnections()
      await new Promise((r) => hanging.close(r))
    }
  },
)

test(
  'shutdown: with Redis frozen the process still exits within the grace period plus 2 s',
  { timeout: 30_000 },
  async () => {
    const port = await freePort()
    const broker = await spawnBroker(
      testEnv(redis.url, port, { SSF_BROKER_SHUTDOWN_GRACE_SECONDS: '2' }),
    )
    try {
      redis.pause()
      const signalledAt = Date.now()
      broker.child.kill('SIGTERM')
      await broker.exited
      const took = Date.now() - signalledAt
      assert.ok(took <= 4000, `exit took ${took} ms (grace 2 s + 2 s)`)
      records(broker)
    } finally {
      redis.resume()
      await broker.kill('SIGKILL')
    }
  },
)

test(
  'Redis gone: the log stays one JSON object per line, and SIGTERM still exits within the grace period plus 2 s',
  { timeout: 40_000 },
  async () => {
    const own = await startTestRedis()
    const port = await freePort()
    const broker = await spawnBroker(
      testEnv(own.url, port, { SSF_BROKER_SHUTDOWN_GRACE_SECONDS: '2' }),
    )
    try {
      await own.stop()
      // A lost connection is reported once, as JSON, not as a stack trace per command.
      await waitForLog(
        broker,
        'a connection error',
        (r) => r.msg === 'Redis connection lost; retrying',
        15_000,
      )
      const ready = await fetch(`${broker.url}/readyz`)
      assert.equal(ready.status, 503)
      const signalledAt = Date.now()
      broker.child.kill('SIGTERM')
      await broker.exited
      const took = Date.now() - signalledAt
      assert.ok(took <= 4000, `exit took ${took} ms (grace 2 s + 2 s)`)
      const all = records(broker) // throws on any non-JSON line
      assert.ok(all.length >= 3)
    } finally {
      await broker.kill('SIGKILL')
    }
  },
)
