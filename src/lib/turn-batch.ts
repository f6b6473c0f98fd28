/**
 * Groups calls by a key and sends each group as one call: the streams of one scheduling shard that are
 * marked or let go together cost one script call, not one each.
 *
 * `when` says how long a group gathers calls:
 * - 'tick' (process.nextTick): the calls of the current callback and its microtasks; they go out with
 *   whatever else that callback sent (ioredis auto-pipelines on the same tick), so nothing waits;
 * - 'turn' (setImmediate): every callback of the current turn of the event loop too (pushes that came
 *   back together, lingers that ended together), at the cost of sending after that turn's I/O callbacks.
 */
interface Pending<A, R> {
  args: A
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

export class TurnBatch<K, A, R> {
  #groups = new Map<K, Pending<A, R>[]>()
  #scheduled = false

  /** `send` answers one result per argument, in order; `max` caps the calls sent as one. */
  constructor(
    private readonly send: (key: K, args: A[]) => Promise<R[]>,
    private readonly when: 'tick' | 'turn',
    private readonly max = 256,
  ) {}

  call(key: K, args: A): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let group = this.#groups.get(key)
      if (!group) this.#groups.set(key, (group = []))
      group.push({ args, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        if (this.when === 'tick') process.nextTick(() => this.#flush())
        else setImmediate(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#scheduled = false
    const groups = this.#groups
    this.#groups = new Map()
    for (const [key, calls] of groups)
      for (let i = 0; i < calls.length; i += this.max)
        this.#sendGroup(key, calls.slice(i, i + this.max))
  }

  #sendGroup(key: K, calls: Pending<A, R>[]): void {
    let sent: Promise<R[]>
    try {
      sent = this.send(
        key,
        calls.map((c) => c.args),
      )
    } catch (err) {
      sent = Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    sent.then(
      (results) => {
        calls.forEach((c, i) =>
          i < results.length
            ? c.resolve(results[i]!)
            : c.reject(new Error('no result for a batched call')),
        )
      },
      (err: unknown) => {
        for (const c of calls) c.reject(err)
      },
    )
  }
}
