/**
 * The console's server side over real HTTP: the page and its assets under a strict CSP (also below an
 * issuer path), GET /admin/live as Server-Sent Events of ingested/minted/delivered/failed with their
 * identifiers and latency, /admin/activity unchanged, and GET /admin/overview.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, Api, startTestBroker, type TestBroker } from './helpers/broker.js'

let redis: TestRedis
let broker: TestBroker
let sink: TestReceiver
let emitter: { token: string }
let streamId: string
/** The API below the issuer path. */
let api: Api

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url, { SSF_BROKER_ISSUER: 'http://127.0.0.1/tenant-a' })
  api = new Api(`${broker.url}/tenant-a`)
  emitter = await api.createClient(['emitter'])
  const receiver = await api.createClient(['receiver'])
  sink = await startReceiver()
  const res = await api.request('POST', '/ssf/streams', {
    token: receiver.token,
    json: { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: sink.url } },
  })
  assert.equal(res.status, 201, res.text)
  streamId = res.body.stream_id
})

after(async () => {
  await sink?.close()
  await broker?.close()
  await redis?.stop()
})

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${broker.url}${path}`, { headers })

/** An open SSE feed: collects `event:`/`data:` frames until closed. */
async function openFeed(path: string) {
  const controller = new AbortController()
  const res = await fetch(`${broker.url}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: controller.signal,
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const events: { name: string; data: any }[] = []
  const waiters: (() => void)[] = []
  void (async () => {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const name = /^event: (.*)$/m.exec(frame)?.[1]
          const data = /^data: (.*)$/m.exec(frame)?.[1]
          if (name && data) events.push({ name, data: JSON.parse(data) })
          for (const w of waiters.splice(0)) w()
        }
      }
    } catch {
      // aborted
    }
  })()
  return {
    events,
    async until(check: () => boolean, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (!check()) {
        if (Date.now() > deadline)
          throw new Error(
            `feed ${path}: condition not met; got ${JSON.stringify(events.map((e) => e.name))}`,
          )
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 200)
        })
      }
    },
    close: () => controller.abort(),
  }
}

test('GET /console: the page under a CSP that allows only this origin and no inline script, its assets below the issuer path', async () => {
  const res = await get('/tenant-a/console')
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/)
  const csp = res.headers.get('content-security-policy') ?? ''
  assert.match(csp, /default-src 'none'/)
  assert.match(csp, /script-src 'self'(;|$)/)
  assert.match(csp, /connect-src 'self'(;|$)/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/)
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
  const html = await res.text()
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script')
  assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style')
  assert.match(html, /<meta name="ssf-base" content="\/tenant-a">/)
  assert.match(html, /<meta name="ssf-issuer" content="http:\/\/127.0.0.1\/tenant-a">/)
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
  assert.ok(assets.length >= 3)
  for (const path of assets) {
    assert.match(path, /^\/tenant-a\/console\/assets\//, 'every asset from this origin')
    const asset = await get(path)
    assert.equal(asset.status, 200, path)
    assert.ok(asset.headers.get('content-security-policy'), `${path} has the CSP too`)
    await asset.arrayBuffer()
  }
  assert.match(
    (await get('/tenant-a/console/assets/console.js')).headers.get('content-type') ?? '',
    /^text\/javascript/,
  )
  for (const bad of ['nope.js', '..%2Fpackage.json', 'index.html', 'console.js.map']) {
    const res404 = await get(`/tenant-a/console/assets/${bad}`)
    assert.equal(res404.status, 404, bad)
    assert.equal(((await res404.json()) as { error: string }).error, 'not_found')
  }
})

test('GET /admin/live needs the admin token', async () => {
  assert.equal((await get('/tenant-a/admin/live')).status, 401)
  assert.equal(
    (await get('/tenant-a/admin/live', { authorization: `Bearer ${emitter.token}` })).status,
    403,
  )
})

test('GET /admin/live: ingested, minted, delivered and failed, each with txn, stream_id, jti and latency_ms where they apply; /admin/activity still only outcomes', async () => {
  const live = await openFeed('/tenant-a/admin/live')
  const activity = await openFeed('/tenant-a/admin/activity')
  const filtered = await openFeed(`/tenant-a/admin/live?stream_id=other-stream`)
  try {
    const res = await api.request('POST', '/events', {
      token: emitter.token,
      json: {
        type: 'caep/session-revoked',
        subject: { format: 'email', email: 'bob@example.com' },
      },
    })
    assert.equal(res.status, 202, res.text)
    const txn = res.body.txn
    const of = (name: string) =>
      live.events.find((e) => e.name === name && e.data.txn === txn)?.data
    await live.until(() => of('delivered') !== undefined)
    assert.equal(typeof of('ingested').type, 'string')
    assert.equal(of('minted').stream_id, streamId)
    assert.equal(typeof of('minted').jti, 'string')
    const delivered = of('delivered')
    assert.equal(delivered.stream_id, streamId)
    assert.equal(delivered.jti, of('minted').jti)
    assert.ok(Number.isFinite(delivered.latency_ms) && delivered.latency_ms >= 0)
    await activity.until(() =>
      activity.events.some((e) => e.name === 'delivered' && e.data.txn === txn),
    )
    assert.ok(
      !activity.events.some((e) => e.name === 'ingested' || e.name === 'minted'),
      '/admin/activity keeps its events',
    )

    sink.respond = (_push, r) =>
      void r
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"err":"invalid_request","description":"no"}')
    const bad = await api.request('POST', '/events', {
      token: emitter.token,
      json: {
        type: 'caep/session-revoked',
        subject: { format: 'email', email: 'bob@example.com' },
      },
    })
    await live.until(() =>
      live.events.some((e) => e.name === 'failed' && e.data.txn === bad.body.txn),
    )
    const failed = live.events.find((e) => e.name === 'failed' && e.data.txn === bad.body.txn)!.data
    assert.equal(failed.stream_id, streamId)
    assert.equal(typeof failed.jti, 'string')
    assert.equal(failed.outcome, 'failed')
    assert.ok(
      !filtered.events.some((e) => e.data.stream_id === streamId || e.name === 'ingested'),
      'a stream filter keeps only that stream',
    )
  } finally {
    sink.respond = (_push, r) => void r.writeHead(202).end()
    live.close()
    activity.close()
    filtered.close()
  }
})

test('GET /admin/overview: counters, event→delivery quantiles, outbox depth, dead letters, streams and readiness', async () => {
  assert.equal((await get('/tenant-a/admin/overview')).status, 401)
  const res = await api.request('GET', '/admin/overview', { token: ADMIN_TOKEN })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('cache-control'), 'no-store')
  const o = res.body
  assert.equal(o.ready, true)
  assert.ok(
    o.ingested_total >= 2 && o.minted_total >= 2 && o.delivered_total >= 1 && o.failed_total >= 1,
    JSON.stringify(o),
  )
  assert.ok(
    o.delivery_latency_ms.count >= 1 &&
      o.delivery_latency_ms.p50 > 0 &&
      o.delivery_latency_ms.p99 >= o.delivery_latency_ms.p50,
  )
  assert.equal(typeof o.outbox_sets, 'number')
  assert.ok(o.dead_letters >= 1, 'the refused SET is a dead letter')
  assert.equal(o.streams.enabled, 1)
})
