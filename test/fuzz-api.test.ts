/**
 * Property-based fuzzing (fast-check, seeded, bounded in time) of the ingest and stream-management APIs
 * against a real broker and Redis: thousands of generated requests, mostly almost-valid, some hostile.
 * For every one: never a 5xx, never a hang, a JSON error body for every refusal, and a refused request
 * leaves the receiver's streams, the ingest counter and the stream's outbox exactly as they were.
 *
 * FUZZ_SEED reproduces a run; FUZZ_RUNS and FUZZ_TIME_MS change its size.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { eventsIngested, ingestEntriesWaiting } from './helpers/ingest.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201)
const RUNS = Number(process.env.FUZZ_RUNS ?? 4000)
const TIME_MS = Number(process.env.FUZZ_TIME_MS ?? 55_000)
const ANSWER_WITHIN_MS = 6000

let redis: TestRedis
let broker: TestBroker
let receiver: TestReceiver
let rx: { token: string }
let emitter: { token: string }
let baseline: string

before(async () => {
  redis = await startTestRedis()
  // Long polls answer at once, so a poll request cannot look like a hang.
  broker = await startTestBroker(redis.url, {
    SSF_BROKER_POLL_MAX_WAIT_SECONDS: '0',
    SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: '0',
  })
  receiver = await startReceiver()
  rx = await broker.api.createClient(['receiver'])
  emitter = await broker.api.createClient(['emitter'])
  baseline = (
    await broker.api.request('POST', '/ssf/streams', {
      token: rx.token,
      json: { description: 'baseline' },
    })
  ).body.stream_id
})

after(async () => {
  await broker.close()
  await receiver.close()
  await redis.stop()
})

// ---- generators -------------------------------------------------------------------------------------

const hostileText = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\ud800',
  '\udc00b',
  'x\u202Ey',
  '\u2066',
  '\u200F',
  'é',
  '😀',
  'a'.repeat(2000),
  '{"',
  '\\',
  '%00',
  '../',
  '<script>',
)
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: hostileText },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
)
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null))
const anyValue = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(text, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
)
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 })
const strip = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))

const validSubject = fc.oneof(
  fc.record({ format: fc.constant('opaque'), id: fc.string({ minLength: 1, maxLength: 20 }) }),
  fc.record({ format: fc.constant('email'), email: fc.emailAddress() }),
  fc.record({
    format: fc.constant('iss_sub'),
    iss: fc.constant('https://idp.example'),
    sub: fc.string({ minLength: 1, maxLength: 10 }),
  }),
  fc.record({
    format: fc.constant('phone_number'),
    phone_number: fc.constantFrom('+12065550123', '+4915112345678'),
  }),
)
const subject = fc.oneof(
  { weight: 4, arbitrary: validSubject },
  {
    weight: 1,
    arbitrary: fc
      .record({
        format: fc.constant('complex'),
        user: fc.oneof(validSubject, anyValue),
        session: maybe(validSubject),
      })
      .map(strip),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        format: fc.oneof(
          fc.constantFrom('opaque', 'email', 'aliases', 'complex', 'did', 'uri', 'ip-addresses'),
          text,
        ),
        id: maybe(anyValue),
        email: maybe(anyValue),
        identifiers: maybe(anyValue),
        uri: maybe(anyValue),
      })
      .map(strip),
  },
  { weight: 1, arbitrary: anyValue },
)
const eventType = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      'caep/session-revoked',
      'caep/credential-change',
      'risc/account-disabled',
      'caep/token-claims-change',
      'ssf/verification',
    ),
  },
  { weight: 1, arbitrary: text },
)
const payload = fc.oneof(
  fc.constant(undefined),
  fc
    .record({
      event_timestamp: maybe(fc.oneof(fc.integer({ min: 0, max: 2e9 }), anyValue)),
      initiating_entity: maybe(fc.oneof(fc.constantFrom('admin', 'user', 'policy'), text)),
      reason_admin: maybe(fc.oneof(fc.record({ en: text }), anyValue)),
    })
    .map(strip),
  fc.dictionary(fc.oneof(text, fc.constant('https://example.com/ext')), anyValue, { maxKeys: 3 }),
  anyValue,
)
const event = fc
  .record({
    type: maybe(eventType),
    subject: maybe(subject),
    event: payload,
    txn: maybe(fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), anyValue)),
    extra: fc.option(anyValue, { nil: undefined, freq: 6 }),
  })
  .map(strip)

const validEvent = fc
  .record({
    type: fc.constantFrom(
      'caep/session-revoked',
      'caep/credential-change',
      'risc/account-disabled',
    ),
    subject: validSubject,
    txn: maybe(fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/)),
  })
  .map(strip)

const streamIdValue = () =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(baseline) },
    { weight: 2, arbitrary: text },
    { weight: 1, arbitrary: anyValue },
  )
const delivery = fc.oneof(
  fc.constant(undefined),
  fc.record({ method: fc.constant('urn:ietf:rfc:8936') }),
  fc
    .record({
      method: fc.constantFrom('urn:ietf:rfc:8935', 'urn:ietf:rfc:8936', 'push', ''),
      endpoint_url: maybe(
        fc.oneof(
          fc.constant('__receiver__'),
          fc.constant('https://127.0.0.1:1/x'),
          fc.constant('ftp://x/y'),
          text,
        ),
      ),
      authorization_header: maybe(fc.oneof(fc.constant('Bearer abc'), text)),
    })
    .map(strip),
  anyValue,
)
const streamBody = fc
  .record({
    events_requested: maybe(
      fc.oneof(
        fc.constant(['https://schemas.openid.net/secevent/caep/event-type/session-revoked']),
        fc.array(text, { maxLength: 3 }),
        anyValue,
      ),
    ),
    delivery,
    description: maybe(fc.oneof(fc.string({ maxLength: 50 }), anyValue)),
    iss: maybe(anyValue),
    aud: maybe(anyValue),
    min_verification_interval: maybe(anyValue),
    unknown_member: fc.option(anyValue, { nil: undefined, freq: 6 }),
  })
  .map(strip)

// A lone surrogate cannot be percent-encoded as UTF-8: send invalid UTF-8 in its place instead.
const enc = (value: string) =>
  encodeURIComponent(value.replace(/[\uD800-\uDFFF]/g, '\uFFFD')) +
  (/[\uD800-\uDFFF]/.test(value) ? '%ED%A0%80' : '')

interface Req {
  method: string
  path: string
  token: 'rx' | 'emitter' | 'none'
  body?: unknown
  raw?: string
  contentType?: string
}

const requestArb = (): fc.Arbitrary<Req> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .oneof(
          validEvent,
          fc.record({ events: fc.array(validEvent, { minLength: 1, maxLength: 3 }) }),
        )
        .map((body): Req => ({ method: 'POST', path: '/events', token: 'emitter', body })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({
          description: maybe(fc.stringMatching(/^[a-z ]{0,20}$/)),
          delivery: fc.constantFrom(
            undefined,
            { method: 'urn:ietf:rfc:8936' },
            { method: 'urn:ietf:rfc:8935', endpoint_url: '__receiver__' },
          ),
        })
        .map((body): Req => ({
          method: 'POST',
          path: '/ssf/streams',
          token: 'rx',
          body: strip(body),
        })),
    },
    {
      weight: 6,
      arbitrary: fc
        .oneof(event, fc.record({ events: fc.oneof(fc.array(event, { maxLength: 4 }), anyValue) }))
        .map((body): Req => ({ method: 'POST', path: '/events', token: 'emitter', body })),
    },
    {
      weight: 3,
      arbitrary: streamBody.map((body): Req => ({
        method: 'POST',
        path: '/ssf/streams',
        token: 'rx',
        body,
      })),
    },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom('PATCH', 'PUT'), streamBody, streamIdValue())
        .map(([method, body, id]): Req => ({
          method,
          path: '/ssf/streams',
          token: 'rx',
          body: { ...body, stream_id: id },
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          streamIdValue(),
          fc.oneof(fc.constantFrom('enabled', 'paused', 'disabled'), anyValue),
          maybe(fc.oneof(fc.string({ maxLength: 30 }), anyValue)),
        )
        .map(([id, status, reason]): Req => ({
          method: 'POST',
          path: '/ssf/status',
          token: 'rx',
          body: strip({ stream_id: id, status, reason }),
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('/ssf/subjects/add', '/ssf/subjects/remove'),
          streamIdValue(),
          maybe(subject),
          maybe(anyValue),
        )
        .map(([path, id, s, verified]): Req => ({
          method: 'POST',
          path,
          token: 'rx',
          body: strip({ stream_id: id, subject: s, verified }),
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(streamIdValue(), maybe(fc.oneof(fc.string({ maxLength: 30 }), anyValue)))
        .map(([id, state]): Req => ({
          method: 'POST',
          path: '/ssf/verify',
          token: 'rx',
          body: strip({ stream_id: id, state }),
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(fc.constant(baseline), fc.string({ minLength: 1, maxLength: 20 })),
          fc
            .record({
              maxEvents: maybe(anyValue),
              returnImmediately: maybe(anyValue),
              ack: maybe(anyValue),
              setErrs: maybe(anyValue),
            })
            .map(strip),
        )
        .map(([id, body]): Req => ({
          method: 'POST',
          path: `/ssf/poll/${enc(id)}`,
          token: 'rx',
          body,
        })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom('GET', 'DELETE'), fc.oneof(fc.constant(baseline), text))
        .map(([method, id]): Req => ({
          method,
          path: `/ssf/streams?stream_id=${enc(method === 'DELETE' && id === baseline ? `${id}x` : id)}`,
          token: 'rx',
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('/events', '/ssf/streams', '/ssf/status', '/ssf/subjects/add'),
          fc.oneof(
            fc.string({ maxLength: 200 }),
            fc.constantFrom(
              '{',
              '[]',
              'null',
              '"x"',
              '{"a":' + '['.repeat(64) + ']'.repeat(64) + '}',
              '\u0000',
            ),
          ),
          fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', ''),
        )
        .map(([path, raw, contentType]): Req => ({
          method: 'POST',
          path,
          token: path === '/events' ? 'emitter' : 'rx',
          raw,
          contentType,
        })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('/events', '/ssf/streams'), event)
        .map(([path, body]): Req => ({ method: 'POST', path, token: 'none', body })),
    },
  )

// ---- state ------------------------------------------------------------------------------------------

async function snapshot(): Promise<string> {
  const [streams, seq, deliveries] = await Promise.all([
    broker.api.request('GET', '/ssf/streams', { token: rx.token }),
    eventsIngested(broker.url),
    broker.api.request('GET', `/admin/streams/${baseline}/deliveries?limit=1`, {
      token: ADMIN_TOKEN,
    }),
  ])
  const list = (streams.body as Record<string, unknown>[]).map((s) => JSON.stringify(s)).sort()
  return JSON.stringify({ list, seq, pending: deliveries.body?.pending })
}

/** The state once accepted events have been fanned out (no ingest entry waits). */
async function settledSnapshot(): Promise<string> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if ((await ingestEntriesWaiting(redis.client)) === 0) return snapshot()
    if (Date.now() > deadline) throw new Error('ingest queue did not drain')
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function send(req: Req): Promise<{ status: number; text: string; ms: number }> {
  const headers: Record<string, string> = {}
  if (req.token !== 'none')
    headers.authorization = `Bearer ${req.token === 'rx' ? rx.token : emitter.token}`
  let body: string | undefined
  if (req.raw !== undefined) {
    body = req.raw
    if (req.contentType) headers['content-type'] = req.contentType
  } else if (req.body !== undefined) {
    body = JSON.stringify(req.body, (_k, v: unknown) => (v === '__receiver__' ? receiver.url : v))
    headers['content-type'] = 'application/json'
  }
  const started = Date.now()
  try {
    const res = await fetch(broker.url + req.path, {
      method: req.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
    })
    return { status: res.status, text: await res.text(), ms: Date.now() - started }
  } catch (err) {
    return { status: 0, text: String(err), ms: Date.now() - started }
  }
}

