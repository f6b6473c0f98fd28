/**
 * De-duplication of upstream SETs by (upstream `iss`, `jti`), shared by every broker process, and safe
 * across a crash: the receiver SDK's replay check is given this store, which marks a SET "pending" while
 * it is being ingested and "done" only once it is durable here (`commit`). A SET seen "done" is a
 * duplicate (acknowledged without a second fan-out); one seen "pending" is being ingested right now by
 * another request or process, so this delivery is answered as a transient failure (push: 503; poll: left
 * unacknowledged) and the upstream retries it. A process killed mid-ingest leaves "pending", which
 * expires after `pendingMs`, so the retry is then ingested: nothing the upstream sent is lost.
 */
import type { Redis } from 'ioredis'
import type { ReplayStore } from '../receiver/replay-store.js'
import type { Keyspace } from '../redis/keyspace.js'

export class SeenBeforeInProgress extends Error {
  override name = 'SeenBeforeInProgress'
}

/** The receiver SDK's replay key for a SET (receiver.ts builds it the same way). */
export const replayKeyOf = (iss: string, jti: string) => JSON.stringify([iss, jti])

export class UpstreamDedup implements ReplayStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
    private readonly retentionMs: number,
    private readonly pendingMs = 10_000,
  ) {}

  async remember(key: string): Promise<boolean> {
    const k = this.keys.upstreams.seen(key)
    if ((await this.redis.set(k, 'pending', 'PX', this.pendingMs, 'NX')) === 'OK') return true
    if ((await this.redis.get(k)) === 'done') return false
    throw new SeenBeforeInProgress('this SET is being ingested by another request; retry it')
  }

  /** The SET is durable here: later deliveries of it are duplicates. */
  async commit(iss: string, jti: string): Promise<void> {
    await this.redis.set(
      this.keys.upstreams.seen(replayKeyOf(iss, jti)),
      'done',
      'PX',
      this.retentionMs,
    )
  }

  async forget(key: string): Promise<void> {
    await this.redis.del(this.keys.upstreams.seen(key))
  }
}
