/**
 * Stream inactivity timeout (SSF §8.1.1 `inactivity_timeout`). A stream with no management call (and, for
 * poll streams, no poll) for SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS is paused by the stream lifecycle,
 * which tells the receiver by a stream-updated event in the control lane (delivered while paused, SSF §8.1.5).
 * One process sweeps at a time (a short Redis lock); any process can.
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../lib/log.js'
import type { StreamStore } from './store.js'
import type { StreamLifecycle } from './lifecycle.js'

export class InactivitySweeper {
  #timer: NodeJS.Timeout | undefined

  constructor(
    private readonly redis: Redis,
    private readonly streams: StreamStore,
    private readonly lifecycle: StreamLifecycle,
    private readonly lockKey: string,
    private readonly timeoutSeconds: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timeoutSeconds === 0) return
    const every = Math.min(5000, Math.max(200, (this.timeoutSeconds * 1000) / 4))
    this.#timer = setInterval(
      () =>
        void this.sweep().catch((err: unknown) =>
          this.log.warn('inactivity sweep failed', { error: String(err) }),
        ),
      every,
    )
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  async sweep(): Promise<number> {
    if ((await this.redis.set(this.lockKey, '1', 'PX', 4000, 'NX')) === null) return 0
    let paused = 0
    try {
      const ids = await this.streams.inactiveSince(Date.now() - this.timeoutSeconds * 1000, 100)
      for (const id of ids) {
        const stream = await this.streams.get(id)
        if (stream?.status === 'enabled') {
          const reason = `inactivity_timeout: no activity for ${this.timeoutSeconds} s`
          await this.lifecycle.setStatus(stream, 'paused', reason, 'broker')
          paused++
          this.log.info('stream paused for inactivity', { stream_id: id })
        }
        await this.streams.untrack(id)
      }
    } finally {
      await this.redis.del(this.lockKey)
    }
    return paused
  }
}
