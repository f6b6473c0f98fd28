/**
 * What a push drain knows of its stream's lanes (outbox.ts): the SETs read and not yet done with, in
 * lane order, and where reading stopped in each lane, so the next read asks Redis only for what came
 * after. Which SETs to send next is chosen from it (pickWindow).
 */
import type { Head, Lane, QueuedSet } from './outbox.js'

const LANE_LETTERS: readonly Lane[] = ['c', 'p', 'n']

/** A queued SET's identity: entry ids are unique only within a lane (one append may give two lanes `t-0`). */
export const entryKey = (s: Pick<QueuedSet, 'lane' | 'id'>): string => `${s.lane}${s.id}`

export class LaneView {
  readonly held: Record<Lane, QueuedSet[]> = { c: [], p: [], n: [] }
  /** For subjects of priority SETs held, the normal SETs queued about each (absent: none). */
  readonly pending = new Map<string, number>()
  /** Per lane, the last entry id read ('-': nothing read yet). */
  readonly after: Record<Lane, string> = { c: '-', p: '-', n: '-' }
  /** Per lane, whether entries may lie beyond what was read (unknown until the lane is read). */
  readonly partial: Record<Lane, boolean> = { c: true, p: true, n: true }
  readonly #ids = new Set<string>()

  /** The view of lanes that were empty before these SETs were appended: exactly these. */
  static ofAppended(queued: readonly QueuedSet[]): LaneView {
    const view = new LaneView()
    for (const lane of LANE_LETTERS) view.partial[lane] = false
    for (const s of queued) {
      view.#hold(s)
      if (s.lane === 'n') view.pending.set(s.sk, (view.pending.get(s.sk) ?? 0) + 1)
    }
    return view
  }

  /**
   * Adds what a read of `lanes` found after `after` (Outbox.head with this view's `after`). A lane not
   * read may have had SETs appended since it was: it counts as read in part.
   */
  merge(read: Head, lanes: readonly Lane[], count: number): void {
    for (const lane of LANE_LETTERS) {
      if (!lanes.includes(lane)) {
        this.partial[lane] = true
        continue
      }
      const found = read[lane]
      for (const s of found) if (!this.#ids.has(entryKey(s))) this.#hold(s)
      this.partial[lane] = found.length >= count
    }
    // The read's counts are current for the subjects of the priority SETs it found (absent: none).
    for (const s of read.p) {
      const queued = read.pending.get(s.sk)
      if (queued === undefined) this.pending.delete(s.sk)
      else this.pending.set(s.sk, queued)
    }
  }

  /** Notes that SETs may have been queued in these lanes since they were read: they are read on later. */
  readLater(lanes: readonly Lane[]): void {
    for (const lane of lanes) this.partial[lane] = true
  }

  /** Takes SETs that are done with out of the view (and out of the pending counts). */
  forget(gone: readonly QueuedSet[]): void {
    for (const s of gone) {
      if (!this.#ids.delete(entryKey(s))) continue
      // SETs are mostly done with in the order they were held: found at or near the front.
      const held = this.held[s.lane]
      const i = held.findIndex((h) => h.id === s.id)
      if (i >= 0) held.splice(i, 1)
      if (s.lane !== 'n') continue
      const left = (this.pending.get(s.sk) ?? 0) - 1
      if (left > 0) this.pending.set(s.sk, left)
      else this.pending.delete(s.sk)
    }
  }

  /** SETs held and not in flight (`inFlight` keyed by entryKey), in all lanes or in one. */
  unsent(inFlight: ReadonlyMap<string, QueuedSet>, lane?: Lane): number {
    let held = 0
    for (const l of lane ? [lane] : LANE_LETTERS) held += this.held[l].length
    let sending = 0
    for (const s of inFlight.values())
      if (this.#ids.has(entryKey(s)) && (!lane || s.lane === lane)) sending++
    return held - sending
  }

  /** Whether entries may lie beyond what was read in any of `lanes`. */
  anyPartial(lanes: readonly Lane[]): boolean {
    return lanes.some((lane) => this.partial[lane])
  }

  #hold(s: QueuedSet): void {
    this.#ids.add(entryKey(s))
    this.held[s.lane].push(s)
    this.after[s.lane] = s.id
  }
}

/**
 * Picks, in order, SETs to send now about distinct subjects: control first, then priority SETs not
 * behind an earlier normal SET about their subject, then normal ones. A subject already picked, busy
 * (a SET about it is in flight) or blocked blocks its later SETs. At most `room.total` are picked, of
 * which at most `room.normal` from the normal lane: control and priority SETs may use room that normal
 * SETs may not, so a revocation does not wait for a window of informational events to come back.
 */
export function pickWindow(
  view: Pick<LaneView, 'held' | 'pending' | 'partial'>,
  room: { total: number; normal: number },
  busy: ReadonlySet<string> = new Set(),
): QueuedSet[] {
  const { c, p, n } = view.held
  /** Subjects met in this pick: their later SETs wait (as those of busy subjects do). */
  const blocked = new Set<string>()
  const window: QueuedSet[] = []
  let normals = 0
  const take = (item: QueuedSet) => {
    if (window.length >= room.total || busy.has(item.sk) || blocked.has(item.sk)) return
    blocked.add(item.sk)
    if (item.lane === 'n' && normals >= room.normal) return
    if (item.lane === 'n') normals++
    window.push(item)
  }
  for (const item of c) take(item)
  const lastNormal = n.length > 0 ? n[n.length - 1]!.n : -Infinity
  for (const item of p) {
    if (window.length >= room.total) break
    const pending = view.pending.get(item.sk) ?? 0
    if (pending > 0) {
      const earlierSeen = n.some((x) => x.sk === item.sk && x.n < item.n)
      // Normal SETs not read yet all come after the last one held; they may be earlier than this one.
      const earlierUnseen =
        view.partial.n && lastNormal < item.n && n.filter((x) => x.sk === item.sk).length < pending
      // Waits (the earlier normal SET about its subject is picked below, in its turn).
      if (earlierSeen || earlierUnseen) continue
    }
    take(item)
  }
  for (const item of n) {
    // Full: later SETs could not be taken (nor block anything taken).
    if (window.length >= room.total || normals >= room.normal) break
    take(item)
  }
  return window
}
