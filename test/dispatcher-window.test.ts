/**
 * A push drain's window: a delivered SET gives back its slot as soon as its push comes back, and its
 * completion is written while the window goes on sending. Real Redis, real outbox, scheduler and push
 * client, a real receiver on loopback; Redis is made to refuse writes for a while (CLIENT PAUSE WRITE) so
 * that no completion can be written meanwhile, or a completion write is made to fail.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { OutboxItem } from '../src/delivery/outbox.js'
import {
  redisAndReceiver,
  queuedSet,
  startDispatcher,
  type DispatcherRig,
} from './helpers/dispatcher.js'

const env = redisAndReceiver()

const TYPE = 'https://schemas.openid.net/secevent/caep/event-type/session-presented'
const item = (jti: string, subject: string) => queuedSet(jti, subject, TYPE)

/** Three SETs about three subjects, queued together: the drain starts from them (no read needed). */
const queueThree = ({ stream, outbox, dispatcher }: Omit<DispatcherRig, 'stop'>) =>
  dispatcher.queuedWhile(
    stream,
    outbox.append(stream.stream_id, [item('a', 'alice'), item('b', 'bob'), item('c', 'carol')]),
  )

test('with a window of one, the next SET goes out when a push is answered, not when its completion is written', async () => {
  const { stream, outbox, dispatcher, stop } = await startDispatcher(env.redis, {
    prefix: 'window',
    endpoint: env.receiver.url,
    eventType: TYPE,
    config: { pushConcurrencyPerStream: 1 },
  })
  const PAUSE_MS = 1500
  let pausedUntil = 0
  env.receiver.respond = async (_push, res) => {
    // Before answering the first push, Redis stops taking writes: its completion cannot be written.
    if (pausedUntil === 0) {
      await env.redis.client.client('PAUSE', PAUSE_MS, 'WRITE')
      pausedUntil = Date.now() + PAUSE_MS
    }
    res.writeHead(202).end()
  }
  try {
    const sid = stream.stream_id
    await queueThree({ stream, outbox, dispatcher })
    const pushes = await env.receiver.waitFor(3)
    assert.deepEqual(
      pushes.map((p) => p.body),
      ['set-a', 'set-b', 'set-c'],
    )
    // One at a time, each after the one before was answered, all while no completion could be written.
    for (const p of pushes.slice(1))
      assert.ok(p.at < pausedUntil, `pushed ${pausedUntil - p.at} ms before writes resumed`)
    // Once Redis takes writes again, every completion is recorded: the queue empties.
    while ((await outbox.pending(sid)) > 0) await new Promise((r) => setTimeout(r, 10))
    assert.ok(Date.now() >= pausedUntil - 50)
  } finally {
    env.receiver.respond = (_p, res) => void res.writeHead(202).end()
    await env.redis.client.client('UNPAUSE')
    await stop()
  }
})

test('a completion that cannot be written fails the drain: the stream is taken up again and its SET pushed again with the same jti', async () => {
  const { stream, outbox, dispatcher, stop } = await startDispatcher(env.redis, {
    prefix: 'window-record-fails',
    endpoint: env.receiver.url,
    eventType: TYPE,
    config: { pushConcurrencyPerStream: 1 },
  })
  env.receiver.received.length = 0
  env.receiver.attempts.length = 0
  // The first completion written in the background is refused, as a write is when Redis goes away.
  const complete = outbox.complete.bind(outbox)
  let failedAt = 0
  const written: string[][] = []
  outbox.complete = async (sid, done, records, countLeft) => {
    if (failedAt === 0) {
      failedAt = Date.now()
      throw new Error('Connection is closed.')
    }
    written.push(done.map((s) => s.jti))
    return complete(sid, done, records, countLeft)
  }
  try {
    const sid = stream.stream_id
    await queueThree({ stream, outbox, dispatcher })
    // a, then (after its completion failed) a again: it is still queued, so the stream delivers it anew.
    const pushes = await env.receiver.waitFor(4)
    const bodies = pushes.map((p) => p.body)
    assert.equal(bodies[0], 'set-a')
    assert.ok(failedAt > 0)
    const again = pushes.findIndex((p, i) => i > 0 && p.body === 'set-a')
    assert.ok(again > 0, `a pushed again: ${bodies.join(' ')}`)
    // Not in a tight loop: the stream waited (backoff after a failed drain) before it was taken up again.
    assert.ok(pushes[again]!.at - failedAt >= 900, `${pushes[again]!.at - failedAt} ms`)
    // Every SET is delivered and recorded in the end: the queue empties.
    while ((await outbox.pending(sid)) > 0) {
      assert.ok(Date.now() - failedAt < 10_000, 'queue not emptied')
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.deepEqual(
      new Set(env.receiver.received.map((p) => p.body)),
      new Set(['set-a', 'set-b', 'set-c']),
    )
    assert.ok(written.flat().includes('a'), `a recorded in the end: ${JSON.stringify(written)}`)
  } finally {
    outbox.complete = complete
    await stop()
  }
})

test('a flood in the priority lane is read a window at a time, not all at once', async () => {
  env.receiver.received.length = 0
  const { stream, outbox, dispatcher, stop } = await startDispatcher(env.redis, {
    prefix: 'window-read-ahead',
    endpoint: env.receiver.url,
    eventType: TYPE,
    // A window of one: the drain reads on four SETs at a time (four times its window).
    config: { pushConcurrencyPerStream: 1 },
  })
  env.receiver.respond = async (_push, res) => {
    await new Promise((r) => setTimeout(r, 10))
    res.writeHead(202).end()
  }
  // How far reading runs ahead of the receiver, at its furthest.
  const head = outbox.head.bind(outbox)
  let read = 0
  let ahead = 0
  outbox.head = async (...args) => {
    const found = await head(...args)
    read += found.c.length + found.p.length + found.n.length
    ahead = Math.max(ahead, read - env.receiver.received.length)
    return found
  }
  try {
    const sid = stream.stream_id
    const COUNT = 150
    const revoked = (i: number): OutboxItem => ({ ...item(`r${i}`, `user${i}`), lane: 'p' })
    // Queued one by one, faster than they are pushed: each append gives the drain more to read.
    for (let i = 0; i < COUNT; i++) {
      await dispatcher.queuedWhile(stream, outbox.append(sid, [revoked(i)]))
      await new Promise((r) => setTimeout(r, 2))
    }
    const pushes = await env.receiver.waitFor(COUNT, 30_000)
    assert.deepEqual(
      pushes.map((p) => p.body),
      Array.from({ length: COUNT }, (_, i) => `set-r${i}`),
    )
    assert.ok(read > 0, 'the drain read its lanes')
    assert.ok(ahead <= 12, `read ${ahead} SETs ahead of the receiver`)
  } finally {
    outbox.head = head
    env.receiver.respond = (_p, res) => void res.writeHead(202).end()
    await stop()
  }
})
