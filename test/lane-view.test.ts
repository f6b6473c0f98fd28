/**
 * What a push drain sends next (src/delivery/lane-view.ts), against a model of a stream's lanes: SETs
 * are appended between reads, reads go on from where the last stopped (sometimes skipping the normal
 * lane, as a drain does while it holds plenty of normal SETs), and whatever is picked must keep
 * per-subject order over everything queued, read or not.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { LaneView, pickWindow } from '../src/delivery/lane-view.js'
import type { Head, Lane, QueuedSet } from '../src/delivery/outbox.js'

/** Entry ids as Redis makes them in one append: `<ms>-<seq>`, counted per lane (so lanes share ids). */
const set = (lane: Lane, n: number, sk: string, id = `${n}-0`): QueuedSet => ({
  id,
  n,
  lane,
  sk,
  jti: `j${n}`,
  set: 'x',
  txn: `t${n}`,
  type: 'y',
  at: 0,
})

const idAfter = (id: string, after: string) => {
  const [ms, seq] = id.split('-').map(Number) as [number, number]
  const [ams, aseq] = after.split('-').map(Number) as [number, number]
  return ms > ams || (ms === ams && seq > aseq)
}

/** What Outbox.head answers for these lanes: entries after `after`, at most `count` per lane read. */
function readLanes(
  queued: readonly QueuedSet[],
  lanes: readonly Lane[],
  count: number,
  after: Readonly<Record<Lane, string>>,
): Head {
  const lane = (l: Lane) =>
    lanes.includes(l)
      ? queued
          .filter((s) => s.lane === l && (after[l] === '-' || idAfter(s.id, after[l])))
          .slice(0, count)
      : []
  const head: Head = {
    c: lane('c'),
    p: lane('p'),
    n: lane('n'),
    pending: new Map(),
    failing: false,
  }
  for (const p of head.p) {
    const normals = queued.filter((s) => s.lane === 'n' && s.sk === p.sk).length
    if (normals > 0) head.pending.set(p.sk, normals)
  }
  return head
}

const step = fc.oneof(
  fc.record({
    kind: fc.constant('append' as const),
    sets: fc.array(
      fc.record({
        lane: fc.constantFrom<Lane>('n', 'n', 'n', 'p', 'c'),
        sk: fc.constantFrom('a', 'b', 'c', 'd'),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  }),
  fc.record({ kind: fc.constant('read' as const), skipNormal: fc.boolean() }),
)

test('what is picked keeps per-subject order over every queued SET, read or not', () => {
  fc.assert(
    fc.property(
      fc.array(step, { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 8 }),
      (steps, count, total, normal) => {
        const queued: QueuedSet[] = []
        const view = new LaneView()
        let next = 1
        for (const [ms, s] of steps.entries()) {
          if (s.kind === 'append') {
            const seq: Record<Lane, number> = { c: 0, p: 0, n: 0 }
            for (const x of s.sets) queued.push(set(x.lane, next++, x.sk, `${ms}-${seq[x.lane]++}`))
          } else {
            const lanes: Lane[] = s.skipNormal ? ['c', 'p'] : ['c', 'p', 'n']
            view.merge(readLanes(queued, lanes, count, view.after), lanes, count)
          }
        }
        const picked = pickWindow(view, { total, normal })
        assert.ok(picked.length <= total)
        assert.ok(picked.filter((s) => s.lane === 'n').length <= normal)
        assert.equal(new Set(picked.map((s) => s.sk)).size, picked.length, 'one SET per subject')
        for (const s of picked) {
          // Nothing is in flight, so every SET queued before it about its subject is still queued.
          const earlier = queued.filter(
            (q) =>
              q.sk === s.sk &&
              q.n < s.n &&
              // Control SETs go first whatever their subject; a priority SET may pass normal ones only
              // when none about its subject is earlier, and passes nothing else of its own lane.
              (s.lane === 'c' ? q.lane === 'c' : s.lane === 'p' ? q.lane !== 'c' : q.lane === 'n'),
          )
          assert.deepEqual(
            earlier.map((q) => q.id),
            [],
            `${s.lane} SET ${s.id} about ${s.sk} picked ahead of an earlier one`,
          )
        }
        // Nothing queued is left out of the view: whatever was read is held (lanes share entry ids).
        const held = new Set(['c', 'p', 'n'].flatMap((l) => view.held[l as Lane].map((s) => s.jti)))
        for (const q of queued) {
          const read = view.after[q.lane] !== '-' && !idAfter(q.id, view.after[q.lane])
          if (read) assert.ok(held.has(q.jti), `${q.lane} SET ${q.id} was read but is not held`)
        }
      },
    ),
    { numRuns: 2000 },
  )
})

test('a view of lanes appended while empty holds exactly those SETs; done ones leave it and its counts', () => {
  const sets = [set('n', 1, 'a'), set('p', 2, 'a'), set('n', 3, 'b'), set('c', 4, 'a')]
  const view = LaneView.ofAppended(sets)
  assert.deepEqual(view.partial, { c: false, p: false, n: false })
  // The control SET goes first; the revocation about 'a' waits for the earlier normal SET about 'a'.
  assert.deepEqual(
    pickWindow(view, { total: 8, normal: 8 }).map((s) => s.id),
    ['4-0', '3-0'],
  )
  view.forget([sets[0]!, sets[3]!])
  assert.equal(view.pending.get('a'), undefined)
  assert.deepEqual(
    pickWindow(view, { total: 8, normal: 8 }).map((s) => s.id),
    ['2-0', '3-0'],
  )
  // Busy subjects (a SET in flight) and the room for normal SETs hold the rest back.
  assert.deepEqual(
    pickWindow(view, { total: 8, normal: 0 }, new Set(['b'])).map((s) => s.id),
    ['2-0'],
  )
  const inFlight = new Map([[sets[1]!.id, sets[1]!]])
  assert.equal(view.unsent(inFlight), 1)
  assert.equal(view.unsent(inFlight, 'p'), 0)
})
