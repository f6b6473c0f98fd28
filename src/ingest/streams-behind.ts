/**
 * Push streams this process recently found far behind: at its last append to one, the stream held at
 * least BEHIND_SETS SETs. Admission control refuses more normal-priority work for such a stream while the
 * broker is at capacity. A mark lasts BEHIND_FOR_MS unless an append renews it, so a stream that is
 * refused (and so gets no appends) is tried again soon after, and the next append tells again.
 */
/** Seconds of work for one broker process (it delivers 1,000–3,000 SETs/s on 2 cores). */
export const BEHIND_SETS = 5000
export const BEHIND_FOR_MS = 1000

export class StreamsBehind {
  /** Stream id → when an append last found it behind (ms). */
  readonly #since = new Map<string, number>()

  /** What an append to a push stream saw: `held` SETs in its lanes afterwards. */
  note(sid: string, held: number, now = Date.now()): void {
    if (held >= BEHIND_SETS) this.#since.set(sid, now)
    else this.#since.delete(sid)
  }

  has(sid: string, now = Date.now()): boolean {
    const at = this.#since.get(sid)
    if (at === undefined) return false
    if (now - at < BEHIND_FOR_MS) return true
    this.#since.delete(sid)
    return false
  }

  forget(sid: string): void {
    this.#since.delete(sid)
  }
}
