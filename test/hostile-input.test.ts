/**
 * Hostile input against a real broker: JSON nested past SSF_BROKER_MAX_JSON_DEPTH (400 before any work,
 * never a stack overflow), errors Node's HTTP server answers itself (431, malformed and duplicate headers)
 * carrying the JSON error body, NUL / lone surrogates / bidi controls refused in identifiers and texts,
 * explicit `null` refused, and redrive limits reachable within its body cap.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { eventsIngested } from './helpers/ingest.js'

let redis: TestRedis
let broker: TestBroker
let emitter: { token: string }
let rx: { token: string }
let streamId: string

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, { SSF_BROKER_MAX_JSON_DEPTH: '32' })
  emitter = await broker.api.createClient(['emitter'])
  rx = await broker.api.createClient(['receiver'])
  streamId = (await broker.api.request('POST', '/ssf/streams', { token: rx.token, json: {} })).body
    .stream_id
})

after(async () => {
  await broker.close()
  await redis.stop()
})

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

const ingestCount = () => eventsIngested(broker.url)

test('JSON nested deeper than SSF_BROKER_MAX_JSON_DEPTH is 400 before any work, at any depth', async () => {
  const before = await ingestCount()
  for (const depth of [33, 100, 4200, 100_000]) {
    const body = `{"type":"caep/session-revoked","subject":{"format":"opaque","id":"x"},"event":{"https://example.com/ext":${nested(depth)}}}`
    const res = await broker.api.request('POST', '/events', { token: emitter.token, body })
    assert.equal(res.status, 400, `depth ${depth}: ${res.text}`)
    assert.match(res.body.error_description, /nested deeper than 32/)
  }
  // Brackets inside strings do not count; 32 levels are accepted.
  const ok = await broker.api.request('POST', '/events', {
    token: emitter.token,
    body: `{"type":"caep/session-revoked","subject":{"format":"opaque","id":"${'['.repeat(200)}"},"event":{"https://example.com/ext":${nested(30)}}}`,
  })
  assert.equal(ok.status, 202, ok.text)
  assert.equal(await ingestCount(), before + 1, 'only the accepted event was stored')
  for (const path of ['/ssf/streams', '/ssf/status', '/ssf/verify']) {
    const res = await broker.api.request('POST', path, {
      token: rx.token,
      body: `{"stream_id":"${streamId}","description":${nested(5000)}}`,
    })
    assert.equal(res.status, 400, `${path}: ${res.text}`)
    assert.equal(res.body.error, 'invalid_json')
  }
})

async function raw(request: string): Promise<{ status: number; headers: string; body: string }> {
  const { port, hostname } = new URL(broker.url)
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let data = ''
    socket.on('data', (c) => (data += c.toString()))
    socket.on('end', () => resolve(data))
    socket.on('error', reject)
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer')))
    socket.write(request)
  })
  const [head = '', body = ''] = text.split('\r\n\r\n')
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), headers: head, body }
}

test('errors Node answers itself carry the JSON error body', async () => {
  const cases: [string, string, number][] = [
    ['URL over 16 KB', `GET /ssf/streams?x=${'a'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    [
      'headers over 16 KB',
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`,
      431,
    ],
    ['malformed header name', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400],
    ['malformed request line', 'NOT A REQUEST\r\n\r\n', 400],
    [
      'two Content-Length headers',
      'POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}',
      400,
    ],
  ]
  for (const [what, request, status] of cases) {
    const res = await raw(request)
    assert.equal(res.status, status, `${what}: ${res.headers}`)
    assert.match(res.headers, /Content-Type: application\/json/i, what)
    const body = JSON.parse(res.body) as Record<string, unknown>
    assert.equal(typeof body.error, 'string', what)
    assert.equal(typeof body.error_description, 'string', what)
  }
  const dup = await raw(
    `GET /ssf/streams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${rx.token}\r\nAuthorization: Bearer ${rx.token}\r\nConnection: close\r\n\r\n`,
  )
  assert.equal(dup.status, 400, dup.headers)
  assert.match(JSON.parse(dup.body).error_description, /exactly one Authorization header/)
})

const BAD_TEXT: [string, string][] = [
  ['NUL', 'a\u0000b'],
  ['lone high surrogate', 'a\ud800b'],
  ['lone low surrogate', 'a\udc00b'],
  ['RLO override', 'abc\u202Edef'],
  ['LRI isolate', 'abc\u2066def'],
  ['RLM mark', 'abc\u200Fdef'],
]

test('NUL, lone surrogates and bidi controls are refused in identifiers, audience, description, reason, state, txn and names', async () => {
  const before = await ingestCount()
  const streamsBefore = (await broker.api.request('GET', '/ssf/streams', { token: rx.token })).text
  for (const [what, bad] of BAD_TEXT) {
    const requests: [string, string, string | undefined, unknown][] = [
      [
        'subject id',
        '/events',
        emitter.token,
        { type: 'caep/session-revoked', subject: { format: 'opaque', id: bad } },
      ],
      [
        'subject email',
        '/events',
        emitter.token,
        { type: 'caep/session-revoked', subject: { format: 'email', email: `${bad}@example.com` } },
      ],
      [
        'txn',
        '/events',
        emitter.token,
        { type: 'caep/session-revoked', subject: { format: 'opaque', id: 'x' }, txn: bad },
      ],
      ['description', '/ssf/streams', rx.token, { description: bad }],
      ['update description', '/ssf/streams', rx.token, { stream_id: streamId, description: bad }],
      ['reason', '/ssf/status', rx.token, { stream_id: streamId, status: 'paused', reason: bad }],
      ['state', '/ssf/verify', rx.token, { stream_id: streamId, state: bad }],
      ['stream_id', '/ssf/status', rx.token, { stream_id: `${streamId}${bad}`, status: 'paused' }],
      ['client name', '/admin/clients', ADMIN_TOKEN, { name: bad, roles: ['receiver'] }],
      [
        'client audience',
        '/admin/clients',
        ADMIN_TOKEN,
        { name: 'n', roles: ['receiver'], audience: `https://rp.example/${bad}` },
      ],
    ]
    for (const [field, path, token, json] of requests) {
      const method = field === 'update description' ? 'PATCH' : 'POST'
      const res = await broker.api.request(method, path, {
        ...(token ? { token } : {}),
        body: JSON.stringify(json),
      })
      assert.equal(res.status, 400, `${what} in ${field}: ${res.status} ${res.text}`)
      assert.ok(
        !/[\u0000\u202A-\u202E\u2066-\u2069\u200F]/.test(res.text) &&
          !/[\uD800-\uDFFF]/.test(res.text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')),
        `${what} in ${field}: not echoed`,
      )
    }
  }
  assert.equal(await ingestCount(), before, 'no event stored')
  assert.equal(
    (await broker.api.request('GET', '/ssf/streams', { token: rx.token })).text,
    streamsBefore,
    'streams unchanged',
  )
  const clients = (await broker.api.request('GET', '/admin/clients', { token: ADMIN_TOKEN })).body
    .clients as { name: string }[]
  assert.equal(clients.length, 2, 'no client created')
})

test('explicit null for an optional member is refused with a clear message', async () => {
  const cases: [string, string, string, unknown, RegExp][] = [
    [
      'event: null',
      '/events',
      emitter.token,
      { type: 'caep/session-revoked', subject: { format: 'opaque', id: 'x' }, event: null },
      /event: must not be null/,
    ],
    [
      'txn: null',
      '/events',
      emitter.token,
      { type: 'caep/session-revoked', subject: { format: 'opaque', id: 'x' }, txn: null },
      /txn: must not be null/,
    ],
    [
      'batch event: null',
      '/events',
      emitter.token,
      {
        events: [
          { type: 'caep/session-revoked', subject: { format: 'opaque', id: 'x' }, event: null },
        ],
      },
      /events\[0\]\.event: must not be null/,
    ],
    [
      'signing_alg: null',
      '/admin/clients',
      ADMIN_TOKEN,
      { name: 'n', roles: ['receiver'], signing_alg: null },
      /signing_alg: must not be null/,
    ],
    [
      'description: null',
      '/ssf/streams',
      rx.token,
      { description: null },
      /description: must not be null/,
    ],
    [
      'delivery.endpoint_url: null',
      '/ssf/streams',
      rx.token,
      { delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: null } },
      /delivery\.endpoint_url: must not be null/,
    ],
  ]
  for (const [what, path, token, json, message] of cases) {
    const res = await broker.api.request('POST', path, { token, json })
    assert.equal(res.status, 400, `${what}: ${res.text}`)
    assert.match(res.body.error_description, message, what)
  }
})

test('redrive: 10000 ids fit within its body cap; a filter form redrives by stream and time, with a limit', async () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `dl${String(i).padStart(14, '0')}`)
  const res = await broker.api.request('POST', '/admin/dead-letters/redrive', {
    token: ADMIN_TOKEN,
    json: { ids },
  })
  assert.equal(res.status, 200, res.text)
  // None exists: each is named in skipped.
  assert.deepEqual(res.body, {
    redriven: [],
    skipped: ids.map((id) => ({ id, reason: 'no such dead letter' })),
  })
  const tooMany = await broker.api.request('POST', '/admin/dead-letters/redrive', {
    token: ADMIN_TOKEN,
    json: { ids: [...ids, 'one-more'] },
  })
  assert.equal(tooMany.status, 400)
  const filtered = await broker.api.request('POST', '/admin/dead-letters/redrive', {
    token: ADMIN_TOKEN,
    json: { stream_id: streamId, before: Date.now(), limit: 10 },
  })
  assert.equal(filtered.status, 200, filtered.text)
  const mixed = await broker.api.request('POST', '/admin/dead-letters/redrive', {
    token: ADMIN_TOKEN,
    json: { ids: ['a'], limit: 10 },
  })
  assert.equal(mixed.status, 400)
})
