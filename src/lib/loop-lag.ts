/**
 * How late this process's event loop runs, smoothed: a timer due every TICK_MS measures how late it fires,
 * and an average weighted by time (about `windowMs` of memory) keeps one pause (a garbage collection) from
 * counting as overload while a loop that stays busy shows within a few ticks. A tick still pending counts
 * as if it fired now, so a long task that is running is seen before it ends.
 */
import { performance } from 'node:perf_hooks'

const TICK_MS = 5

export class LoopLag {
  #smoothed = 0
  #last = 0
  #timer: NodeJS.Timeout | undefined

  constructor(private readonly windowMs = 200) {}

  start(): void {
    if (this.#timer) return
    this.#last = performance.now()
    this.#arm()
  }

  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** The smoothed lag now, in milliseconds. */
  get ms(): number {
    if (!this.#timer) return 0
    const now = performance.now()
    // A tick not yet due says nothing new.
    return now - this.#last > TICK_MS ? this.#blend(now) : this.#smoothed
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      const now = performance.now()
      this.#smoothed = this.#blend(now)
      this.#last = now
      this.#arm()
    }, TICK_MS)
    // Never what keeps the process alive.
    this.#timer.unref()
  }

  /** The average after a sample taken at `now`: lateness against the tick due TICK_MS after the last. */
  #blend(now: number): number {
    const elapsed = now - this.#last
    const late = Math.max(0, elapsed - TICK_MS)
    const weight = 1 - Math.exp(-elapsed / this.windowMs)
    return this.#smoothed + weight * (late - this.#smoothed)
  }
}
