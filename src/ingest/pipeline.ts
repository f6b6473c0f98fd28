/**
 * The ingest pipeline: validated events → durable (one script call on an ingest partition) → 202 →
 * fan-out at once in this process. Entries whose process died before finishing are taken over by any
 * process after SSF_BROKER_LEASE_MS (ingest-log.ts). Used by `POST /events` and by the broker itself
 * (agent retirement notices, upstream transmitters).
 */
import { randomUUID } from 'node:crypto'
import { randomIds } from '../lib/ids.js'
import type { Logger } from '../lib/log.js'
import type { Activity } from '../observe/activity.js'
import type { StreamStore } from '../streams/store.js'
import type { RoutingCache } from '../streams/routing-cache.js'
import type { FanOut, IngestedEvent, Prefetched } from './fan-out.js'
import type { IngestLog, LogEntry } from './ingest-log.js'
import type { ValidEvent } from './validate.js'

/** A group consumer idle this long and holding nothing is a stopped process's: it is removed. */
const CONSUMER_IDLE_MS = 10 * 60_000
const PRUNE_EVERY_MS = 60_000

export interface EventAcceptor {
  /** Makes the events durable (resolves only then) and starts their fan-out; returns them with their txn. */
  accept(events: readonly ValidEvent[], clientId: string): Promise<IngestedEvent[]>
}

export class IngestPipeline implements EventAcceptor {
  #inFlight = new Map<string, { entry: LogEntry; done: Promise<void> }>()
  #timers: NodeJS.Timeout[] = []
  #stopped = false

  constructor(
    private readonly log: IngestLog,
    private readonly store: StreamStore,
    private readonly routing: RoutingCache,
    private readonly fanOut: FanOut,
    private readonly logger: Logger,
    private readonly activity: Activity,
    private readonly leaseMs: number,
  ) {}

  async accept(events: readonly ValidEvent[], clientId: string): Promise<IngestedEvent[]> {
    const now = Date.now()
    const seconds = Math.floor(now / 1000)
    const ids = randomIds(events.length)
    const list: IngestedEvent[] = events.map((e, i) => ({
      id: ids[i]!,
      seq: i,
      type: e.type,
      subject: e.subject,
      sk: e.sk,
      // CAEP receivers read event_timestamp; when the emitter gave none, the ingest time is the closest
      // truth the broker has (never earlier than the real event).
      event:
        e.family === 'caep' && e.event.event_timestamp === undefined
          ? { ...e.event, event_timestamp: seconds }
          : e.event,
      txn: e.txn ?? randomUUID(),
      received_at: now,
      client_id: clientId,
    }))
    // The first chunk's reads go out with the append (one round trip, not two, before the fan-out signs).
    const prefetched = this.fanOut.prefetch(list)
    // The routing version is read together with the append: the fan-out routes with every stream change
    // whose response came before this request.
    const [{ entry, extra }, version] = await Promise.all([
      this.log.append(JSON.stringify(list)),
      this.store.version(),
    ])
    const at = Date.now()
    for (const e of list)
      this.activity.emit('ingested', { txn: e.txn, type: e.type, event_id: e.id, at })
    // This request's events are fanned out as they are (not parsed back from the entry's payload).
    this.#run(entry, version, list, prefetched)
    for (const e of extra) this.#run(e, version)
    return list
  }

  start(): void {
    // Entries of a process that died: idle for a lease, then anyone's.
    this.#timers.push(
      setInterval(() => void this.#reclaim(), Math.max(100, Math.floor(this.leaseMs / 2))),
    )
    this.#timers.push(
      setInterval(() => void this.#keepAlive(), Math.max(100, Math.floor(this.leaseMs / 3))),
    )
    // Consumers of processes gone for a while (their entries taken over long since) leave the group.
    const prune = setInterval(
      () => void this.log.pruneConsumers(CONSUMER_IDLE_MS).catch(() => {}),
      PRUNE_EVERY_MS,
    )
    prune.unref()
    this.#timers.push(prune)
  }

  /** Stops taking over work and waits (at most `graceMs`) for fan-outs in flight; the rest is taken over later. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopped = true
    for (const t of this.#timers) clearInterval(t)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.#inFlight.values()].map((f) => f.done)),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ])
    clearTimeout(timer)
  }

  #run(entry: LogEntry, version: number, events?: IngestedEvent[], prefetched?: Prefetched): void {
    const key = `${entry.partition}/${entry.id}`
    if (this.#inFlight.has(key)) return
    const done = (async () => {
      try {
        await this.routing.syncTo(version)
        await this.fanOut.run(events ?? (JSON.parse(entry.payload) as IngestedEvent[]), prefetched)
        await this.log.complete([entry])
      } catch (err) {
        // Left pending: taken over (by this process too) once idle for a lease, with the same jtis.
        this.logger.warn('fan-out failed; retried after the lease', {
          partition: entry.partition,
          entry: entry.id,
          error: String(err),
        })
      } finally {
        this.#inFlight.delete(key)
      }
    })()
    this.#inFlight.set(key, { entry, done })
  }

  async #reclaim(): Promise<void> {
    if (this.#stopped) return
    try {
      const entries = (await this.log.reclaim(this.leaseMs, 20)).filter(
        (e) => !this.#inFlight.has(`${e.partition}/${e.id}`),
      )
      if (entries.length === 0) return
      const version = await this.store.version()
      this.logger.info('taking over ingest entries of a stopped process', {
        entries: entries.length,
      })
      for (const e of entries) this.#run(e, version)
    } catch (err) {
      this.logger.debug('ingest takeover check failed', { error: String(err) })
    }
  }

  async #keepAlive(): Promise<void> {
    const entries = [...this.#inFlight.values()].map((f) => f.entry)
    if (entries.length > 0) await this.log.keepAlive(entries).catch(() => {})
  }
}
