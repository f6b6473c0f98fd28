/**
 * A concurrency limit that is fair across jobs and lets priority work go first: waiting tasks of the
 * priority class always start before normal ones, and within a class jobs take turns (one task each,
 * round-robin), so one large ingest batch cannot hold back a small one behind it.
 */
type Task = () => void

class ClassQueue {
  readonly #byJob = new Map<object, Task[]>()
  readonly #turns: object[] = []

  get empty(): boolean {
    return this.#turns.length === 0
  }

  push(job: object, task: Task): void {
    let tasks = this.#byJob.get(job)
    if (!tasks) {
      this.#byJob.set(job, (tasks = []))
      this.#turns.push(job)
    }
    tasks.push(task)
  }

  shift(): Task | undefined {
    const job = this.#turns.shift()
    if (job === undefined) return undefined
    const tasks = this.#byJob.get(job)!
    const task = tasks.shift()!
    if (tasks.length > 0) this.#turns.push(job)
    else this.#byJob.delete(job)
    return task
  }
}

export class FairLimiter {
  #running = 0
  readonly #priority = new ClassQueue()
  readonly #normal = new ClassQueue()

  constructor(private readonly limit: number) {}

  run<T>(job: object, priority: boolean, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const task = () => {
        this.#running++
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
      const task = this.#priority.shift() ?? this.#normal.shift()
      if (!task) return
      task()
    }
  }
}
