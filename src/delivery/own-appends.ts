/**
 * This process's appends to push streams, watched until a drain here starts from them or forgets them.
 * A drain may start from an append's SETs instead of reading them back only when the append found the
 * lanes empty and no drain here has read the lanes since the append was sent: such a read may have found
 * those SETs and sent them, and starting from them again would send them twice.
 *
 * Only reads sent after the append are marked: a read of the same stream sent before it travels on the
 * same connection (its keys share a hash slot), so Redis answers it before the append lands.
 */
import type { Appended } from './outbox.js'

export interface OwnAppend {
  /** What the append did, once it is done. */
  appended?: Appended
  /** A drain here read the stream's lanes after the append was sent. */
  read: boolean
}

export class OwnAppends {
  readonly #watched = new Map<string, Set<OwnAppend>>()

  /** Starts watching an append to `sid` that is about to be (or was just) sent. */
  watch(sid: string): OwnAppend {
    const own: OwnAppend = { read: false }
    let set = this.#watched.get(sid)
    if (!set) this.#watched.set(sid, (set = new Set()))
    set.add(own)
    return own
  }

  /** A drain here is about to read the lanes of `sid`. */
  lanesRead(sid: string): void {
    for (const own of this.#watched.get(sid) ?? []) own.read = true
  }

  /** Stops watching (idempotent). */
  forget(sid: string, own: OwnAppend): void {
    const set = this.#watched.get(sid)
    if (!set?.delete(own)) return
    if (set.size === 0) this.#watched.delete(sid)
  }

  /** Appends being watched (for tests: none are left behind). */
  get size(): number {
    let n = 0
    for (const set of this.#watched.values()) n += set.size
    return n
  }

  /** The append, when a drain may start from its SETs: they were the whole queue and not read since. */
  static seed(own: OwnAppend | undefined): Appended | undefined {
    return own?.appended?.wasEmpty && !own.read ? own.appended : undefined
  }
}
