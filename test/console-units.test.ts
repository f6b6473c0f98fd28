/** The console's pure parts: Emit templates against the API's validator, and the Overview quantiles. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TEMPLATES } from '../console/src/templates.js'
import { EVENT_TYPES } from '../src/events/catalog.js'
import { AGENT_EVENT_TYPES } from '../src/agents/events.js'
import { validateEventsBody } from '../src/ingest/validate.js'
import { bucketQuantile } from '../src/console/overview.js'

test('Emit has one template for every CAEP, RISC and agent event type an emitter can post, and nothing else', () => {
  const postable = [...EVENT_TYPES.filter((t) => t.ingestible), ...AGENT_EVENT_TYPES]
    .map((t) => t.alias)
    .sort()
  assert.deepEqual(TEMPLATES.map((t) => t.type).sort(), postable)
})

test('every Emit template is a body POST /events accepts', () => {
  for (const t of TEMPLATES) {
    assert.doesNotThrow(
      () => validateEventsBody({ type: t.type, subject: t.subject, event: t.event }),
      t.type,
    )
  }
})

test('bucketQuantile interpolates within the bucket holding the rank, as histogram_quantile does', () => {
  const buckets = [
    { le: 0.005, count: 0 },
    { le: 0.01, count: 50 },
    { le: 0.025, count: 99 },
    { le: 0.05, count: 100 },
    { le: Infinity, count: 100 },
  ]
  assert.equal(bucketQuantile(0.5, buckets), 0.01)
  assert.ok(Math.abs(bucketQuantile(0.99, buckets)! - 0.025) < 1e-12)
  assert.ok(Math.abs(bucketQuantile(0.25, buckets)! - 0.0075) < 1e-12)
  assert.equal(
    bucketQuantile(0.5, [
      { le: 0.01, count: 0 },
      { le: Infinity, count: 0 },
    ]),
    undefined,
  )
  // Everything beyond the last finite bound: that bound is the best estimate.
  assert.equal(
    bucketQuantile(0.99, [
      { le: 0.01, count: 1 },
      { le: Infinity, count: 10 },
    ]),
    0.01,
  )
})
