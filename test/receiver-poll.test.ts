/**
 * The receiver SDK's poll client (RFC 8936). Part one runs against the real broker's poll delivery
 * (stream made by the stream client; acks and setErrs read back from the broker's delivery log). Part two
 * uses a small RFC 8936 transmitter on loopback that records every poll body and can fail on demand, to
 * check the wire: ack only after the handler succeeded, setErrs on failure, backoff, a clean stop.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import {
  ReceiverError,
  createPollClient,
  createReceiver,
  createRevocationIndex,
  createStreamClient,
  isReceiverError,
  type Receiver,
  type VerifiedSet,
} from '../src/receiver/index.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { ADMIN_TOKEN, freePort, startTestBroker, type TestBroker } from './helpers/broker.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('poll from the real broker', () => {
  let redis: TestRedis
  let broker: TestBroker
  let receiver: Receiver
  let token: string

  before(async () => {
    redis = await startTestRedis()
    broker = await startTestBroker(redis.url, { SSF_BROKER_POLL_MAX_WAIT_SECONDS: '5' })
    const client = await broker.api.createClient(['receiver'], { signing_alg: 'ES256' })
    token = client.token
    receiver = createReceiver({
      issuer: broker.issuer,
      audience: client.audience,
      allowInsecureIssuer: true,
    })
  })

  after(async () => {
    await broker?.close()
    await redis?.stop()
  })

  const deliveries = async (streamId: string) =>
    (
      await broker.api.request('GET', `/admin/streams/${streamId}/deliveries`, {
        token: ADMIN_TOKEN,
      })
    ).body as { pending: number; deliveries: { jti: string; outcome: string; error?: string }[] }

  test(
    'long poll: events and a verification arrive, are acknowledged, failures go back as setErrs; stop is clean',
    { timeout: 30_000 },
    async () => {
      const streams = createStreamClient({ receiver, token })
      const stream = await streams.ensureStream({ events_requested: [SESSION_REVOKED] })
      assert.equal(stream.delivery.method, 'urn:ietf:rfc:8936')
      assert.equal(typeof stream.delivery.endpoint_url, 'string')
      assert.equal(
        (await streams.ensureStream({ events_requested: [SESSION_REVOKED] })).stream_id,
        stream.stream_id,
        'reused',
      )

      const got: VerifiedSet[] = []
      const refuse = new Set<string>()
      const errors: unknown[] = []
      const poller = createPollClient({
        receiver,
        endpoint: stream,
        token,
        handlerAttempts: 2,
        onError: (error) => errors.push(error),
        onEvent: (set) => {
          const email = (set.subject as { email?: string }).email
          if (email && refuse.has(email)) throw new Error('cannot process')
          got.push(set)
        },
      })
      const stop = new AbortController()
      const running = poller.start(stop.signal)
      assert.equal(poller.running, true)

      const emitter = await broker.api.createClient(['emitter'])
      const emit = (email: string) =>
        broker.api.emit(emitter.token, {
          type: 'caep/session-revoked',
          subject: { format: 'email', email },
          event: { reason_admin: { en: 'poll test' } },
        })
      const first = await emit('alice@example.com')
      assert.equal(first.status, 202)
      await until(() => got.length === 1, 'the first SET')
      assert.equal(got[0]!.txn, first.body.txn)
      assert.deepEqual(got[0]!.subject, { format: 'email', email: 'alice@example.com' })

      const { state, delivered } = await streams.triggerVerification(stream.stream_id)
      const verification = await delivered
      assert.equal(verification.type, VERIFICATION)
      assert.equal(verification.event.state, state)

      refuse.add('mallory@example.com')
      await emit('mallory@example.com')
      await until(
        async () =>
          (await deliveries(stream.stream_id)).deliveries.some((d) => d.outcome === 'set_error'),
        'the setErr at the broker',
      )
      const log = await deliveries(stream.stream_id)
      const setError = log.deliveries.find((d) => d.outcome === 'set_error')!
      assert.equal(setError.error, 'invalid_request')
      assert.ok(errors.some((e) => e instanceof Error && e.message === 'cannot process'))

      await until(
        async () =>
          (await deliveries(stream.stream_id)).deliveries.filter((d) => d.outcome === 'acked')
            .length >= 2,
        'acks at the broker',
      )
      const acked = (await deliveries(stream.stream_id)).deliveries
        .filter((d) => d.outcome === 'acked')
        .map((d) => d.jti)
      assert.ok(acked.includes(got[0]!.jti), 'the first SET was acknowledged')
      assert.ok(acked.includes(verification.jti), 'the verification SET was acknowledged')

      // The client is now inside a long poll the broker holds for up to 5 s; stopping aborts it at once.
      const stopAt = Date.now()
      stop.abort()
      await running
      console.log(`# poll stop took ${Date.now() - stopAt} ms`)
      assert.equal(poller.running, false)
      assert.deepEqual(poller.pending, { ack: 0, setErrs: 0 })
      assert.equal(
        (await deliveries(stream.stream_id)).pending,
        0,
        'nothing left unacknowledged at the broker',
      )
    },
  )
})

/** A loopback RFC 8936 transmitter: metadata, JWKS, one poll endpoint; queues SETs, records every poll. */
class PollTransmitter {
  issuer = ''
  server: Server
  key!: { privateKey: CryptoKey; jwk: JWK }
  queue = new Map<string, string>() // jti -> SET, unacknowledged
  polls: Record<string, unknown>[] = []
  /** Status codes to answer the next polls with (then normal). */
  failures: { status: number; retryAfter?: string }[] = []
  #wake: (() => void) | undefined

