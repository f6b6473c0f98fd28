/**
 * The fan-out's concurrency limit (src/ingest/fair-limiter.ts): priority work first, then the job that
 * has started the fewest tasks, so a small request arriving during a large one takes the next free slot.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FairLimiter } from '../src/ingest/fair-limiter.js'

/** A task that runs until released; `order` records when each started. */
function gate(order: string[], name: string) {
  let release!: () => void
  const done = new Promise<void>((r) => (release = r))
  return { run: () => (order.push(name), done), release }
}

test('a job that arrives while large ones run starts at the next free slot, ahead of their waiting tasks', async () => {
  const limiter = new FairLimiter(1)
  const order: string[] = []
  const tick = () => new Promise((r) => setImmediate(r))
  const a0 = gate(order, 'a0')
  const a1 = gate(order, 'a1')
  const b0 = gate(order, 'b0')
  const c0 = gate(order, 'c0')
  const [A, B, C] = [{}, {}, {}]
  const runs = [limiter.run(A, false, a0.run), limiter.run(B, false, b0.run)]
  await tick()
  a0.release()
  await tick()
  // b0 runs; A's next task waits, then the small job C arrives behind it.
  runs.push(limiter.run(A, false, a1.run), limiter.run(C, false, c0.run))
  b0.release()
  await tick()
  // Taking turns in arrival order would start a1 here; C has started nothing yet, so it goes first.
  assert.deepEqual(order, ['a0', 'b0', 'c0'])
  c0.release()
  await tick()
  a1.release()
  await Promise.all(runs)
  assert.deepEqual(order, ['a0', 'b0', 'c0', 'a1'])
})

test('priority tasks start before waiting normal ones, whatever their job has had', async () => {
  const limiter = new FairLimiter(1)
  const order: string[] = []
  const first = gate(order, 'first')
  const running = limiter.run({}, false, first.run)
  const normal = gate(order, 'normal')
  const urgent = gate(order, 'urgent')
  const job = {}
  const a = limiter.run({}, false, normal.run)
  const b = limiter.run(job, true, urgent.run)
  first.release()
  await running
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(order, ['first', 'urgent'])
  urgent.release()
  await b
  await new Promise((r) => setImmediate(r))
  normal.release()
  await a
  assert.deepEqual(order, ['first', 'urgent', 'normal'])
})
