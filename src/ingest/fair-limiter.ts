/**
 * A concurrency limit that is fair across flows and jobs and lets priority work go first.
 *
 * - Waiting tasks of the priority class always start before normal ones.
 * - Within a class, the flow with the fewest tasks running goes next (the one served longest ago among
 *   equals). A flow is where a task's work goes, such as the streams its events route to: a flood of
 *   requests for one stream holds at most its share of the slots, and a request for another stream takes
 *   the next free slot instead of waiting behind the whole flood.
 * - Within a flow, the job (request) that has started the fewest tasks goes next (oldest first among
 *   equals), so one large request cannot hold back a small one of the same flow either.
 */
type Task = () => void

class Flow {
  /** Waiting tasks by job, with the order each job first queued in (for ties). */
  readonly jobs = new Map<object, { tasks: Task[]; order: number }>()
  running = 0
  /** When a task of this flow last started (a counter): the tie-break between flows. */
  servedAt = 0
}

class ClassQueue {
  readonly flows = new Map<string, Flow>()
  #arrivals = 0

  push(key: string, job: object, task: (flow: Flow) => void): void {
    let flow = this.flows.get(key)
    if (!flow) this.flows.set(key, (flow = new Flow()))
    let queue = flow.jobs.get(job)
    if (!queue) flow.jobs.set(job, (queue = { tasks: [], order: this.#arrivals++ }))
    const f = flow
    queue.tasks.push(() => task(f))
  }

  /** The next task: of the flow with the fewest running, then of its job that has started the fewest. */
  shift(started: (job: object) => number): Task | undefined {
    let flow: Flow | undefined
    for (const f of this.flows.values()) {
      if (f.jobs.size === 0) continue
      if (
        !flow ||
        f.running < flow.running ||
        (f.running === flow.running && f.servedAt < flow.servedAt)
      )
        flow = f
    }
    if (!flow) return undefined
    let best: { job: object; count: number; order: number } | undefined
    for (const [job, queue] of flow.jobs) {
      const count = started(job)
      if (!best || count < best.count || (count === best.count && queue.order < best.order))
        best = { job, count, order: queue.order }
    }
    const queue = flow.jobs.get(best!.job)!
    const task = queue.tasks.shift()!
    if (queue.tasks.length === 0) flow.jobs.delete(best!.job)
    return task
  }

  /** Forgets a flow with nothing waiting or running. */
  settle(key: string, flow: Flow): void {
    if (flow.running === 0 && flow.jobs.size === 0 && this.flows.get(key) === flow)
      this.flows.delete(key)
  }
}

export class FairLimiter {
  #running = 0
  #served = 0
  readonly #priority = new ClassQueue()
  readonly #normal = new ClassQueue()
  /** Tasks started per job (a job's chunks queue one after another, so its queue is often empty). */
  readonly #started = new WeakMap<object, number>()
  readonly #startedOf = (job: object) => this.#started.get(job) ?? 0

  constructor(private readonly limit: number) {}

  /** Runs `fn` once a slot is free and it is the turn of its class, flow and job. */
  run<T>(job: object, flow: string, priority: boolean, fn: () => Promise<T>): Promise<T> {
    const cls = priority ? this.#priority : this.#normal
    return new Promise<T>((resolve, reject) => {
      cls.push(flow, job, (f) => {
        this.#running++
        f.running++
        f.servedAt = ++this.#served
        this.#started.set(job, this.#startedOf(job) + 1)
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.#running--
            f.running--
            cls.settle(flow, f)
            this.#next()
          })
      })
      this.#next()
    })
  }

  /** Flows with tasks waiting or running (for tests: none are left behind once idle). */
  get flows(): number {
    return this.#priority.flows.size + this.#normal.flows.size
  }

  #next(): void {
    while (this.#running < this.limit) {
      const task = this.#priority.shift(this.#startedOf) ?? this.#normal.shift(this.#startedOf)
      if (!task) return
      task()
    }
  }
}