test(
  'fuzzed ingest and stream-management requests: never 5xx, never a hang, refusals change nothing',
  { timeout: TIME_MS + 60_000 },
  async (t) => {
    let state = await settledSnapshot()
    const counts = new Map<string, number>()
    let runs = 0
    await fc.assert(
      fc.asyncProperty(requestArb(), async (req) => {
        runs++
        const res = await send(req)
        counts.set(String(res.status), (counts.get(String(res.status)) ?? 0) + 1)
        assert.notEqual(res.status, 0, `no answer within ${ANSWER_WITHIN_MS} ms: ${res.text}`)
        assert.ok(res.status < 500, `${res.status}: ${res.text.slice(0, 300)}`)
        if (res.status >= 400) {
          const error = JSON.parse(res.text) as Record<string, unknown>
          assert.equal(typeof error.error, 'string', res.text)
          assert.equal(typeof error.error_description, 'string', res.text)
          const now = await snapshot()
          assert.equal(
            now,
            state,
            `a refused request (${res.status} ${res.text.slice(0, 200)}) changed state`,
          )
        } else {
          // Keep the receiver's stream list short: a stream the run created has served its purpose.
          if (res.status === 201 && req.path === '/ssf/streams') {
            const created = JSON.parse(res.text) as { stream_id: string }
            assert.equal(
              (
                await broker.api.request('DELETE', `/ssf/streams?stream_id=${created.stream_id}`, {
                  token: rx.token,
                })
              ).status,
              204,
            )
          }
          state = await settledSnapshot()
        }
      }),
      {
        seed: SEED,
        numRuns: RUNS,
        interruptAfterTimeLimit: TIME_MS,
        markInterruptAsFailure: false,
        endOnFailure: true,
      },
    )
    t.diagnostic(
      `seed ${SEED}: ${runs} requests; statuses ${JSON.stringify(Object.fromEntries([...counts].sort()))}`,
    )
    assert.ok(runs >= 1000, `only ${runs} requests in ${TIME_MS} ms`)
  },
)
