/**
 * A concurrency limit that is fair across flows and jobs and lets priority work go first.
 *
 * - The limit counts weight (for the fan-out: events), not tasks: many small tasks may run together,
 *   few large ones. A task heavier than the whole limit runs alone.
 * - Waiting tasks of the priority class always start before normal ones.
 * - Within a class, the flow with the fewest tasks running goes next (the one served longest ago among
 *   equals). A flow is where a task's work goes, such as the streams its events route to: a flood of
 *   requests for one stream holds at most its share of the slots, and a request for another stream takes
 *   the next free slot instead of waiting behind the whole flood.
 * - Within a flow, the job (request) that had started the fewest tasks when it queued goes next (oldest
 *   first among equals), so one large request cannot hold back a small one of the same flow either.
 *
 * Choosing the next task costs O(flows + log jobs), whatever the number of jobs waiting.
 */
interface Entry {
  start: () => void
  weight: number
}

interface JobQueue {
  job: object
  tasks: Entry[]
  /** When the job first queued (a counter): the tie-break between jobs. */
  order: number
  /** Tasks the job had started when it queued (or when its previous task started). */
  started: number
}

class Flow {
  readonly jobs = new Map<object, JobQueue>()
  /** The jobs in `jobs`, by tasks started, each list in queueing order. */
  readonly byStarted = new Map<number, JobQueue[]>()
  running = 0
  /** When a task of this flow last started (a counter): the tie-break between flows. */
  servedAt = 0

  add(q: JobQueue): void {
    let list = this.byStarted.get(q.started)
    if (!list) this.byStarted.set(q.started, (list = []))
    // Mostly appended at the end; a job that started a task goes back in its queueing order.
    let i = list.length
    while (i > 0 && list[i - 1]!.order > q.order) i--
    list.splice(i, 0, q)
  }

  /** The job to serve next: fewest tasks started, then oldest. */
  head(): JobQueue | undefined {
    let least: number | undefined
    for (const started of this.byStarted.keys())
      if (least === undefined || started < least) least = started
    return least === undefined ? undefined : this.byStarted.get(least)![0]
  }

  /** Takes the head job's next task; the job goes back in line if it has more. */
  take(q: JobQueue): Entry {
    const list = this.byStarted.get(q.started)!
    list.shift()
    if (list.length === 0) this.byStarted.delete(q.started)
    const entry = q.tasks.shift()!
    q.started++
    if (q.tasks.length > 0) this.add(q)
    else this.jobs.delete(q.job)
    return entry
  }
}

class ClassQueue {
  readonly flows = new Map<string, Flow>()
  #arrivals = 0

  push(key: string, job: object, started: number, entry: (flow: Flow) => Entry): void {
    let flow = this.flows.get(key)
    if (!flow) this.flows.set(key, (flow = new Flow()))
    let q = flow.jobs.get(job)
    if (!q) {
      q = { job, tasks: [], order: this.#arrivals++, started }
      flow.jobs.set(job, q)
      flow.add(q)
    }
    q.tasks.push(entry(flow))
  }

  /** The next task: of the flow with the fewest running, then of its job that has started the fewest. */
  peek(): { flow: Flow; q: JobQueue } | undefined {
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
    const q = flow?.head()
    return q && { flow: flow!, q }
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

  /** `limit`: the total weight of tasks running at once. */
  constructor(private readonly limit: number) {}

  /** Runs `fn` once there is room for its weight and it is the turn of its class, flow and job. */
  run<T>(
    job: object,
    flow: string,
    priority: boolean,
    fn: () => Promise<T>,
    weight = 1,
  ): Promise<T> {
    const cls = priority ? this.#priority : this.#normal
    return new Promise<T>((resolve, reject) => {
      cls.push(flow, job, this.#startedOf(job), (f) => ({
        weight,
        start: () => {
          this.#running += weight
          f.running++
          f.servedAt = ++this.#served
          this.#started.set(job, this.#startedOf(job) + 1)
          fn()
            .then(resolve, reject)
            .finally(() => {
              this.#running -= weight
              f.running--
              cls.settle(flow, f)
              this.#next()
            })
        },
      }))
      this.#next()
    })
  }

  /** Flows with tasks waiting or running (for tests: none are left behind once idle). */
  get flows(): number {
    return this.#priority.flows.size + this.#normal.flows.size
  }

  #next(): void {
    for (;;) {
      const next = this.#priority.peek() ?? this.#normal.peek()
      if (!next) return
      // The next task in line waits for room (nothing overtakes it); alone, it always has room.
      const weight = next.q.tasks[0]!.weight
      if (this.#running > 0 && this.#running + weight > this.limit) return
      next.flow.take(next.q).start()
    }
  }
}
