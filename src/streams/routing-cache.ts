/**
 * This process's copy of every stream record, indexed by event type, so that fan-out and delivery route
 * without a Redis read per event. It is exactly as fresh as the caller asks: `syncTo(v)` applies every
 * change up to routing version v (read from Redis after the event was made durable), so a stream created,
 * changed or deleted through any process is in effect for every event acknowledged after that change's
 * response. Changes come from the store's change log; a process too far behind reloads everything.
 */
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import type { Logger } from '../lib/log.js'
import type { StreamRecord } from './model.js'
import type { StreamStore } from './store.js'

export class RoutingCache {
  #byId = new Map<string, StreamRecord>()
  #byType = new Map<string, Map<string, StreamRecord>>()
  #version = -1
  #applying: Promise<void> = Promise.resolve()
  #subscriber: Redis | undefined
  /** The version read in flight, and the one queued behind it (callers share reads issued after their call). */
  #reading: Promise<void> | undefined
  #nextRead: Promise<void> | undefined

  constructor(
    private readonly redis: Redis,
    private readonly ks: Keyspace,
    private readonly store: StreamStore,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.#reload()
    // Changes are also pushed, so an idle process stays current without waiting for its next event.
    this.#subscriber = this.redis.duplicate()
    this.#subscriber.on('error', () => {})
    this.#subscriber.on('message', (_channel: string, message: string) => {
      const v = Number(message)
      if (v > this.#version)
        this.syncTo(v).catch((err: unknown) =>
          this.log.warn('routing cache refresh failed', { error: String(err) }),
        )
    })
    await this.#subscriber.subscribe(this.ks.channels.routing)
  }

  stop(): void {
    this.#subscriber?.disconnect()
  }

  get version(): number {
    return this.#version
  }

  /**
   * Brings the cache to the routing version current at the time of the call. Concurrent callers share
   * one read: a caller arriving while a read is in flight waits for the next one (which starts after its
   * call), so at most two reads are in flight however many drains ask.
   */
  sync(): Promise<void> {
    if (!this.#reading) return (this.#reading = this.#read())
    // Runs after the read in flight whether it succeeded or failed (a failed one must not fail the next).
    const next = () => {
      this.#nextRead = undefined
      return (this.#reading = this.#read())
    }
    return (this.#nextRead ??= this.#reading.then(next, next))
  }

  async #read(): Promise<void> {
    try {
      await this.syncTo(await this.store.version())
    } finally {
      this.#reading = undefined
    }
  }

  /** Brings the cache to at least routing version `v` (no Redis call when it is there already). */
  async syncTo(v: number): Promise<void> {
    if (v <= this.#version) return
    // One change set applied at a time, in order; a caller waits for the one that covers its version.
    const run = this.#applying.then(async () => {
      if (v <= this.#version) return
      const { version, sids, complete } = await this.store.changesSince(this.#version)
      if (!complete) return this.#reload()
      const records = await this.store.getMany(sids)
      sids.forEach((sid, i) => this.#put(sid, records[i]))
      this.#version = Math.max(this.#version, version)
    })
    this.#applying = run.catch(() => {})
    await run
  }

  get(sid: string): StreamRecord | undefined {
    return this.#byId.get(sid)
  }

  /** Streams whose events_delivered holds this type, disabled ones included (callers apply the status). */
  forType(type: string): Iterable<StreamRecord> {
    return this.#byType.get(type)?.values() ?? []
  }

  get size(): number {
    return this.#byId.size
  }

  async #reload(): Promise<void> {
    const version = await this.store.version()
    const byId = new Map<string, StreamRecord>()
    for await (const page of this.store.all()) for (const s of page) byId.set(s.stream_id, s)
    this.#byId = new Map()
    this.#byType = new Map()
    for (const [sid, record] of byId) this.#put(sid, record)
    this.#version = version
  }

  #put(sid: string, record: StreamRecord | undefined): void {
    const previous = this.#byId.get(sid)
    if (previous) for (const type of previous.events_delivered) this.#byType.get(type)?.delete(sid)
    if (!record) {
      this.#byId.delete(sid)
      return
    }
    this.#byId.set(sid, record)
    for (const type of record.events_delivered) {
      let m = this.#byType.get(type)
      if (!m) this.#byType.set(type, (m = new Map()))
      m.set(sid, record)
    }
  }
}
