/**
 * A concurrency limit that is fair across jobs and lets priority work go first: waiting tasks of the
 * priority class always start before normal ones, and within a class the job that has started the fewest
 * tasks so far goes next (oldest first among equals), so one large ingest batch cannot hold back a small
 * one that arrives while it runs: the newcomer takes the next free slot.
 */
type Task = () => void

class ClassQueue {
  /** Waiting tasks by job, and the order jobs first queued in (for ties). */
  readonly #byJob = new Map<object, { tasks: Task[]; order: number }>()
  #arrivals = 0

  push(job: object, task: Task): void {
    let queue = this.#byJob.get(job)
    if (!queue) this.#byJob.set(job, (queue = { tasks: [], order: this.#arrivals++ }))
    queue.tasks.push(task)
  }

  /** The next task: of the job that has started the fewest so far, oldest first among equals. */
  shift(started: (job: object) => number): Task | undefined {
    let best: { job: object; count: number; order: number } | undefined
    for (const [job, queue] of this.#byJob) {
      const count = started(job)
      if (!best || count < best.count || (count === best.count && queue.order < best.order))
        best = { job, count, order: queue.order }
    }
    if (!best) return undefined
    const queue = this.#byJob.get(best.job)!
    const task = queue.tasks.shift()!
    if (queue.tasks.length === 0) this.#byJob.delete(best.job)
    return task
  }
}

export class FairLimiter {
  #running = 0
  readonly #priority = new ClassQueue()
  readonly #normal = new ClassQueue()
  /** Tasks started per job (a job's chunks queue one after another, so its queue is often empty). */
  readonly #started = new WeakMap<object, number>()
  readonly #startedOf = (job: object) => this.#started.get(job) ?? 0

  constructor(private readonly limit: number) {}

  run<T>(job: object, priority: boolean, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const task = () => {
        this.#running++
        this.#started.set(job, this.#startedOf(job) + 1)
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.#running--
            this.#next()
          })
      }
      ;(priority ? this.#priority : this.#normal).push(job, task)
      this.#next()
    })
  }

  #next(): void {
    while (this.#running < this.limit) {
      const task = this.#priority.shift(this.#startedOf) ?? this.#normal.shift(this.#startedOf)
      if (!task) return
      task()
    }
  }
}
