/**
 * Operating the broker: health and readiness (with Redis frozen and resumed), Prometheus metrics that
 * move with real traffic, request ids, the operator's stream list and status change, and the admin
 * token's 403 on receiver and emitter routes. Real broker, real Redis, real HTTP.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { parseMetrics } from './helpers/metrics.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { decodeJwt } from 'jose'

let redis: TestRedis
let broker: TestBroker
let receiver: TestReceiver

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
  receiver = await startReceiver()
})

after(async () => {
  await broker?.close()
  await receiver?.close()
  await redis?.stop()
})

async function metrics(b: TestBroker = broker): Promise<Map<string, number>> {
  const res = await fetch(`${b.url}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/)
  return parseMetrics(await res.text())
}

const value = (m: Map<string, number>, key: string) => m.get(key) ?? 0

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('GET /healthz answers 200 {"status":"ok"}', async () => {
  const res = await broker.api.request('GET', '/healthz')
  assert.equal(res.status, 200)
  assert.deepEqual(res.body, { status: 'ok' })
})

test(
  'GET /readyz: ready, 503 within 2 s of Redis freezing, ready again within 2 s of its return',
  { timeout: 30_000 },
  async () => {
    const ready = await broker.api.request('GET', '/readyz')
    assert.equal(ready.status, 200)
    assert.equal(ready.body.status, 'ready')
    assert.equal(ready.body.checks.redis.ok, true)
    assert.equal(ready.body.checks.delivery.ok, true)
    // /healthz keeps answering meanwhile: it touches no Redis.
    redis.pause()
    const pausedAt = Date.now()
    try {
      const down = await until('readyz 503', 5000, async () => {
        const res = await broker.api.request('GET', '/readyz')
        return res.status === 503 ? res : undefined
      })
      assert.ok(Date.now() - pausedAt <= 2000, `503 after ${Date.now() - pausedAt} ms`)
      assert.equal(down.body.status, 'unavailable')
      assert.equal(down.body.checks.redis.ok, false)
      const health = await broker.api.request('GET', '/healthz')
      assert.equal(health.status, 200)
    } finally {
      redis.resume()
    }
    const resumedAt = Date.now()
    await until('readyz 200', 5000, async () =>
      (await broker.api.request('GET', '/readyz')).status === 200 ? true : undefined,
    )
    assert.ok(Date.now() - resumedAt <= 2000, `200 after ${Date.now() - resumedAt} ms`)
  },
)

test('request ids: a sane x-request-id is echoed, anything else replaced by a generated one', async () => {
  const echoed = await broker.api.request('GET', '/healthz', {
    headers: { 'x-request-id': 'abc-123_XYZ.9' },
  })
  assert.equal(echoed.headers.get('x-request-id'), 'abc-123_XYZ.9')
  const generated = await broker.api.request('GET', '/no-such-route')
  assert.equal(generated.status, 404)
  assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
  for (const bad of ['has spaces in it', 'x'.repeat(200), '<script>']) {
    const res = await broker.api.request('GET', '/healthz', { headers: { 'x-request-id': bad } })
    assert.notEqual(res.headers.get('x-request-id'), bad)
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
  }
  // Error answers carry it too.
  const denied = await broker.api.request('GET', '/admin/clients', {
    headers: { 'x-request-id': 'req-401' },
  })
  assert.equal(denied.status, 401)
  assert.equal(denied.headers.get('x-request-id'), 'req-401')
})

test('the admin token on /ssf/* and /events answers 403 access_denied; a bad token still 401', async () => {
  for (const [method, path] of [
    ['GET', '/ssf/streams'],
    ['GET', '/ssf/status?stream_id=x'],
    ['POST', '/events'],
  ] as const) {
    const res = await broker.api.request(method, path, {
      token: ADMIN_TOKEN,
      ...(method === 'POST' ? { json: {} } : {}),
    })
    assert.equal(res.status, 403, `${method} ${path}`)
    assert.equal(res.body.error, 'access_denied')
  }
  const bad = await broker.api.request('GET', '/ssf/streams', {
    token: 'not-a-valid-token-at-all-0123456789',
  })
  assert.equal(bad.status, 401)
  assert.equal(bad.body.error, 'invalid_token')
})

test('GET /metrics: every required metric, with prom-client process and Node.js metrics', async () => {
  const res = await fetch(`${broker.url}/metrics`)
  const text = await res.text()
  for (const name of [
    'ssf_broker_events_ingested_total',
    'ssf_broker_sets_minted_total',
    'ssf_broker_push_attempts_total',
    'ssf_broker_event_delivery_seconds',
    'ssf_broker_outbox_sets',
    'ssf_broker_dead_letters',
    'ssf_broker_streams',
    'ssf_broker_http_requests_total',
    'ssf_broker_http_request_duration_seconds',
    'ssf_broker_events_shed_total',
    'ssf_broker_admission_loop_lag_seconds',
    'process_cpu_seconds_total',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
  }
  const m = parseMetrics(text)
  for (const outcome of ['delivered', 'retry', 'failed', 'dead_letter'])
    assert.ok(m.has(`ssf_broker_push_attempts_total{outcome="${outcome}"}`), outcome)
  // Route patterns as labels, never raw paths.
  await broker.api.request('GET', '/ssf/status?stream_id=abc', { token: 'x' })
  const after = await (await fetch(`${broker.url}/metrics`)).text()
  assert.match(
    after,
    /ssf_broker_http_requests_total\{method="GET",route="\/ssf\/status",status="401"\} \d+/,
  )
  assert.doesNotMatch(after, /stream_id=abc/)
})

test(
  'metric movement: N events through a real push stream move the counters and the histogram count by N',
  { timeout: 30_000 },
  async () => {
    const N = 25
    const rx = await broker.api.createClient(['receiver'])
    const emitter = await broker.api.createClient(['emitter'])
    await broker.api.createPushStream(rx.token, receiver.url, {
      events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
    })
    const start = receiver.received.length
    const before = await metrics()
    const type = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
    for (let i = 0; i < N; i++) {
      const res = await broker.api.emit(emitter.token, {
        type: 'caep/session-revoked',
        subject: { format: 'email', email: `user${i}@example.com` },
      })
      assert.equal(res.status, 202)
    }
    await receiver.waitFor(start + N)
    // The delivered count moves once the receiver's 2xx has been processed by the dispatcher.
    const m = await until('delivery counters', 5000, async () => {
      const now = await metrics()
      return value(now, 'ssf_broker_push_attempts_total{outcome="delivered"}') -
        value(before, 'ssf_broker_push_attempts_total{outcome="delivered"}') >=
        N
        ? now
        : undefined
    })
    assert.equal(
      value(m, `ssf_broker_events_ingested_total{type="${type}"}`) -
        value(before, `ssf_broker_events_ingested_total{type="${type}"}`),
      N,
    )
    assert.equal(
      value(m, 'ssf_broker_sets_minted_total') - value(before, 'ssf_broker_sets_minted_total'),
      N,
    )
    assert.equal(
      value(m, 'ssf_broker_push_attempts_total{outcome="delivered"}') -
        value(before, 'ssf_broker_push_attempts_total{outcome="delivered"}'),
      N,
    )
    assert.equal(
      value(m, 'ssf_broker_event_delivery_seconds_count') -
        value(before, 'ssf_broker_event_delivery_seconds_count'),
      N,
    )
    assert.ok(
      value(m, 'ssf_broker_event_delivery_seconds_sum') >
        value(before, 'ssf_broker_event_delivery_seconds_sum'),
    )
    assert.equal(
      value(m, 'ssf_broker_http_requests_total{method="POST",route="/events",status="202"}') -
        value(before, 'ssf_broker_http_requests_total{method="POST",route="/events",status="202"}'),
      N,
    )
  },
)

test(
  'a refused push counts as retry, a permanently refused one as failed; dead-letter and outbox gauges follow Redis',
  { timeout: 30_000 },
  async () => {
    const refusing = await startReceiver()
    try {
      let mode: 'retry' | 'reject' = 'retry'
      refusing.respond = (_push, res) => {
        if (mode === 'retry') res.writeHead(503).end()
        else
          res
            .writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ err: 'invalid_request', description: 'no' }))
      }
      const rx = await broker.api.createClient(['receiver'])
      const emitter = await broker.api.createClient(['emitter'])
      await broker.api.createPushStream(rx.token, refusing.url)
      const before = await metrics()
      await broker.api.emit(emitter.token, {
        type: 'caep/session-revoked',
        subject: { format: 'email', email: 'retry@example.com' },
      })
      await until('a retry', 10_000, async () => {
        const m = await metrics()
        return value(m, 'ssf_broker_push_attempts_total{outcome="retry"}') >
          value(before, 'ssf_broker_push_attempts_total{outcome="retry"}')
          ? true
          : undefined
      })
      // Waiting SETs appear in the outbox gauge (shared state, cached for a few seconds).
      await until('outbox gauge', 10_000, async () =>
        value(await metrics(), 'ssf_broker_outbox_sets') >= 1 ? true : undefined,
      )
      mode = 'reject'
      const deadBefore = value(before, 'ssf_broker_dead_letters')
      await until('a failed attempt and a dead letter', 15_000, async () => {
        const m = await metrics()
        return value(m, 'ssf_broker_push_attempts_total{outcome="failed"}') >
          value(before, 'ssf_broker_push_attempts_total{outcome="failed"}') &&
          value(m, 'ssf_broker_dead_letters') > deadBefore
          ? true
          : undefined
      })
    } finally {
      await refusing.close()
    }
  },
)

test(
  'shared-state gauges agree across two broker processes on one Redis',
  { timeout: 30_000 },
  async () => {
    const second = await startTestBroker(redis.url)
    try {
      const [a, b] = await Promise.all([metrics(broker), metrics(second)])
      const streamsA = await until('fresh gauges', 10_000, async () => {
        const [ma, mb] = await Promise.all([metrics(broker), metrics(second)])
        const keys = [
          'ssf_broker_streams{status="enabled"}',
          'ssf_broker_streams{status="paused"}',
          'ssf_broker_dead_letters',
        ]
        return keys.every((k) => value(ma, k) === value(mb, k)) ? ma : undefined
      })
      assert.ok(value(streamsA, 'ssf_broker_streams{status="enabled"}') >= 2)
      // Counters are per process: the new one has ingested nothing yet.
      assert.ok(value(a, 'ssf_broker_sets_minted_total') > 0)
      assert.equal(value(b, 'ssf_broker_sets_minted_total'), 0)
    } finally {
      await second.close()
    }
  },
)

test('GET /admin/streams lists every stream with backlog, filters by status and client, and pages', async () => {
  const rx = await broker.api.createClient(['receiver'])
  const created: string[] = []
  for (let i = 0; i < 5; i++)
    created.push((await broker.api.createPushStream(rx.token, receiver.url)).stream_id)
  const unauth = await broker.api.request('GET', '/admin/streams', { token: rx.token })
  assert.equal(unauth.status, 403)
  const mine = await broker.api.request('GET', `/admin/streams?client_id=${rx.client_id}`, {
    token: ADMIN_TOKEN,
  })
  assert.equal(mine.status, 200)
  assert.deepEqual(mine.body.streams.map((s: any) => s.stream_id).sort(), [...created].sort())
  for (const s of mine.body.streams) {
    assert.equal(s.client_id, rx.client_id)
    assert.equal(s.status, 'enabled')
    assert.equal(s.delivery_method, 'urn:ietf:rfc:8935')
    assert.equal(typeof s.backlog, 'number')
  }
  // Paging: 2 at a time through every stream of this client, no repeats, no gaps.
  const seen: string[] = []
  let cursor: string | undefined
  do {
    const page = await broker.api.request(
      'GET',
      `/admin/streams?client_id=${rx.client_id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      { token: ADMIN_TOKEN },
    )
    assert.equal(page.status, 200)
    assert.ok(page.body.streams.length <= 2)
    seen.push(...page.body.streams.map((s: any) => s.stream_id))
    cursor = page.body.next_cursor
  } while (cursor)
  assert.deepEqual(seen, [...created].sort())
  // Status filter over all streams.
  await broker.api.request('POST', `/admin/streams/${created[0]}/status`, {
    token: ADMIN_TOKEN,
    json: { status: 'paused', reason: 'maintenance' },
  })
  const paused = await broker.api.request('GET', '/admin/streams?status=paused', {
    token: ADMIN_TOKEN,
  })
  assert.ok(
    paused.body.streams.some((s: any) => s.stream_id === created[0] && s.reason === 'maintenance'),
  )
  assert.ok(paused.body.streams.every((s: any) => s.status === 'paused'))
  const bad = await broker.api.request('GET', '/admin/streams?status=sleeping', {
    token: ADMIN_TOKEN,
  })
  assert.equal(bad.status, 400)
})

test(
  'POST /admin/streams/{id}/status pauses, enables and disables any stream and tells the receiver',
  { timeout: 30_000 },
  async () => {
    const rx = await broker.api.createClient(['receiver'])
    const stream = await broker.api.createPushStream(rx.token, receiver.url)
    const id = stream.stream_id
    const base = receiver.received.length
    const paused = await broker.api.request('POST', `/admin/streams/${id}/status`, {
      token: ADMIN_TOKEN,
      json: { status: 'paused', reason: 'operator pause' },
    })
    assert.equal(paused.status, 200)
    assert.deepEqual(paused.body, { stream_id: id, status: 'paused', reason: 'operator pause' })
    // The receiver sees the same status through its own endpoint...
    const seen = await broker.api.request('GET', `/ssf/status?stream_id=${id}`, { token: rx.token })
    assert.deepEqual(seen.body, { stream_id: id, status: 'paused', reason: 'operator pause' })
    // ...and is told by a stream-updated event (control lane: delivered even while paused).
    const pushes = await receiver.waitFor(base + 1)
    const updates = pushes
      .slice(base)
      .map((p) => decodeJwt(p.body))
      .filter((c: any) => c.sub_id?.id === id)
    assert.ok(updates.length >= 1)
    const event = (updates[0]!.events as Record<string, any>)[
      'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'
    ]
    assert.deepEqual(event, { status: 'paused', reason: 'operator pause' })

    const enabled = await broker.api.request('POST', `/admin/streams/${id}/status`, {
      token: ADMIN_TOKEN,
      json: { status: 'enabled' },
    })
    assert.deepEqual(enabled.body, { stream_id: id, status: 'enabled' })
    const disabled = await broker.api.request('POST', `/admin/streams/${id}/status`, {
      token: ADMIN_TOKEN,
      json: { status: 'disabled', reason: 'abuse' },
    })
    assert.equal(disabled.body.status, 'disabled')
    assert.equal(
      (await broker.api.request('GET', `/ssf/status?stream_id=${id}`, { token: rx.token })).body
        .status,
      'disabled',
    )
    // Validation and 404.
    assert.equal(
      (
        await broker.api.request('POST', `/admin/streams/${id}/status`, {
          token: ADMIN_TOKEN,
          json: { status: 'off' },
        })
      ).status,
      400,
    )
    assert.equal(
      (
        await broker.api.request('POST', `/admin/streams/${id}/status`, {
          token: ADMIN_TOKEN,
          json: { status: 'paused', extra: 1 },
        })
      ).status,
      400,
    )
    assert.equal(
      (
        await broker.api.request('POST', '/admin/streams/nope/status', {
          token: ADMIN_TOKEN,
          json: { status: 'paused' },
        })
      ).status,
      404,
    )
  },
)

test('GET /metrics requires the bearer token when SSF_BROKER_METRICS_TOKEN is set', async () => {
  const secured = await startTestBroker(redis.url, {
    SSF_BROKER_METRICS_TOKEN: 'metrics-secret-value-1234567890',
  })
  try {
    const none = await fetch(`${secured.url}/metrics`)
    assert.equal(none.status, 401)
    const wrong = await fetch(`${secured.url}/metrics`, {
      headers: { authorization: 'Bearer wrong' },
    })
    assert.equal(wrong.status, 401)
    const right = await fetch(`${secured.url}/metrics`, {
      headers: { authorization: 'Bearer metrics-secret-value-1234567890' },
    })
    assert.equal(right.status, 200)
    assert.match(await right.text(), /ssf_broker_sets_minted_total/)
    // Health endpoints stay open.
    assert.equal((await fetch(`${secured.url}/healthz`)).status, 200)
  } finally {
    await secured.close()
  }
})

test(
  'SSF_BROKER_PROCESSES=2: every scrape of the shared port reports both processes together',
  { timeout: 60_000 },
  async () => {
    const { spawnBroker, testEnv, freePort, Api } = await import('./helpers/broker.js')
    const port = await freePort()
    const cluster = await spawnBroker(testEnv(redis.url, port, { SSF_BROKER_PROCESSES: '2' }))
    try {
      // Both processes listening.
      const deadline = Date.now() + 20_000
      while (cluster.stderr.join('').split('ssf-broker listening').length - 1 < 2) {
        if (Date.now() > deadline)
          throw new Error(`second process did not start:\n${cluster.stderr.join('')}`)
        await new Promise<void>((r) => cluster.child.stderr!.once('data', () => r()))
      }
      const api = new Api(cluster.url)
      const emitter = await api.createClient(['emitter'])
      const N = 20
      // Separate connections, so the cluster spreads them over both processes.
      for (let i = 0; i < N; i++) {
        const res = await fetch(`${cluster.url}/events`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${emitter.token}`,
            'content-type': 'application/json',
            connection: 'close',
          },
          body: JSON.stringify({
            type: 'caep/credential-change',
            subject: { format: 'email', email: `c${i}@example.com` },
            event: { credential_type: 'password', change_type: 'update' },
          }),
        })
        assert.equal(res.status, 202, await res.text())
      }
      const type = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
      // The true count, from the API: the gauge must show it once, not once per process.
      const enabled = (
        await api.request('GET', '/admin/streams?status=enabled&limit=1000', { token: ADMIN_TOKEN })
      ).body.streams.length as number
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${cluster.url}/metrics`, { headers: { connection: 'close' } })
        const m = parseMetrics(await res.text())
        assert.equal(value(m, `ssf_broker_events_ingested_total{type="${type}"}`), N, `scrape ${i}`)
        // Shared state once, not once per process: the same as the single broker of this file reports.
        assert.equal(value(m, 'ssf_broker_ready'), 1)
        assert.equal(
          value(m, 'ssf_broker_streams{status="enabled"}'),
          enabled,
          `scrape ${i}: enabled streams counted once`,
        )
      }
    } finally {
      await cluster.kill('SIGTERM')
    }
  },
)
