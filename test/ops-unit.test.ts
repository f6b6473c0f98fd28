/**
 * Units of the operations layer: the metrics module fed by the activity bus (its only unit test that
 * emits by hand), the shared-state cache, throttled warnings, bounded closes, and the new settings.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Activity } from '../src/observe/activity.js'
import { Metrics, type StateGaugeProviders } from '../src/ops/metrics.js'
import { closeWithin } from '../src/ops/shutdown.js'
import { redisCheck } from '../src/ops/health.js'
import { loadConfig, ConfigError } from '../src/config/config.js'
import type { Logger } from '../src/lib/log.js'

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (m) out.set(m[1]!, Number(m[2]))
  }
  return out
}

function memoryLog(): Logger & {
  lines: { level: string; msg: string; fields?: Record<string, unknown> }[]
} {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = []
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, msg, ...(fields ? { fields } : {}) })
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

test('metrics follow the activity bus: ingested by type, minted, push outcomes, the delivery histogram', async () => {
  const activity = new Activity()
  const state: StateGaugeProviders = {
    outboxSets: async () => 7,
    deadLetters: async () => 2,
    streamsByStatus: async () => ({ enabled: 3, paused: 1 }),
  }
  const metrics = new Metrics(activity, state, async () => true)
  try {
    activity.emit('ingested', { txn: 't', type: 'urn:a', event_id: 'e1', at: 0 })
    activity.emit('ingested', { txn: 't', type: 'urn:a', event_id: 'e2', at: 0 })
    activity.emit('minted', {
      txn: 't',
      stream_id: 's',
      jti: 'j',
      type: 'urn:a',
      at: 0,
      priority: false,
    })
    activity.emit('delivered', {
      txn: 't',
      stream_id: 's',
      jti: 'j',
      at: 0,
      latency_ms: 40,
      method: 'push',
      status: 202,
      push_ms: 5,
    })
    activity.emit('failed', {
      txn: 't',
      stream_id: 's',
      jti: 'j2',
      at: 0,
      outcome: 'retry',
      status: 503,
      error: 'http_503',
      push_ms: 3,
    })
    activity.emit('failed', {
      txn: 't',
      stream_id: 's',
      jti: 'j3',
      at: 0,
      outcome: 'dead_letter',
      error: 'max_age_exceeded',
    })
    activity.emit('dropped', { stream_id: 's', count: 4, at: 0 })
    const m = parse(await metrics.exposition())
    assert.equal(m.get('ssf_broker_events_ingested_total{type="urn:a"}'), 2)
    assert.equal(m.get('ssf_broker_sets_minted_total'), 1)
    assert.equal(m.get('ssf_broker_push_attempts_total{outcome="delivered"}'), 1)
    assert.equal(m.get('ssf_broker_push_attempts_total{outcome="retry"}'), 1)
    assert.equal(m.get('ssf_broker_push_attempts_total{outcome="dead_letter"}'), 1)
    assert.equal(m.get('ssf_broker_push_attempts_total{outcome="failed"}'), 0)
    assert.equal(m.get('ssf_broker_event_delivery_seconds_count'), 1)
    assert.equal(m.get('ssf_broker_event_delivery_seconds_bucket{le="0.05"}'), 1)
    assert.equal(m.get('ssf_broker_event_delivery_seconds_bucket{le="0.025"}'), 0)
    assert.equal(m.get('ssf_broker_sets_dropped_total'), 4)
    assert.equal(m.get('ssf_broker_outbox_sets'), 7)
    assert.equal(m.get('ssf_broker_dead_letters'), 2)
    assert.equal(m.get('ssf_broker_streams{status="enabled"}'), 3)
    assert.equal(m.get('ssf_broker_streams{status="disabled"}'), 0)
    assert.equal(m.get('ssf_broker_ready'), 1)
    // No stream ids or jtis in any label.
    assert.doesNotMatch(await metrics.exposition(), /stream_id|jti|"s"/)
  } finally {
    metrics.close()
  }
})

test('shared-state gauges: one read per cache period however many scrapes; a failing read does not fail the scrape', async () => {
  let reads = 0

  const state: StateGaugeProviders = {
    outboxSets: async () => {
      reads++

      return 10 + reads
    },
    deadLetters: async () => 0,
    streamsByStatus: async () => ({ enabled: 1 }),
  }
  const metrics = new Metrics(new Activity(), state)
  try {
    await Promise.all([metrics.exposition(), metrics.exposition(), metrics.exposition()])
    await metrics.exposition()
    assert.equal(reads, 1)
    assert.equal(parse(await metrics.exposition()).get('ssf_broker_outbox_sets'), 11)
  } finally {
    metrics.close()
  }
  const failing = new Metrics(new Activity(), {
    ...state,
    outboxSets: async () => {
      throw new Error('redis down')
    },
  })
  try {
    const m = parse(await failing.exposition())
    assert.equal(m.has('ssf_broker_outbox_sets'), true, 'the scrape still answers')
    assert.equal(m.get('ssf_broker_streams{status="enabled"}'), 1, 'other gauges unaffected')
  } finally {
    failing.close()
  }
})

test('redis readiness check: cached, bounded by its timeout', async () => {
  let pings = 0
  const ok = redisCheck(async () => void pings++)
  assert.equal((await ok()).ok, true)
  assert.equal((await ok()).ok, true)
  assert.equal(pings, 1)
  const started = Date.now()
  const hung = redisCheck(() => new Promise(() => {}))
  const result = await hung()
  assert.equal(result.ok, false)
  assert.match(result.error ?? '', /no answer/)
  assert.ok(Date.now() - started < 1500)
})

test('closeWithin gives up after its time and says so', async () => {
  const log = memoryLog()
  assert.equal(
    await closeWithin(1000, [Promise.resolve(1), Promise.reject(new Error('x'))], log, 'quick'),
    true,
  )
  const started = Date.now()
  assert.equal(await closeWithin(100, [new Promise(() => {})], log, 'stuck'), false)
  assert.ok(Date.now() - started < 500)
  assert.equal(log.lines.length, 1)
  assert.equal(log.lines[0]!.fields?.what, 'stuck')
})

test('settings: metrics token, shutdown grace, and the client-only SSF_BROKER_URL / SSF_BROKER_TOKEN accepted and ignored', () => {
  const config = loadConfig({
    SSF_BROKER_URL: 'http://broker:8080',
    SSF_BROKER_TOKEN: 'anything',
    SSF_BROKER_METRICS_TOKEN: 'm',
    SSF_BROKER_SHUTDOWN_GRACE_SECONDS: '3',
  })
  assert.equal(config.metricsToken, 'm')
  assert.equal(config.shutdownGraceSeconds, 3)
  assert.equal(loadConfig({}).shutdownGraceSeconds, 10)
  assert.equal(loadConfig({}).metricsToken, undefined)
  assert.throws(
    () => loadConfig({ SSF_BROKER_SHUTDOWN_GRACE_SECONDS: 'soon' }),
    (err: unknown) =>
      err instanceof ConfigError && err.variable === 'SSF_BROKER_SHUTDOWN_GRACE_SECONDS',
  )
})
