/**
 * The Grafana dashboard and the Prometheus alert rules name only metrics the broker exports, and the
 * docker-compose file checks readiness and pins its images.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

let redis: TestRedis
let broker: TestBroker

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
})

after(async () => {
  await broker?.close()
  await redis?.stop()
})

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')

/** Metric names in PromQL: our prefixes only (label names, functions and keywords never match them). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\b((?:ssf_broker|nodejs|process)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)
}

function dashboardExprs(): string[] {
  const dash = JSON.parse(read('deploy/grafana/ssf-broker.json')) as {
    panels: { targets?: { expr: string }[] }[]
    templating: { list: { query?: string }[] }
  }
  return [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dash.templating.list.map((v) => v.query ?? ''),
  ]
}

function alertExprs(): string[] {
  return [...read('deploy/prometheus/alerts.yml').matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!)
}

test('every metric the dashboard and the alert rules name is exported', async () => {
  const exposition = await (await fetch(`${broker.url}/metrics`)).text()
  const exported = new Set<string>()
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exported.add(name!)
    if (type === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) exported.add(name! + suffix)
    if (type === 'summary') for (const suffix of ['_sum', '_count']) exported.add(name! + suffix)
  }
  const dashboard = dashboardExprs()
  const alerts = alertExprs()
  assert.ok(dashboard.length >= 10 && alerts.length >= 4)
  const named = new Set([...dashboard, ...alerts].flatMap(metricNames))
  assert.ok(named.size >= 10, [...named].join(', '))
  assert.deepEqual(
    [...named].filter((n) => !exported.has(n)),
    [],
    'named but not exported',
  )
  // What the dashboard must show, and what must be alerted on.
  for (const name of [
    'ssf_broker_events_ingested_total',
    'ssf_broker_event_delivery_seconds_bucket',
    'ssf_broker_outbox_sets',
    'ssf_broker_push_attempts_total',
    'ssf_broker_dead_letters',
    'nodejs_eventloop_lag_p99_seconds',
  ]) {
    assert.ok(
      dashboard.some((e) => metricNames(e).includes(name)),
      `dashboard shows ${name}`,
    )
  }
  for (const name of [
    'ssf_broker_event_delivery_seconds_bucket',
    'ssf_broker_dead_letters',
    'ssf_broker_outbox_sets',
    'ssf_broker_ready',
  ]) {
    assert.ok(
      alerts.some((e) => metricNames(e).includes(name)),
      `an alert uses ${name}`,
    )
  }
})

test('docker-compose: readiness healthcheck, restart policies, pinned image versions', () => {
  const compose = read('docker-compose.yml')
  assert.match(compose, /\/readyz/)
  assert.equal([...compose.matchAll(/^\s+restart: unless-stopped$/gm)].length, 2)
  for (const [, image] of compose.matchAll(/^\s+image: (\S+)$/gm))
    assert.match(image!, /:\d+\.\d+\.\d+/, `${image} is pinned`)
})
