/**
 * The delivery path's guarantees: priority lanes that keep per-subject order, the backlog bound and its
 * status reason, quick recovery after a receiver outage, poll hand-out whose cost does not grow with the
 * SETs handed out and unacknowledged, and routing changes made through one broker process in effect on
 * another for the very next acknowledged event.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeJwt } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type ReceivedPush, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, Api, startTestBroker, type TestBroker } from './helpers/broker.js'
import { subjectKey } from '../src/subjects/subject.js'

const REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const PRESENTED = 'https://schemas.openid.net/secevent/caep/event-type/session-presented'
const ESTABLISHED = 'https://schemas.openid.net/secevent/caep/event-type/session-established'

let redis: TestRedis
const brokers: TestBroker[] = []
const receivers: TestReceiver[] = []

before(async () => {
  redis = await startTestRedis()
})

after(async () => {
  for (const b of brokers) await b.close()
  for (const r of receivers) await r.close()
  await redis.stop()
})

async function broker(extra: Record<string, string> = {}): Promise<TestBroker> {
  const b = await startTestBroker(redis.url, extra)
  brokers.push(b)
  return b
}

async function receiver(): Promise<TestReceiver> {
  const r = await startReceiver()
  receivers.push(r)
  return r
}

function claims(push: ReceivedPush): { type: string; user: string; txn: string } {
  const c = decodeJwt(push.body) as {
    events: Record<string, unknown>
    sub_id: { id?: string }
    txn: string
  }
  return { type: Object.keys(c.events)[0]!, user: c.sub_id.id ?? '', txn: c.txn }
}

const event = (type: string, user: string) => ({
  type,
  subject: { format: 'opaque', id: user },
  txn: `${type.split('/').pop()}-${user}`,
})

test('priority SETs go ahead of a backlog, but never ahead of an earlier SET about the same subject', async () => {
  const b = await broker({ SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM: '1' })
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  const stream = await b.api.createPushStream(rx.token, r.url, {
    events_requested: [REVOKED, PRESENTED],
  })
  assert.equal(
    (
      await b.api.request('POST', '/ssf/status', {
        token: rx.token,
        json: { stream_id: stream.stream_id, status: 'paused' },
      })
    ).status,
    200,
  )
  // A backlog of informational events, one of them about "shared", then revocations.
  const backlog = Array.from({ length: 30 }, (_, i) =>
    event('caep/session-presented', i === 10 ? 'shared' : `u${i}`),
  )
  assert.equal((await b.api.emit(tx.token, { events: backlog })).status, 202)
  assert.equal(
    (
      await b.api.emit(tx.token, {
        events: [event('caep/session-revoked', 'other'), event('caep/session-revoked', 'shared')],
      })
    ).status,
    202,
  )
  // Paused streams still queue: wait until all 32 are held before enabling.
  for (
    let i = 0;
    i < 100 &&
    Number(
      (
        await b.api.request('GET', `/admin/streams/${stream.stream_id}/deliveries`, {
          token: ADMIN_TOKEN,
        })
      ).body.pending,
    ) < 32;
    i++
  )
    await new Promise((res) => setTimeout(res, 50))
  assert.equal(
    (
      await b.api.request('POST', '/ssf/status', {
        token: rx.token,
        json: { stream_id: stream.stream_id, status: 'enabled' },
      })
    ).status,
    200,
  )
  const got = (await r.waitFor(32)).map(claims)
  const order = got.map((c) => `${c.type === REVOKED ? 'revoked' : 'presented'}:${c.user}`)
  assert.equal(
    order[0],
    'revoked:other',
    `the revocation about an unrelated user goes first: ${order.join(' ')}`,
  )
  const presentedShared = order.indexOf('presented:shared')
  const revokedShared = order.indexOf('revoked:shared')
  assert.ok(
    presentedShared >= 0 && revokedShared > presentedShared,
    `same-subject order kept: ${order.join(' ')}`,
  )
  assert.equal(
    revokedShared,
    presentedShared + 1,
    `and it goes as soon as the earlier one is delivered: ${order.join(' ')}`,
  )
  // Informational SETs keep their posted order among themselves.
  const presented = order.filter((o) => o.startsWith('presented:'))
  assert.deepEqual(
    presented,
    backlog.map((e) => `presented:${e.subject.id}`),
  )
})

test('the backlog bound drops the oldest SETs, counts them in the status reason and keeps the newest', async () => {
  const b = await broker({ SSF_BROKER_STREAM_BACKLOG_MAX: '5' })
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  const stream = await b.api.createPushStream(rx.token, r.url, { events_requested: [PRESENTED] })
  await b.api.request('POST', '/ssf/status', {
    token: rx.token,
    json: { stream_id: stream.stream_id, status: 'paused' },
  })
  const events = Array.from({ length: 8 }, (_, i) => event('caep/session-presented', `b${i}`))
  assert.equal((await b.api.emit(tx.token, { events })).status, 202)
  let reason = ''
  for (let i = 0; i < 100 && !reason.includes('backlog_dropped'); i++) {
    reason =
      (await b.api.request('GET', `/ssf/status?stream_id=${stream.stream_id}`, { token: rx.token }))
        .body.reason ?? ''
    if (!reason.includes('backlog_dropped')) await new Promise((res) => setTimeout(res, 50))
  }
  assert.match(reason, /backlog_dropped: 3 oldest SETs dropped \(more than 5 held\)/)
  await b.api.request('POST', '/ssf/status', {
    token: rx.token,
    json: { stream_id: stream.stream_id, status: 'enabled' },
  })
  const got = (await r.waitFor(5)).map(claims).map((c) => c.user)
  assert.deepEqual(got.sort(), ['b3', 'b4', 'b5', 'b6', 'b7'])
  const audit = await b.api.request(
    'GET',
    `/admin/audit?stream_id=${stream.stream_id}&kind=stream.backlog_dropped`,
    { token: ADMIN_TOKEN },
  )
  assert.equal(audit.status, 200)
  const drops = audit.body.records as { count: number; jtis: string[] }[]
  assert.equal(drops.length, 1)
  assert.equal(drops[0]!.count, 3)
  assert.equal(drops[0]!.jtis.length, 3)
})

test('SETs held for a receiver that was down arrive within 3 s of it answering again (default retry settings)', async () => {
  const b = await broker({ SSF_BROKER_RETRY_BASE_MS: '500', SSF_BROKER_RETRY_MAX_MS: '2000' })
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  let down = true
  let probes = 0
  r.respond = (_p, res) => {
    if (down) {
      probes++
      res.writeHead(503).end()
    } else res.writeHead(202).end()
  }
  const stream = await b.api.createPushStream(rx.token, r.url, { events_requested: [PRESENTED] })
  assert.ok(stream.stream_id)
  assert.equal(
    (
      await b.api.emit(tx.token, {
        events: Array.from({ length: 50 }, (_, i) => event('caep/session-presented', `r${i}`)),
      })
    ).status,
    202,
  )
  // Down for long enough that the backoff reaches its cap.
  const downUntil = Date.now() + 6000
  while (Date.now() < downUntil) await new Promise((res) => setTimeout(res, 100))
  const probesWhileDown = probes
  down = false
  const upAt = Date.now()
  const all = await r.waitFor(50, 10_000)
  const recovery = all[49]!.at - upAt
  console.log(
    `# recovery: all 50 held SETs ${recovery} ms after the receiver answered 2xx; ${probesWhileDown} failed requests in 6 s of outage`,
  )
  assert.ok(recovery <= 3000, `recovered in ${recovery} ms`)
  // One probe SET per retry while failing, not a window of 16 each time.
  assert.ok(probesWhileDown <= 16 + 10, `${probesWhileDown} requests while down`)
})

test('a poll with thousands of SETs handed out and unacknowledged costs what a poll with a few costs', async () => {
  const b = await broker({ SSF_BROKER_POLL_REDELIVERY_SECONDS: '3600' })
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  const created = await b.api.request('POST', '/ssf/streams', {
    token: rx.token,
    json: { events_requested: [PRESENTED] },
  })
  const pollPath = new URL(created.body.delivery.endpoint_url).pathname
  const poll = (maxEvents: number) =>
    b.api.request('POST', pollPath, {
      token: rx.token,
      json: { maxEvents, returnImmediately: true },
    })
  // The commands a hand-out runs on the stream's lanes (others, such as audit writes, run in the background).
  const calls = async () => {
    const info = (await redis.client.info('commandstats')) as unknown as string
    return [
      ...info.matchAll(/cmdstat_(xautoclaim|xreadgroup|xrevrange|hscan|sscan|scan):calls=(\d+)/g),
    ].reduce((sum, m) => sum + Number(m[2]), 0)
  }
  // The fewest commands seen over a few empty polls: other work (audit writes) comes and goes.
  const costOfEmptyPoll = async () => {
    let least = Infinity
    for (let i = 0; i < 5; i++) {
      const before = await calls()
      const res = await poll(10)
      const after = await calls()
      assert.deepEqual(res.body.sets, {})
      least = Math.min(least, after - before)
      await new Promise((r) => setTimeout(r, 100))
    }
    return least
  }
  const emit = async (n: number, tag: string) => {
    for (let i = 0; i < n; i += 1000)
      assert.equal(
        (
          await b.api.emit(tx.token, {
            events: Array.from({ length: Math.min(1000, n - i) }, (_, j) =>
              event('caep/session-presented', `${tag}${i + j}`),
            ),
          })
        ).status,
        202,
      )
  }
  const takeAll = async (n: number) => {
    let got = 0
    for (let i = 0; i < 200 && got < n; i++) {
      const res = await poll(1000)
      got += Object.keys(res.body.sets).length
      if (got < n) await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(got, n)
  }
  await emit(5, 'few')
  await takeAll(5)
  const few = await costOfEmptyPoll()
  await emit(5000, 'many')
  await takeAll(5000)
  const many = await costOfEmptyPoll()
  console.log(
    `# Redis commands for an empty poll: ${few} with 5 unacknowledged, ${many} with 5,005`,
  )
  // commandstats on a cluster is per node; this checks one Redis.
  if (redis.url.startsWith('cluster://')) return
  assert.ok(few > 0 && many <= few, `${many} commands with 5,005 outstanding vs ${few} with 5`)
})

test('a stream created or changed through one broker process applies to the very next event acknowledged by another', async () => {
  const a = await broker()
  const b2 = await broker()
  const r = await receiver()
  const rx = await a.api.createClient(['receiver'])
  const tx = await a.api.createClient(['emitter'])
  const viaA = new Api(a.url)
  const viaB = new Api(b2.url)
  for (let trial = 0; trial < 10; trial++) {
    const stream = await viaA.createPushStream(rx.token, r.url, {
      events_requested: [REVOKED, ESTABLISHED],
    })
    const user = `t${trial}`
    // Created through A, event through B at once: delivered.
    assert.equal((await viaB.emit(tx.token, event('caep/session-revoked', user))).status, 202)
    // Changed through A to drop session-revoked; B's next batch: a revocation (not delivered) and a marker.
    assert.equal(
      (
        await viaA.request('PATCH', '/ssf/streams', {
          token: rx.token,
          json: { stream_id: stream.stream_id, events_requested: [ESTABLISHED] },
        })
      ).status,
      200,
    )
    // Same subject: had the revocation been routed, per-subject order would deliver it before the marker.
    const late = { ...event('caep/session-revoked', user), txn: `late-${user}` }
    assert.equal(
      (await viaB.emit(tx.token, { events: [late, event('caep/session-established', user)] }))
        .status,
      202,
    )
  }
  // Each trial's revocation reaches its own stream; each marker every stream created so far.
  const expected = 10 + (10 * 11) / 2
  const got = (await r.waitFor(expected)).map(claims)
  const txns = got.map((c) => c.txn)
  for (let trial = 0; trial < 10; trial++) {
    assert.ok(
      txns.includes(`session-revoked-t${trial}`),
      `trial ${trial}: the event right after the create was delivered`,
    )
    assert.ok(
      txns.includes(`session-established-t${trial}`),
      `trial ${trial}: the marker was delivered`,
    )
    assert.ok(
      !txns.includes(`late-t${trial}`),
      `trial ${trial}: the type dropped by the change was not delivered`,
    )
  }
})

test('a priority event never overtakes an earlier-acknowledged event about the same subject still being fanned out', async () => {
  const b = await broker({ SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM: '1' })
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  await b.api.createPushStream(rx.token, r.url, { events_requested: [REVOKED, PRESENTED] })
  // A large batch whose last event is about "late": fanned out chunk by chunk after its 202.
  const batch = Array.from({ length: 400 }, (_, i) =>
    event('caep/session-presented', i === 399 ? 'late' : `f${i}`),
  )
  assert.equal((await b.api.emit(tx.token, { events: batch })).status, 202)
  assert.equal((await b.api.emit(tx.token, event('caep/session-revoked', 'late'))).status, 202)
  // One push at a time: 2–3 s on a quiet machine, several times that on a loaded one; order is the point.
  const order = (await r.waitFor(401, 60_000))
    .map(claims)
    .map((c) => `${c.type === REVOKED ? 'revoked' : 'presented'}:${c.user}`)
  assert.ok(
    order.indexOf('revoked:late') > order.indexOf('presented:late'),
    `revocation after the earlier event about its subject: at ${order.indexOf('revoked:late')}, the earlier one at ${order.indexOf('presented:late')}`,
  )
})

test('SETs appended to the priority and normal lanes together (same entry ids in both) are all delivered, each once', async () => {
  const b = await broker()
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  await b.api.createPushStream(rx.token, r.url, { events_requested: [REVOKED, PRESENTED] })
  // Each request is one append to both lanes, which Redis gives the same entry ids (`<ms>-0`, ...); the
  // requests overlap, so the stream's drain reads on from where it was while more are appended.
  const posts = Array.from({ length: 40 }, (_, i) =>
    b.api.emit(tx.token, {
      events: [
        event('caep/session-revoked', `r${i}`),
        event('caep/session-presented', `p${i}`),
        event('caep/session-presented', `q${i}`),
      ],
    }),
  )
  for (const res of await Promise.all(posts)) assert.equal(res.status, 202)
  const txns = (await r.waitFor(120)).map(claims).map((c) => c.txn)
  assert.equal(new Set(txns).size, 120, 'every SET arrived, none twice')
})

test('a priority SET is not held back by pending counts that name normal SETs which are not queued', async () => {
  const b = await broker()
  const r = await receiver()
  const rx = await b.api.createClient(['receiver'])
  const tx = await b.api.createClient(['emitter'])
  const stream = (await b.api.createPushStream(rx.token, r.url, {
    events_requested: [REVOKED],
  })) as { stream_id: string }
  const status = (value: string) =>
    b.api.request('POST', '/ssf/status', {
      token: rx.token,
      json: { stream_id: stream.stream_id, status: value },
    })
  // Held while paused, so the drain reads it back from Redis when the stream is enabled.
  assert.equal((await status('paused')).status, 200)
  assert.equal((await b.api.emit(tx.token, event('caep/session-revoked', 'ghost'))).status, 202)
  // Counts that claim two normal SETs about "ghost" are queued, when none is (as a damaged store would).
  const subject = { format: 'opaque' as const, id: 'ghost' }
  await redis.client.hset(`ssf:{o:${stream.stream_id}}:pend`, subjectKey(subject), '2')
  assert.equal((await status('enabled')).status, 200)
  const [push] = await r.waitFor(1)
  // The normal lane was read to its end and holds nothing about it: nothing earlier to wait for.
  assert.equal(claims(push!).user, 'ghost')
})

/** Times Redis has run ZREM so far: on a broker delivering one stream, each time a drain let it go. */
async function zremCalls(): Promise<number> {
  const info = await redis.client.info('commandstats')
  return Number(/cmdstat_zrem:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

for (const linger of [0, 1000]) {
  test(`a drained stream kept for SSF_BROKER_PUSH_LINGER_MS=${linger}: SETs queued meanwhile ${linger ? 'need no new claim' : 'are claimed again'}`, async () => {
    const b = await broker({ SSF_BROKER_PUSH_LINGER_MS: String(linger) })
    const r = await receiver()
    const rx = await b.api.createClient(['receiver'])
    const tx = await b.api.createClient(['emitter'])
    const stream = (await b.api.createPushStream(rx.token, r.url, {
      events_requested: [PRESENTED],
    })) as { stream_id: string }
    assert.ok(stream.stream_id)
    // Control SETs of the stream's creation, if any, are delivered and let go first.
    await new Promise((res) => setTimeout(res, linger + 300))
    const before = await zremCalls()
    const events = 20
    for (let i = 0; i < events; i++) {
      assert.equal(
        (await b.api.emit(tx.token, event('caep/session-presented', `l${i}`))).status,
        202,
      )
      await r.waitFor(i + 1)
      // Idle for a moment between SETs: long enough to let go, well within the linger.
      await new Promise((res) => setTimeout(res, 30))
    }
    const releases = (await zremCalls()) - before
    const users = r.received.map(claims).map((c) => c.user)
    assert.deepEqual(
      users.filter((u) => u.startsWith('l')),
      Array.from({ length: events }, (_, i) => `l${i}`),
    )
    if (linger) assert.ok(releases <= 1, `${releases} releases for ${events} SETs`)
    else assert.ok(releases >= events / 2, `${releases} releases for ${events} SETs`)
  })
}
