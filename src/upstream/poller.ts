/**
 * Poll loops for poll-delivery upstreams (RFC 8936), one per upstream across all broker processes.
 * Every tick, a process renews the leases of the upstreams it polls (stopping any whose lease it lost
 * or could not renew in time) and tries to acquire the others. Lease duration and tick are a half and a
 * sixth of SSF_BROKER_LEASE_MS, so a dead process's upstreams are polled again within that time.
 *
 * Each loop is the receiver SDK's poll client: it long-polls, verifies every SET, hands it to the same
 * handler as push, and acknowledges it only after that handler returned (the event is durable here);
 * refused SETs go in `setErrs`.
 */
import type { Logger } from '../lib/log.js'
import { createPollClient, type PollClient } from '../receiver/poll-client.js'
import { ReceiverError } from '../receiver/errors.js'
import type { UpstreamLeases } from './lease.js'
import type { UpstreamService } from './service.js'

interface Loop {
  client: PollClient
  done: Promise<void>
  renewedAt: number
}

export class UpstreamPoller {
  readonly #loops = new Map<string, Loop>()
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #ticking: Promise<void> | undefined
  readonly #tickMs: number

  constructor(
    private readonly service: UpstreamService,
    private readonly leases: UpstreamLeases,
    private readonly log: Logger,
    private readonly options: { requestTimeoutMs?: number } = {},
  ) {
    this.#tickMs = Math.max(50, Math.floor(leases.durationMs / 3))
  }

  /** Upstream ids this process is polling now. */
  get polling(): string[] {
    return [...this.#loops.keys()]
  }

  start(): void {
    this.#stopped = false
    const run = () => {
      this.#ticking = this.tick()
        .catch((error) =>
          this.log.warn('upstream poll scheduling failed', { error: String(error) }),
        )
        .finally(() => {
          this.#ticking = undefined
          if (!this.#stopped) this.#timer = setTimeout(run, this.#tickMs)
        })
    }
    run()
  }

  async tick(): Promise<void> {
    const now = Date.now()
    const records = (await this.service.store.list()).filter((r) => r.delivery === 'poll')
    const wanted = new Set(records.map((r) => r.upstream_id))
    for (const [id, loop] of this.#loops) {
      if (!wanted.has(id)) {
        await this.#end(id, loop, true)
        continue
      }
      let renewed = false
      try {
        renewed = await this.leases.renew(id)
      } catch {
        // Redis did not answer: keep polling only while the lease may still be ours.
        renewed = false
        if (now - loop.renewedAt < this.leases.durationMs) continue
      }
      if (renewed) loop.renewedAt = now
      else await this.#end(id, loop, false)
    }
    for (const record of records) {
      if (this.#stopped || this.#loops.has(record.upstream_id)) continue
      if (!(await this.leases.acquire(record.upstream_id))) continue
      const runtime = await this.service.runtime(record.upstream_id)
      if (!runtime || !record.poll_url) {
        await this.leases.release(record.upstream_id)
        continue
      }
      const id = record.upstream_id
      const client = createPollClient({
        receiver: runtime.receiver,
        endpoint: record.poll_url,
        token: () => runtime.token.get(),
        onEvent: runtime.onEvent,
        ...(this.options.requestTimeoutMs !== undefined
          ? { requestTimeoutMs: this.options.requestTimeoutMs }
          : {}),
        backoff: { initialMs: 250, maxMs: 30_000 },
        onError: (error) => {
          if (error instanceof ReceiverError && error.status === 401) runtime.token.invalidate()
          const message =
            error instanceof ReceiverError
              ? `${error.code}: ${error.message}`
              : error instanceof Error
                ? error.name
                : 'unknown error'
          this.log.warn('upstream poll problem', { upstream_id: id, error: message })
          void this.service.store.error(id, `poll: ${message}`).catch(() => {})
        },
      })
      const loop: Loop = { client, renewedAt: now, done: client.start() }
      this.#loops.set(id, loop)
      this.log.info('polling upstream', { upstream_id: id, holder: this.leases.holder })
    }
  }

  async #end(id: string, loop: Loop, release: boolean): Promise<void> {
    this.#loops.delete(id)
    await loop.client.stop().catch(() => {})
    if (release) await this.leases.release(id).catch(() => {})
    this.log.info('stopped polling upstream', { upstream_id: id })
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#ticking
    await Promise.all([...this.#loops].map(([id, loop]) => this.#end(id, loop, true)))
  }
}
