/**
 * Every bad input gets a precise JSON error with the right status, and nothing is stored or enqueued.
 * Also: error precedence (401 → 400 → 404) and receiver isolation (another receiver's stream is a 404).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import {
  ADMIN_TOKEN,
  startTestBroker,
  type ApiResponse,
  type TestBroker,
} from './helpers/broker.js'

let redis: TestRedis
let broker: TestBroker
let receiverA: { token: string; client_id: string }
let receiverB: { token: string; client_id: string }
let emitter: { token: string; client_id: string }
let streamA: any
const PUSH = { method: 'urn:ietf:rfc:8935', endpoint_url: 'http://127.0.0.1:9/sink' }

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, { SSF_BROKER_MAX_EVENT_BODY_BYTES: '65536' })
  receiverA = await broker.api.createClient(['receiver'])
  receiverB = await broker.api.createClient(['receiver'])
  emitter = await broker.api.createClient(['emitter'])
  // Paused, so nothing is ever pushed to the unreachable sink.
  streamA = await broker.api.createPushStream(receiverA.token, PUSH.endpoint_url)
  await broker.api.request('POST', '/ssf/status', {
    token: receiverA.token,
    json: { stream_id: streamA.stream_id, status: 'paused' },
  })
})

after(async () => {
  await broker.close()
  await redis.stop()
})

function assertError(res: ApiResponse, status: number, code: string, message?: RegExp) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`)
  assert.match(res.headers.get('content-type') ?? '', /application\/json/)
  assert.equal(res.body.error, code, res.text)
  assert.equal(typeof res.body.error_description, 'string')
  if (message) assert.match(res.body.error_description, message)
}

async function queuedJobs(): Promise<number> {
  const keys = await redis.client.keys('ssf:bull:fanout:*')
  const counts = await Promise.all(
    keys
      .filter((k) => /:(wait|active|delayed|prioritized|paused|completed)$/.test(k))
      .map(async (k) =>
        (await redis.client.type(k)) === 'list' ? redis.client.llen(k) : redis.client.zcard(k),
      ),
  )
  return counts.reduce((a, b) => a + b, 0)
}

describe('POST /events', () => {
  const post = (body: string | undefined, opts: { token?: string; contentType?: string } = {}) =>
    broker.api.request('POST', '/events', {
      token: opts.token ?? emitter.token,
      ...(body !== undefined ? { body } : {}),
      contentType: opts.contentType ?? 'application/json',
    })
  const valid = {
    type: 'caep/session-revoked',
    subject: { format: 'email', email: 'a@example.com' },
  }

  test('no token, a bad token, or a token in the query string: 401/400 with a challenge', async () => {
    const none = await broker.api.request('POST', '/events', { json: valid })
    assertError(none, 401, 'invalid_token')
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /)
    assertError(
      await post(JSON.stringify(valid), {
        token: 'ssf_aaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
      }),
      401,
      'invalid_token',
    )
    assertError(
      await post(JSON.stringify(valid), { token: `${emitter.token}x` }),
      401,
      'invalid_token',
    )
    assertError(
      await broker.api.request('POST', `/events?access_token=${emitter.token}`, { json: valid }),
      400,
      'invalid_request',
      /Authorization header/,
    )
  })

  test('a receiver token cannot post events (403)', async () => {
    assertError(await post(JSON.stringify(valid), { token: receiverA.token }), 403, 'access_denied')
  })

  test('malformed JSON, wrong content type, empty and oversized bodies', async () => {
    const before = await queuedJobs()
    assertError(await post('{"type": "caep/session-revoked",'), 400, 'invalid_json')
    assertError(
      await post(JSON.stringify(valid), { contentType: 'text/plain' }),
      415,
      'unsupported_media_type',
    )
    assertError(await post(''), 400, 'invalid_json')
    assertError(await post('[]'), 400, 'invalid_request', /JSON object/)
    assertError(
      await post(JSON.stringify({ ...valid, event: { reason_admin: { en: 'x'.repeat(70_000) } } })),
      413,
      'payload_too_large',
    )
    assert.equal(await queuedJobs(), before, 'nothing was enqueued')
  })

  test('a chunked body (no Content-Length) is read up to the cap: accepted below it, 413 above', async () => {
    const chunked = async (text: string) => {
      const bytes = new TextEncoder().encode(text)
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 8192) controller.enqueue(bytes.slice(i, i + 8192))
          controller.close()
        },
      })
      const res = await fetch(`${broker.url}/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${emitter.token}`, 'content-type': 'application/json' },
        body,
        duplex: 'half',
      })
      const raw = await res.text()
      return {
        status: res.status,
        headers: res.headers,
        body: JSON.parse(raw) as Record<string, unknown>,
        text: raw,
      }
    }
    const accepted = await chunked(JSON.stringify({ ...valid, txn: 'chunked-ok' }))
    assert.equal(accepted.status, 202, accepted.text)
    assert.equal(accepted.body.txn, 'chunked-ok')
    assertError(
      await chunked(
        JSON.stringify({ ...valid, event: { reason_admin: { en: 'x'.repeat(70_000) } } }),
      ),
      413,
      'payload_too_large',
    )
  })

  const cases: [string, unknown, number, string, RegExp][] = [
    [
      'unknown type',
      { ...valid, type: 'caep/session-exploded' },
      400,
      'invalid_event_type',
      /unknown event type/,
    ],
    ['missing type', { subject: valid.subject }, 400, 'invalid_request', /type: required/],
    [
      'broker-only type',
      { ...valid, type: 'ssf/verification' },
      400,
      'invalid_event_type',
      /cannot be posted/,
    ],
    ['missing subject', { type: valid.type }, 400, 'invalid_subject', /subject: required/],
    [
      'unknown subject format',
      { ...valid, subject: { format: 'nickname', nickname: 'al' } },
      400,
      'invalid_subject',
      /format/,
    ],
    [
      'subject missing member',
      { ...valid, subject: { format: 'email' } },
      400,
      'invalid_subject',
      /email/,
    ],
    [
      'unknown member',
      { ...valid, priority: 'high' },
      400,
      'invalid_request',
      /priority: unknown member/,
    ],
    [
      'missing required field',
      {
        type: 'caep/credential-change',
        subject: valid.subject,
        event: { credential_type: 'password' },
      },
      400,
      'invalid_event',
      /change_type/,
    ],
    [
      'bad enumerated value',
      {
        type: 'caep/credential-change',
        subject: valid.subject,
        event: { credential_type: 'password', change_type: 'explode' },
      },
      400,
      'invalid_event',
      /change_type/,
    ],
    [
      'unknown event member',
      { ...valid, event: { reason_admn: { en: 'x' } } },
      400,
      'invalid_event',
      /reason_admn/,
    ],
    ['bad txn', { ...valid, txn: 42 }, 400, 'invalid_request', /txn/],
    ['empty batch', { events: [] }, 400, 'invalid_request', /at least one/],
    [
      'batch with one bad event',
      { events: [valid, { ...valid, subject: { format: 'email', email: 7 } }] },
      400,
      'invalid_subject',
      /events\[1\]/,
    ],
    [
      // Validated in slices with turns of the event loop between them: still all or nothing.
      'batch with one bad event in a later slice',
      {
        events: Array.from({ length: 300 }, (_, i) =>
          i === 250 ? { ...valid, subject: { format: 'email', email: 7 } } : valid,
        ),
      },
      400,
      'invalid_subject',
      /events\[250\]/,
    ],
    [
      'oversized batch',
      { events: Array.from({ length: 1001 }, () => ({ type: 'x' })) },
      400,
      'invalid_request',
      /at most 1000/,
    ],
  ]
  for (const [name, body, status, code, message] of cases) {
    test(`${name}: ${status} ${code}, nothing enqueued`, async () => {
      const before = await queuedJobs()
      assertError(await post(JSON.stringify(body)), status, code, message)
      assert.equal(await queuedJobs(), before)
    })
  }

  test('a valid batch answers 202 with one txn per event', async () => {
    const res = await post(JSON.stringify({ events: [valid, { ...valid, txn: 'my-txn' }] }))
    assert.equal(res.status, 202)
    assert.equal(res.body.txns.length, 2)
    assert.equal(res.body.txns[1], 'my-txn')
  })
})

describe('stream management errors', () => {
  test('401 before 400 before 404', async () => {
    assertError(
      await broker.api.request('PATCH', '/ssf/streams', { body: '{not json' }),
      401,
      'invalid_token',
    )
    assertError(
      await broker.api.request('PATCH', '/ssf/streams', {
        token: receiverA.token,
        body: '{not json',
      }),
      400,
      'invalid_json',
    )
    assertError(
      await broker.api.request('PATCH', '/ssf/streams', {
        token: receiverA.token,
        json: { stream_id: 'nope', description: 'x' },
      }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('GET', '/ssf/streams?stream_id=nope', { token: receiverA.token }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('GET', '/ssf/status?stream_id=nope', { token: receiverA.token }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('DELETE', '/ssf/streams?stream_id=nope', { token: receiverA.token }),
      404,
      'not_found',
    )
  })

  test('an emitter token cannot manage streams (403)', async () => {
    assertError(
      await broker.api.request('GET', '/ssf/streams', { token: emitter.token }),
      403,
      'access_denied',
    )
  })

  const createCases: [string, unknown, RegExp][] = [
    ['unknown member', { delivery: PUSH, colour: 'blue' }, /colour: unknown member/],
    [
      'transmitter-supplied member',
      { delivery: PUSH, iss: 'https://evil.example' },
      /iss: is set by the transmitter/,
    ],
    [
      'a receiver-chosen poll URL',
      { delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: 'https://x.example/poll' } },
      /set by the transmitter/,
    ],
    [
      'authorization_header on poll',
      { delivery: { method: 'urn:ietf:rfc:8936', authorization_header: 'x' } },
      /only for push/,
    ],
    [
      'unknown method',
      { delivery: { method: 'urn:example:carrier-pigeon', endpoint_url: 'https://x.example' } },
      /unsupported delivery method/,
    ],
    ['missing endpoint_url', { delivery: { method: 'urn:ietf:rfc:8935' } }, /endpoint_url/],
    [
      'bad endpoint_url',
      { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'not a url' } },
      /endpoint_url/,
    ],
    [
      'header injection',
      { delivery: { ...PUSH, authorization_header: 'Bearer x\r\nX-Evil: 1' } },
      /authorization_header/,
    ],
    [
      'events_requested not an array',
      { delivery: PUSH, events_requested: 'all' },
      /events_requested/,
    ],
  ]
  for (const [name, body, message] of createCases) {
    test(`create with ${name}: 400, no stream stored`, async () => {
      const before = (await broker.api.request('GET', '/ssf/streams', { token: receiverB.token }))
        .body.length
      assertError(
        await broker.api.request('POST', '/ssf/streams', { token: receiverB.token, json: body }),
        400,
        'invalid_request',
        message,
      )
      assert.equal(
        (await broker.api.request('GET', '/ssf/streams', { token: receiverB.token })).body.length,
        before,
      )
    })
  }

  test('PATCH with a transmitter-supplied member of a different value is 400 and changes nothing', async () => {
    const res = await broker.api.request('PATCH', '/ssf/streams', {
      token: receiverA.token,
      json: { stream_id: streamA.stream_id, aud: 'someone-else', description: 'changed' },
    })
    assertError(res, 400, 'invalid_request', /aud/)
    const now = await broker.api.request('GET', `/ssf/streams?stream_id=${streamA.stream_id}`, {
      token: receiverA.token,
    })
    assert.equal(now.body.description, undefined)
  })

  test('status: invalid value and unknown member', async () => {
    assertError(
      await broker.api.request('POST', '/ssf/status', {
        token: receiverA.token,
        json: { stream_id: streamA.stream_id, status: 'sleeping' },
      }),
      400,
      'invalid_request',
      /status/,
    )
    assertError(
      await broker.api.request('POST', '/ssf/status', {
        token: receiverA.token,
        json: { stream_id: streamA.stream_id, status: 'paused', why: 'x' },
      }),
      400,
      'invalid_request',
      /why/,
    )
    assertError(
      await broker.api.request('GET', '/ssf/status', { token: receiverA.token }),
      400,
      'invalid_request',
      /stream_id/,
    )
  })
})

describe('receiver isolation', () => {
  test("receiver B cannot read, change, delete, pause or learn of receiver A's stream", async () => {
    const id = streamA.stream_id
    const b = receiverB.token
    const list = await broker.api.request('GET', '/ssf/streams', { token: b })
    assert.equal(list.status, 200)
    assert.ok(!list.body.some((s: any) => s.stream_id === id))
    assertError(
      await broker.api.request('GET', `/ssf/streams?stream_id=${id}`, { token: b }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('PATCH', '/ssf/streams', {
        token: b,
        json: { stream_id: id, description: 'mine now' },
      }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('PUT', '/ssf/streams', {
        token: b,
        json: { stream_id: id, delivery: PUSH },
      }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('DELETE', `/ssf/streams?stream_id=${id}`, { token: b }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('GET', `/ssf/status?stream_id=${id}`, { token: b }),
      404,
      'not_found',
    )
    assertError(
      await broker.api.request('POST', '/ssf/status', {
        token: b,
        json: { stream_id: id, status: 'disabled' },
      }),
      404,
      'not_found',
    )
    const still = await broker.api.request('GET', `/ssf/streams?stream_id=${id}`, {
      token: receiverA.token,
    })
    assert.equal(still.status, 200)
    assert.equal(still.body.description, undefined)
    assert.equal(
      (await broker.api.request('GET', `/ssf/status?stream_id=${id}`, { token: receiverA.token }))
        .body.status,
      'paused',
    )
  })
})

describe('admin', () => {
  test('client creation validates its body and needs the admin token', async () => {
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        json: { name: 'x', roles: ['receiver'] },
      }),
      401,
      'invalid_token',
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: receiverA.token,
        json: { name: 'x', roles: ['receiver'] },
      }),
      403,
      'access_denied',
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'x', roles: ['superuser'] },
      }),
      400,
      'invalid_request',
      /role/,
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'x', roles: [] },
      }),
      400,
      'invalid_request',
      /roles/,
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { roles: ['receiver'] },
      }),
      400,
      'invalid_request',
      /name/,
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'x', roles: ['receiver'], signing_alg: 'HS256' },
      }),
      400,
      'invalid_request',
      /signing_alg/,
    )
    assertError(
      await broker.api.request('POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'x', roles: ['receiver'], extra: 1 },
      }),
      400,
      'invalid_request',
      /extra/,
    )
  })

  test('the token is shown once and stored only as a hash; a deleted client is locked out at once', async () => {
    const created = await broker.api.createClient(['receiver'])
    const secret = created.token.split('.')[1]!
    const dump = JSON.stringify(await redis.client.hgetall(`ssf:client:${created.client_id}`))
    assert.ok(!dump.includes(secret), 'the secret is not stored')
    const listed = await broker.api.request('GET', '/admin/clients', { token: ADMIN_TOKEN })
    assert.ok(listed.body.clients.some((c: any) => c.client_id === created.client_id))
    assert.ok(!listed.text.includes(secret), 'the list does not show tokens')
    assert.equal(
      (await broker.api.request('GET', '/ssf/streams', { token: created.token })).status,
      200,
    )
    assert.equal(
      (
        await broker.api.request('DELETE', `/admin/clients/${created.client_id}`, {
          token: ADMIN_TOKEN,
        })
      ).status,
      204,
    )
    assertError(
      await broker.api.request('GET', '/ssf/streams', { token: created.token }),
      401,
      'invalid_token',
    )
    assertError(
      await broker.api.request('DELETE', `/admin/clients/${created.client_id}`, {
        token: ADMIN_TOKEN,
      }),
      404,
      'not_found',
    )
  })

  test('key rotation publishes the new key and keeps the old one for the overlap', async () => {
    const before = (await broker.api.request('GET', '/jwks.json')).body.keys.map((k: any) => k.kid)
    const res = await broker.api.request('POST', '/admin/keys/rotate', {
      token: ADMIN_TOKEN,
      json: { algs: ['ES256'] },
    })
    assert.equal(res.status, 200)
    assert.equal(res.body.rotated.length, 1)
    const after = (await broker.api.request('GET', '/jwks.json')).body.keys.map((k: any) => k.kid)
    assert.ok(after.includes(res.body.rotated[0].kid))
    for (const kid of before) assert.ok(after.includes(kid), 'old keys stay published')
    assert.ok(!JSON.stringify(res.body).includes('"d"'), 'no private key material in the response')
    assertError(
      await broker.api.request('POST', '/admin/keys/rotate', {
        token: ADMIN_TOKEN,
        json: { algs: ['none'] },
      }),
      400,
      'invalid_request',
      /algs/,
    )
  })

  test('unknown routes are JSON 404s', async () => {
    assertError(await broker.api.request('GET', '/nope'), 404, 'not_found')
  })
})