  constructor() {
    this.server = createServer((req, res) => void this.#handle(req, res))
  }

  async start(port = 0): Promise<void> {
    if (!this.key) {
      const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
      this.key = {
        privateKey: pair.privateKey,
        jwk: { ...(await exportJWK(pair.publicKey)), kid: 'poll-k1', alg: 'RS256' },
      }
    }
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r))
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  get pollUrl(): string {
    return `${this.issuer}/poll/s1`
  }

  async enqueue(email: string, overrides: Record<string, unknown> = {}): Promise<string> {
    const jti = randomUUID()
    const payload = {
      iss: this.issuer,
      aud: 'poll-aud',
      iat: Math.floor(Date.now() / 1000),
      jti,
      sub_id: { format: 'email', email },
      events: { [SESSION_REVOKED]: { event_timestamp: 1 } },
      ...overrides,
    }
    this.queue.set(
      jti,
      await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'RS256', kid: 'poll-k1', typ: 'secevent+jwt' })
        .sign(this.key.privateKey),
    )
    this.#wake?.()
    return jti
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    if (req.url === '/.well-known/ssf-configuration')
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer: this.issuer,
          jwks_uri: `${this.issuer}/jwks.json`,
          delivery_methods_supported: ['urn:ietf:rfc:8936'],
        }),
      )
    if (req.url === '/jwks.json')
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: [this.key.jwk] }))
    if (req.url !== '/poll/s1' || req.method !== 'POST') return void res.writeHead(404).end()
    if (req.headers.authorization !== 'Bearer poll-token')
      return void res.writeHead(401, { 'www-authenticate': 'Bearer' }).end()
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      maxEvents?: number
      returnImmediately?: boolean
      ack?: string[]
      setErrs?: Record<string, unknown>
    }
    this.polls.push(body)
    const failure = this.failures.shift()
    if (failure)
      return void res
        .writeHead(failure.status, failure.retryAfter ? { 'retry-after': failure.retryAfter } : {})
        .end()
    for (const jti of body.ack ?? []) this.queue.delete(jti)
    for (const jti of Object.keys(body.setErrs ?? {})) this.queue.delete(jti)
    if (body.maxEvents !== 0 && this.queue.size === 0 && body.returnImmediately !== true) {
      // Long poll: hold until something is queued, at most 300 ms, or the client goes away.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 300)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
        req.socket.once('close', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      this.#wake = undefined
    }
    if (res.destroyed) return
    const sets =
      body.maxEvents === 0
        ? {}
        : Object.fromEntries([...this.queue].slice(0, body.maxEvents ?? 100))
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sets }))
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.closeAllConnections()
      this.server.close(() => r())
    })
  }
}

