/**
 * A push drain may start from the SETs this process just appended instead of reading them back, but only
 * while it has not read the lanes since the append was sent: a read made meanwhile may already have sent
 * them. Real Redis, real outbox, scheduler and push client, a real receiver on loopback; the only thing
 * held back is when the dispatcher learns that its append is done.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { type Appended, type Outbox } from '../src/delivery/outbox.js'
import { redisAndReceiver, queuedSet, startDispatcher } from './helpers/dispatcher.js'

const env = redisAndReceiver()

const item = (jti: string, subject: string) =>
  queuedSet(jti, subject, 'https://schemas.openid.net/secevent/caep/event-type/session-revoked')

const pushedSets = () => env.receiver.received.map((p) => p.body)

/** Until the stream's queue is empty: its SETs' outcomes are recorded and the drain has gone idle. */
async function delivered(outbox: Outbox, sid: string): Promise<void> {
  while ((await outbox.pending(sid)) > 0) await new Promise((r) => setTimeout(r, 5))
}

test('an append whose SETs a drain read before the append was reported done is not sent again from it', async () => {
  // A long linger keeps the drain here between SETs, so every later append reaches a drain in progress.
  // (Longer than the variable allows: the test's steps must not outlast it on a slow machine.)
  const { stream, outbox, dispatcher, stop } = await startDispatcher(env.redis, {
    prefix: 'own-appends',
    endpoint: env.receiver.url,
    eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
    config: { pushLingerMs: 60_000 },
  })
  try {
    const sid = stream.stream_id
    // A first SET claims the stream here; once it is delivered the drain lingers on an empty queue.
    await dispatcher.queuedWhile(stream, outbox.append(sid, [item('w', 'alice')]))
    await env.receiver.waitFor(1)
    await delivered(outbox, sid)

    // X lands on the empty queue, but the dispatcher learns so only later (its reply is held back).
    const appendedX = await outbox.append(sid, [item('x', 'bob')])
    assert.equal(appendedX.wasEmpty, true)
    let reportX!: (a: Appended) => void
    const queuedX = dispatcher.queuedWhile(stream, new Promise<Appended>((r) => (reportX = r)))
    // Meanwhile the drain is told to look (SETs queued some other way): it reads X and sends it.
    await dispatcher.queued(stream)
    await env.receiver.waitFor(2)
    assert.deepEqual(pushedSets(), ['set-w', 'set-x'])
    await delivered(outbox, sid)

    // Now the append is reported: X is no longer the whole unread queue, so the drain must not resend it.
    reportX(appendedX)
    await queuedX
    // Y is about the same subject as X: a resent X would be pushed, and answered, before Y.
    await dispatcher.queuedWhile(stream, outbox.append(sid, [item('y', 'bob')]))
    await env.receiver.waitFor(3)
    assert.deepEqual(pushedSets(), ['set-w', 'set-x', 'set-y'])
  } finally {
    await stop()
  }
  // Every append watched was let go of by the time the drains ended.
  assert.equal(dispatcher.watchedAppends, 0)
})
