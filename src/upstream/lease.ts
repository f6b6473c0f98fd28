/**
 * One poll loop per upstream across all broker processes: a process polls an upstream only while it
 * holds that upstream's lease (SET NX PX), renewed well within its duration. A process that dies stops
 * renewing; its lease runs out and another process acquires it at its next attempt.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Redis } from 'ioredis'
import { defineScripts } from '../redis/scripts.js'
import type { Keyspace } from '../redis/keyspace.js'

const SCRIPTS = {
  upstreamLeaseRenew: {
    file: new URL('./scripts/lease-renew.lua', import.meta.url),
    numberOfKeys: 1,
  },
  upstreamLeaseRelease: {
    file: new URL('./scripts/lease-release.lua', import.meta.url),
    numberOfKeys: 1,
  },
}

export class UpstreamLeases {
  /** This process's holder id (host, pid and a random part: unique even across restarts). */
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  readonly #redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>

  constructor(
    redis: Redis,
    private readonly keys: Keyspace,
    readonly durationMs: number,
  ) {
    this.#redis = defineScripts(redis, SCRIPTS)
  }

  async acquire(id: string): Promise<boolean> {
    return (
      (await this.#redis.set(
        this.keys.upstreams.lease(id),
        this.holder,
        'PX',
        this.durationMs,
        'NX',
      )) === 'OK'
    )
  }

  async renew(id: string): Promise<boolean> {
    return (
      (await this.#redis.upstreamLeaseRenew(
        this.keys.upstreams.lease(id),
        this.holder,
        this.durationMs,
      )) === 1
    )
  }

  async release(id: string): Promise<void> {
    await this.#redis.upstreamLeaseRelease(this.keys.upstreams.lease(id), this.holder)
  }

  async holderOf(id: string): Promise<string | undefined> {
    return (await this.#redis.get(this.keys.upstreams.lease(id))) ?? undefined
  }
}