describe('poll client on the wire (loopback RFC 8936 transmitter)', () => {
  let tx: PollTransmitter
  const receiverFor = () =>
    createReceiver({ issuer: tx.issuer, audience: 'poll-aud', allowInsecureIssuer: true })

  before(async () => {
    tx = new PollTransmitter()
    await tx.start()
  })
  after(() => tx.close())

  test('a jti is acknowledged in the poll after its handler finished, never before', async () => {
    const jti = await tx.enqueue('a@example.com')
    tx.polls = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let done = false
    const poller = createPollClient({
      receiver: receiverFor(),
      endpoint: tx.pollUrl,
      token: 'poll-token',
      onEvent: async () => {
        await gate
        done = true
      },
    })
    const first = poller.pollOnce({ returnImmediately: true })
    await until(() => tx.polls.length === 1, 'the first poll')
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(done, false)
    assert.equal(poller.pending.ack, 0, 'no ack while the handler runs')
    release()
    const result = await first
    assert.equal(result.accepted, 1)
    assert.equal(poller.pending.ack, 1)
    await poller.pollOnce({ returnImmediately: true })
    assert.deepEqual(tx.polls[1]!.ack, [jti])
    assert.equal(tx.queue.has(jti), false)
  })

  test('a SET that fails verification, or whose handler keeps failing, goes back in setErrs', async () => {
    tx.queue.clear()
    const forged = await tx.enqueue('b@example.com', { iss: 'https://evil.example' })
    const broken = await tx.enqueue('c@example.com')
    const good = await tx.enqueue('d@example.com')
    tx.polls = []
    let attempts = 0
    const poller = createPollClient({
      receiver: receiverFor(),
      endpoint: tx.pollUrl,
      token: 'poll-token',
      handlerAttempts: 3,
      onEvent: (set) => {
        if (set.subject.email === 'c@example.com') {
          attempts++
          throw new Error('store unavailable')
        }
      },
    })
    const result = await poller.pollOnce({ returnImmediately: true })
    assert.deepEqual(
      { received: result.received, accepted: result.accepted, rejected: result.rejected },
      { received: 3, accepted: 1, rejected: 2 },
    )
    assert.equal(attempts, 3, 'the handler was tried handlerAttempts times')
    await poller.pollOnce({ returnImmediately: true })
    const sent = tx.polls[1] as {
      ack: string[]
      setErrs: Record<string, { err: string; description: string }>
    }
    assert.deepEqual(sent.ack, [good])
    assert.equal(sent.setErrs[forged]!.err, 'invalid_issuer')
    assert.equal(sent.setErrs[broken]!.err, 'invalid_request')
    assert.equal(typeof sent.setErrs[broken]!.description, 'string')
    assert.equal(tx.queue.size, 0)
  })

  test('a transient failure (a store down) leaves the SET unacknowledged, neither acked nor in setErrs', async () => {
    tx.queue.clear()
    const jti = await tx.enqueue('g@example.com')
    const index = createRevocationIndex()
    let down = true
    const poller = createPollClient({
      receiver: receiverFor(),
      endpoint: tx.pollUrl,
      token: 'poll-token',
      onEvent: async (set) => {
        if (down)
          throw new ReceiverError('ERR_STORE_UNAVAILABLE', 'the revocation store is unavailable')
        await index.apply(set)
      },
    })
    const result = await poller.pollOnce({ returnImmediately: true })
    assert.deepEqual(
      { accepted: result.accepted, rejected: result.rejected },
      { accepted: 0, rejected: 0 },
    )
    assert.deepEqual(poller.pending, { ack: 0, setErrs: 0 })
    down = false
    const retried = await poller.pollOnce({ returnImmediately: true }) // the transmitter still holds it
    assert.equal(retried.accepted, 1, 'processed on redelivery (the jti was forgotten)')
    assert.ok(await index.check({ sub: 'g@example.com', iat: 0 }))
    assert.equal(tx.queue.has(jti), true)
  })

  test('a redelivered SET (lost ack) is acknowledged again without running the handler', async () => {
    tx.queue.clear()
    const jti = await tx.enqueue('e@example.com')
    const set = tx.queue.get(jti)!
    let runs = 0
    const poller = createPollClient({
      receiver: receiverFor(),
      endpoint: tx.pollUrl,
      token: 'poll-token',
      onEvent: () => void runs++,
    })
    await poller.pollOnce({ returnImmediately: true })
    await poller.pollOnce({ returnImmediately: true }) // carries the ack
    assert.equal(tx.queue.has(jti), false)
    tx.queue.set(jti, set) // the transmitter lost our ack and hands the SET out again
    tx.polls = []
    const result = await poller.pollOnce({ returnImmediately: true })
    assert.equal(result.duplicates, 1)
    assert.equal(runs, 1)
    await poller.pollOnce({ returnImmediately: true })
    assert.deepEqual(tx.polls.at(-1)!.ack, [jti])
  })

  test(
    'backoff: unreachable, then 503 with Retry-After, then recovery; each retry delay is reported',
    { timeout: 20_000 },
    async () => {
      // Start with nothing listening on the port the transmitter will use.
      const port = await freePort()
      const later = new PollTransmitter()
      later.key = tx.key
      const issuer = `http://127.0.0.1:${port}`
      const receiver = createReceiver({ issuer, audience: 'poll-aud', allowInsecureIssuer: true })
      const failures: { code: string; retryInMs: number }[] = []
      const got: string[] = []
      const poller = createPollClient({
        receiver,
        endpoint: `${issuer}/poll/s1`,
        token: 'poll-token',
        backoff: { initialMs: 20, maxMs: 160 },
        onEvent: (set) => void got.push(set.jti),
        onError: (error, info) => {
          if (info.retryInMs !== undefined)
            failures.push({
              code: isReceiverError(error) ? error.code : String(error),
              retryInMs: info.retryInMs,
            })
        },
      })
      const stop = new AbortController()
      const running = poller.start(stop.signal)
      await until(() => failures.length >= 5, 'five failed polls')
      console.log(`# backoff while unreachable: ${failures.map((f) => f.retryInMs).join(', ')} ms`)
      assert.ok(failures.every((f) => f.code === 'ERR_TRANSMITTER_UNREACHABLE'))
      const delays = failures.map((f) => f.retryInMs)
      for (let i = 1; i < 4; i++)
        assert.ok(delays[i]! > delays[i - 1]!, `the delay grows: ${delays.join(', ')}`)
      assert.ok(
        delays.every((d) => d <= 160 * 1.2),
        'capped at maxMs (plus jitter)',
      )

      later.failures = [{ status: 503, retryAfter: '1' }]
      await later.start(port)
      try {
        const jti = await later.enqueue('f@example.com')
        await until(() => got.includes(jti), 'delivery after recovery')
        const retryAfter = failures.find((f) => f.code === 'ERR_TRANSMITTER_HTTP')
        assert.ok(retryAfter, 'the 503 was reported')
        assert.ok(
          retryAfter.retryInMs >= 1000,
          `Retry-After: 1 honoured (${retryAfter.retryInMs} ms)`,
        )
        stop.abort()
        await running
        // The stop flushed the ack with an acknowledge-only poll.
        const last = later.polls.at(-1)!
        assert.equal(last.maxEvents, 0)
        assert.deepEqual(last.ack, [jti])
        assert.equal(later.queue.size, 0)
      } finally {
        stop.abort()
        await running
        await later.close()
      }
    },
  )

  test('misuse is a TypeError: a push stream, an http endpoint without allowInsecureIssuer', () => {
    const receiver = receiverFor()
    assert.throws(
      () =>
        createPollClient({
          receiver,
          endpoint: {
            stream_id: 's',
            iss: tx.issuer,
            aud: 'a',
            events_delivered: [],
            delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://x' },
          },
          token: 't',
          onEvent: () => {},
        }),
      TypeError,
    )
    const strict = createReceiver({ issuer: 'https://tr.example', audience: 'a' })
    assert.throws(
      () =>
        createPollClient({
          receiver: strict,
          endpoint: 'http://tr.example/poll',
          token: 't',
          onEvent: () => {},
        }),
      TypeError,
    )
  })
})
