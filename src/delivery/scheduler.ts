/**
 * Which push streams are due, and who delivers each: streams are spread over SCHED_SHARDS scheduling
 * shards (one Redis Cluster slot each). A shard's `ready` zset holds each due stream with the time it is
 * due; while a process holds a stream's lease the score is the lease expiry, so a crashed holder's
 * streams fall due again on their own after SSF_BROKER_LEASE_MS. A process that appends SETs to a stream
 * nobody holds claims it on the spot (no wake-up round trip); a held stream is marked dirty instead, and
 * its holder looks again before letting go.
 *
 * Marks made in one tick, and releases made in one turn of the event loop, go to Redis as one script call
 * per shard (lib/turn-batch.ts): a fan-out to many streams, or many drains going idle together, costs a
 * few calls.
 */
import type { Redis } from 'ioredis'
import { SCHED_SHARDS, schedShardOf, type Keyspace } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import { TurnBatch } from '../lib/turn-batch.js'

const SCRIPTS = {
  ssfSchedMark: { file: new URL('./scripts/sched-mark.lua', import.meta.url), numberOfKeys: 3 },
  ssfSchedClaim: { file: new URL('./scripts/sched-claim.lua', import.meta.url), numberOfKeys: 3 },
  ssfSchedRenew: { file: new URL('./scripts/sched-renew.lua', import.meta.url), numberOfKeys: 2 },
  ssfSchedRelease: {
    file: new URL('./scripts/sched-release.lua', import.meta.url),
    numberOfKeys: 3,
  },
}

export type MarkResult = 'held' | 'busy' | 'waiting' | 'claimed' | 'due'

/** One stream's mark: sid, owner ('' = none), lease ms, flags (see sched-mark.lua). */
type MarkArgs = [string, string, number, string]
/** One stream's release: sid, owner, mode, due ms. */
type ReleaseArgs = [string, string, string, number]

export class Scheduler {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>
  readonly #marks: TurnBatch<number, MarkArgs, MarkResult>
  readonly #releases: TurnBatch<number, ReleaseArgs, number>

  constructor(
    redis: Redis,
    private readonly ks: Keyspace,
  ) {
    this.redis = defineScripts(redis, SCRIPTS)
    this.#marks = new TurnBatch(
      async (shard, calls) =>
        (await this.redis.ssfSchedMark(
          ...this.#keys(shard),
          Date.now(),
          ...calls.flat(),
        )) as MarkResult[],
      // A mark goes out with the append it accompanies; a release waits for the others of its turn.
      'tick',
    )
    this.#releases = new TurnBatch(
      async (shard, calls) =>
        ((await this.redis.ssfSchedRelease(...this.#keys(shard), ...calls.flat())) as number[]).map(
          Number,
        ),
      'turn',
    )
  }

  #keys(shard: number): [string, string, string] {
    return [this.ks.sched.ready(shard), this.ks.sched.lease(shard), this.ks.sched.dirty(shard)]
  }

  /**
   * The stream got SETs: claim it for `owner` if nobody holds it (owner undefined: only mark it due).
   * `claimOnly`: the SETs are not in yet, so change nothing unless the claim succeeds ('busy' if held).
   */
  async markDue(
    sid: string,
    owner: string | undefined,
    leaseMs: number,
    endBackoff = false,
    claimOnly = false,
  ): Promise<MarkResult> {
    const flags = `${endBackoff ? 'e' : ''}${claimOnly ? 'o' : ''}`
    return this.#marks.call(schedShardOf(sid), [sid, owner ?? '', leaseMs, flags])
  }

  /** Claims up to `max` due streams of one shard; also says when its next stream falls due. */
  async claim(
    shard: number,
    owner: string,
    leaseMs: number,
    max: number,
  ): Promise<{ sids: string[]; nextDue: number | undefined }> {
    const [next, ...sids] = (await this.redis.ssfSchedClaim(
      ...this.#keys(shard),
      Date.now(),
      leaseMs,
      owner,
      max,
    )) as [string, ...string[]]
    return { sids, nextDue: next === '-1' ? undefined : Number(next) }
  }

  /** Renews leases; returns the streams still held. */
  async renew(owner: string, leaseMs: number, sids: readonly string[]): Promise<Set<string>> {
    const byShard = new Map<number, string[]>()
    for (const sid of sids) {
      const shard = schedShardOf(sid)
      byShard.set(shard, [...(byShard.get(shard) ?? []), sid])
    }
    const until = Date.now() + leaseMs
    const held = await Promise.all(
      [...byShard].map(
        ([shard, list]) =>
          this.redis.ssfSchedRenew(
            this.ks.sched.ready(shard),
            this.ks.sched.lease(shard),
            until,
            owner,
            ...list,
          ) as Promise<string[]>,
      ),
    )
    return new Set(held.flat())
  }

  /** 'idle': let go unless SETs came meanwhile ('more'); 'backoff': due again at `dueAt`; 'drop': forget it. */
  async release(
    sid: string,
    owner: string,
    mode: 'idle' | 'backoff' | 'drop',
    dueAt = Date.now(),
  ): Promise<'released' | 'more' | 'lost'> {
    const result = await this.#releases.call(schedShardOf(sid), [sid, owner, mode, dueAt])
    return result === 2 ? 'more' : result === 1 ? 'released' : 'lost'
  }

  /** Takes a stream out of scheduling, whoever holds it (it polls now, or is gone). */
  async forget(sid: string): Promise<void> {
    const [ready, lease, dirty] = this.#keys(schedShardOf(sid))
    await this.redis.multi().zrem(ready, sid).hdel(lease, sid).srem(dirty, sid).exec()
  }

  readonly shards = SCHED_SHARDS
}
