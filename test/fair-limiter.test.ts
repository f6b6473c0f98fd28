/**
 * The fan-out's concurrency limit (src/ingest/fair-limiter.ts): priority work first, then the flow with
 * the fewest tasks running, then the job that has started the fewest tasks, so a small request arriving
 * during a large one (or during a flood of requests for other streams) takes the next free slot.
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
  const runs = [limiter.run(A, 'x', false, a0.run), limiter.run(B, 'x', false, b0.run)]
  await tick()
  a0.release()
  await tick()
  // b0 runs; A's next task waits, then the small job C arrives behind it.
  runs.push(limiter.run(A, 'x', false, a1.run), limiter.run(C, 'x', false, c0.run))
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
  const running = limiter.run({}, 'x', false, first.run)
  const normal = gate(order, 'normal')
  const urgent = gate(order, 'urgent')
  const job = {}
  const a = limiter.run({}, 'x', false, normal.run)
  const b = limiter.run(job, 'x', true, urgent.run)
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

test('a flood of requests for one flow holds its share of the slots; another flow takes the next free one', async () => {
  const limiter = new FairLimiter(2)
  const order: string[] = []
  const tick = () => new Promise((r) => setImmediate(r))
  // Ten requests for flow X, each one task, queued first; they fill both slots.
  const flood = Array.from({ length: 10 }, (_, i) => gate(order, `x${i}`))
  const runs = flood.map((g) => limiter.run({}, 'X', false, g.run))
  await tick()
  assert.deepEqual(order, ['x0', 'x1'])
  // A request for flow Y arrives behind the eight waiting ones of X, all of which have started nothing.
  const y = gate(order, 'y0')
  runs.push(limiter.run({}, 'Y', false, y.run))
  flood[0]!.release()
  await tick()
  // Requests in arrival order (or by fewest tasks started) would start x2 here.
  assert.deepEqual(order, ['x0', 'x1', 'y0'])
  flood[1]!.release()
  await tick()
  assert.deepEqual(order, ['x0', 'x1', 'y0', 'x2'])
  y.release()
  for (const g of flood.slice(2)) {
    await tick()
    g.release()
  }
  await Promise.all(runs)
  assert.equal(order.length, 11)
  assert.equal(limiter.flows, 0, 'no flow is kept once idle')
})

test('the limit counts weight: many light tasks run together, a heavy one waits for room (nothing overtakes it) or runs alone', async () => {
  const limiter = new FairLimiter(4)
  const order: string[] = []
  const tick = () => new Promise((r) => setImmediate(r))
  const light = Array.from({ length: 4 }, (_, i) => gate(order, `l${i}`))
  const heavy = gate(order, 'heavy')
  const late = gate(order, 'late')
  const huge = gate(order, 'huge')
  const runs = light.map((g) => limiter.run({}, 'x', false, g.run, 1))
  runs.push(limiter.run({}, 'x', false, heavy.run, 3))
  runs.push(limiter.run({}, 'x', false, late.run, 1))
  await tick()
  assert.deepEqual(order, ['l0', 'l1', 'l2', 'l3'], 'four tasks of weight 1 share a limit of 4')
  light[0]!.release()
  await tick()
  // Room for 1: the next in line weighs 3 and waits; the task behind it does not go first.
  assert.deepEqual(order, ['l0', 'l1', 'l2', 'l3'])
  light[1]!.release()
  light[2]!.release()
  await tick()
  assert.deepEqual(order, ['l0', 'l1', 'l2', 'l3', 'heavy'])
  await tick()
  assert.deepEqual(order, ['l0', 'l1', 'l2', 'l3', 'heavy'], 'weight 3 + 1 running: full')
  light[3]!.release()
  await tick()
  assert.deepEqual(order, ['l0', 'l1', 'l2', 'l3', 'heavy', 'late'])
  heavy.release()
  late.release()
  await Promise.all(runs)
  // Heavier than the whole limit: runs once nothing else does.
  const alone = limiter.run({}, 'x', false, huge.run, 10)
  await tick()
  assert.deepEqual(order.at(-1), 'huge')
  huge.release()
  await alone
  await tick()
  assert.equal(limiter.flows, 0)
})

test('among thousands of waiting jobs the one that started fewest, then the oldest, goes next', async () => {
  const limiter = new FairLimiter(1)
  const order: string[] = []
  const tick = () => new Promise((r) => setImmediate(r))
  const first = gate(order, 'first')
  const running = limiter.run({}, 'x', false, first.run)
  // A job that has started one task queues its second behind 2,000 jobs that started none.
  const big = {}
  const b0 = gate(order, 'b0')
  const b1 = gate(order, 'b1')
  const bigRun = limiter.run(big, 'y', false, b0.run)
  const many = Array.from({ length: 2000 }, (_, i) => gate(order, `m${i}`))
  const runs = many.map((g) => limiter.run({}, 'y', false, g.run))
  first.release()
  await running
  await tick()
  assert.deepEqual(order, ['first', 'b0'])
  const next = limiter.run(big, 'y', false, b1.run)
  b0.release()
  await bigRun
  for (const g of many) {
    await tick()
    g.release()
  }
  await tick()
  b1.release()
  await Promise.all([...runs, next])
  assert.deepEqual(order.slice(2, 5), ['m0', 'm1', 'm2'])
  assert.equal(order.at(-1), 'b1', 'the job that had started a task comes after all that had none')
  assert.equal(order.length, 2003)
})
