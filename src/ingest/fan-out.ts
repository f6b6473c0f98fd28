/**
 * Fan-out: one ingested event becomes one SET per stream that delivers its type (SSF §4.1, §8.1.1),
 * routed from this process's routing cache (no Redis read per stream) and the subject index.
 *
 * A request's events are handled in chunks, one chunk of a request at a time (so a stream's SETs keep
 * the request's order), and chunks of different requests share a fair limiter: a chunk holding a
 * priority event type goes first (a revocation posted during a flood is signed and queued at once), then
 * the chunk whose streams have the fewest chunks running (a flood for one stream does not hold back
 * another's events), then the request that has had the fewest chunks started. Each stream's SETs of a
 * chunk are appended in one script call as soon as the last of them is signed, so delivery to the first
 * streams overlaps signing for the rest.
 *
 * Cascade: an event about a principal whose type the cascade policy names (agents/cascade-policy.ts) also
 * becomes one derived event per agent acting for that principal, down the whole delegation chain: same
 * `txn`, `sub_id` naming the agent, the delegation path as an `act` chain in the payload. Derived events
 * are routed exactly like posted ones.
 *
 * A stream receives an event when it delivers the event's type and its subjects admit the event's
 * subject: on a default_subjects ALL stream unless the receiver removed a matching subject, on a NONE
 * stream only if it added one (see subjects/index-store.ts).
 */
import type { KeyStore } from '../keys/keystore.js'
import { signSet } from '../keys/sign-set.js'
import { isPush, type StreamRecord } from '../streams/model.js'
import type { RoutingCache } from '../streams/routing-cache.js'
import { deliverableLanes, queuesSets } from '../streams/delivery-policy.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import type { Subject } from '../subjects/subject.js'
import type { Appended, Outbox, OutboxItem } from '../delivery/outbox.js'
import { deriveJti, sha256Hex } from '../lib/ids.js'
import { subjectKey } from '../subjects/subject.js'
import { cascadeFor, cascadePayload, type CascadePolicy } from '../agents/cascade-policy.js'
import { dependentSubId } from '../agents/subjects.js'
import type { AgentRegistry } from '../agents/registry.js'
import type { AuditEntryInput, AuditLog } from '../audit/log.js'
import type { Logger } from '../lib/log.js'
import type { Activity } from '../observe/activity.js'
import type { FairLimiter } from './fair-limiter.js'
import { BEHIND_SETS, StreamsBehind } from './streams-behind.js'

export interface IngestedEvent {
  /** Broker-assigned id; with the stream id it determines each SET's `jti`. */
  id: string
  /** Position in its request: the order of its SETs on every stream. */
  seq: number
  type: string
  subject: Subject
  /** Canonical subject key (see subjects/subject.ts). */
  sk: string
  event: Record<string, unknown>
  txn: string
  /** When the event was accepted (ms): delivery latency and maximum age count from here. */
  received_at: number
  client_id: string
}

export interface FanOutDeps {
  issuer: string
  keys: KeyStore
  routing: RoutingCache
  outbox: Outbox
  subjects: SubjectIndex
  limiter: FairLimiter
  priorityTypes: ReadonlySet<string>
  log: Logger
  activity: Activity
  cascade?: { agents: AgentRegistry; policy: CascadePolicy }
  audit?: AuditLog
  /** The stream gets new SETs once `appending` resolves: schedule its delivery (a claim may go ahead of it). */
  queued(stream: StreamRecord, appending: Promise<Appended>): Promise<void>
  /** Removes the keys of a stream deleted meanwhile (streams/lifecycle.ts `purge`). */
  purge?(sid: string): Promise<void>
}

/** Events per chunk; the limiter counts events, so a full chunk weighs this much and one event 1. */
export const CHUNK = 64
/**
 * Signing is synchronous: a chunk's SETs are signed in slices of this many, with a turn of the event loop
 * between slices, so the first streams' appends (and pushes) go out while the rest are signed, and one
 * large fan-out does not hold up other requests and deliveries for its whole length.
 */
const SIGN_SLICE = 32

/** Stream ids whose subject lists name each event's subject (SubjectIndex.matchAll), per event looked up. */
type Listed = Map<IngestedEvent, Set<string>>

/**
 * The Redis reads of a request's first chunk, started while its events are made durable (prefetch), so
 * that they share that round trip instead of following it.
 */
export interface Prefetched {
  /** Subject lookups of the events some stream received when the prefetch started. */
  listed: Promise<Listed>
  /** The cascade: the events derived for the agents acting for the events' principals. */
  derived: Promise<Derived>
  /** Subject lookups of the derived events, as `listed`. */
  derivedListed: Promise<Listed>
}

interface Derived {
  events: IngestedEvent[]
  audit: AuditEntryInput[]
}

export class FanOut {
  /** Per subject key, the chunk (of any request) holding its latest event not yet queued. */
  readonly #pendingBySubject = new Map<string, Promise<void>>()
  readonly #behind = new StreamsBehind()
  /** Per flow, the events of requests accepted here whose chunks are not done yet. */
  readonly #waiting = new Map<string, number>()

  constructor(private readonly d: FanOutDeps) {}

  /**
   * Mints and queues the SETs of one request's events. Chunks are registered at once, in acceptance
   * order: a chunk waits for the chunks of earlier requests that hold an event about one of its subjects,
   * so a priority event never overtakes an earlier-acknowledged event about the same subject.
   */
  async run(posted: readonly IngestedEvent[], prefetched?: Prefetched): Promise<void> {
    const job = {}
    const chunks: {
      events: IngestedEvent[]
      pre: Prefetched | undefined
      flow: string
      after: Promise<void>[]
      done: () => void
    }[] = []
    for (let i = 0; i < posted.length; i += CHUNK) {
      const events = posted.slice(i, i + CHUNK)
      const pre = i === 0 ? prefetched : undefined
      let done!: () => void
      const queued = new Promise<void>((resolve) => (done = resolve))
      const after = new Set<Promise<void>>()
      for (const e of events) {
        const earlier = this.#pendingBySubject.get(e.sk)
        // Not its own chunk; an earlier chunk of this request is done by then anyway (they run in order).
        if (earlier && earlier !== queued) after.add(earlier)
        this.#pendingBySubject.set(e.sk, queued)
      }
      // The limiter's fairness key, and what admission control counts (busy), as routed now.
      const flow = this.#flow(events)
      this.#waiting.set(flow, (this.#waiting.get(flow) ?? 0) + events.length)
      let counted = true
      chunks.push({
        events,
        pre,
        flow,
        after: [...after],
        done: () => {
          for (const e of events)
            if (this.#pendingBySubject.get(e.sk) === queued) this.#pendingBySubject.delete(e.sk)
          done()
          if (!counted) return
          counted = false
          const left = this.#waiting.get(flow)! - events.length
          if (left > 0) this.#waiting.set(flow, left)
          else this.#waiting.delete(flow)
        },
      })
    }
    try {
      for (const chunk of chunks) {
        const priority = chunk.events.some((e) => this.d.priorityTypes.has(e.type))
        await Promise.all(chunk.after)
        await this.d.limiter.run(
          job,
          chunk.flow,
          priority,
          () => this.#chunk(chunk.events, chunk.pre),
          chunk.events.length,
        )
        chunk.done()
      }
    } finally {
      // A failed request (retried later) must not hold back later ones.
      for (const chunk of chunks) chunk.done()
    }
  }

  /**
   * Starts the Redis reads of the first chunk of a request about to be accepted: the subject lookups and
   * the cascade's agent walk, which then share a round trip with the ingest append. Reading before the
   * 202 keeps routing exact: any subject or agent change whose response came before the request is read.
   * The chunk looks up anything routed only by then (routing is filtered with this process's cache as it
   * is now, possibly older than the version the chunk routes with).
   */
  prefetch(posted: readonly IngestedEvent[]): Prefetched {
    const first = posted.slice(0, CHUNK)
    const lookUp = (list: readonly IngestedEvent[]) =>
      this.#lookUp(list.filter((e) => this.#receivable(e.type)))
    const derived = this.#derive(first)
    const prefetched = {
      listed: lookUp(first),
      derived,
      derivedListed: derived.then((d) => lookUp(d.events)),
    }
    // Awaited by the chunk; a failure there fails the chunk (retried after the lease), as its own reads would.
    for (const p of Object.values(prefetched)) (p as Promise<unknown>).catch(() => {})
    return prefetched
  }

  /** The subject lookups of these events (each index term read once). */
  async #lookUp(events: readonly IngestedEvent[]): Promise<Listed> {
    const found = await this.d.subjects.matchAll(events.map((e) => e.subject))
    return new Map(events.map((e, i) => [e, found[i]!]))
  }

  /** Whether some stream that queues SETs receives this event type (routing cache, no Redis). */
  #receivable(type: string): boolean {
    for (const s of this.d.routing.forType(type)) if (queuesSets(s.status)) return true
    return false
  }

  /**
   * Whether events of these types (URIs) would add to work this process is far behind on: BEHIND_SETS or
   * more events of their flow wait here to be fanned out, or one of their push streams held BEHIND_SETS or
   * more SETs at its last append here (streams-behind.ts). Admission control refuses such normal-priority
   * requests while the broker is at capacity; a request for streams that keep up is still taken.
   */
  busy(types: Iterable<string>): boolean {
    const sids = this.#streamsOf(types)
    if ((this.#waiting.get(sids.join(' ')) ?? 0) >= BEHIND_SETS) return true
    return sids.some((sid) => this.#behind.has(sid))
  }

  /**
   * Where a chunk's work goes, for the limiter's fairness: the streams its event types route to (before
   * subjects are looked at; read from the routing cache, no Redis). A flood for one stream then shares
   * the fan-out with every other stream's events instead of going ahead of them.
   */
  #flow(events: readonly IngestedEvent[]): string {
    return this.#streamsOf(events.map((e) => e.type)).join(' ')
  }

  /** The ids of the streams event types route to, sorted. */
  #streamsOf(types: Iterable<string>): string[] {
    const sids = new Set<string>()
    for (const type of new Set(types))
      for (const s of this.d.routing.forType(type)) sids.add(s.stream_id)
    return [...sids].sort()
  }

  /** Streams deleted while a chunk was routed: their deletion may have purged before its appends. */
  async #purgeIfDeleted(sids: readonly string[]): Promise<void> {
    try {
      await this.d.routing.sync()
      for (const sid of sids) if (!this.d.routing.get(sid)) await this.d.purge?.(sid)
    } catch (err) {
      this.d.log.debug('checking streams after queueing failed', {
        streams: sids.length,
        error: String(err),
      })
    }
  }

  /** The events derived for every agent acting for each event's principal (none without a policy match). */
  async #derive(events: readonly IngestedEvent[]): Promise<Derived> {
    const audit: AuditEntryInput[] = []
    const cascade = this.d.cascade
    if (!cascade) return { events: [], audit }
    const causes = events.flatMap((event) => {
      const rule = cascadeFor(event.type, event.event, cascade.policy)
      return rule ? [{ event, rule }] : []
    })
    // One graph walk per cause, all in flight at once (auto-pipelined), in the events' order afterwards.
    const found = await Promise.all(
      causes.map(({ event }) => cascade.agents.dependents(event.subject)),
    )
    const derived: IngestedEvent[] = []
    causes.forEach(({ event, rule }, i) => {
      for (const dependent of found[i]!) {
        const subject = dependentSubId(event.subject, dependent.record.agent, {
          principalIsAgent: dependent.principalIsAgent,
        })
        derived.push({
          ...event,
          // Stable per (event, agent), so a re-run repeats the same jtis.
          id: sha256Hex(`${event.id}\0agent\0${dependent.agent_id}`).slice(0, 32),
          type: rule.type,
          subject,
          sk: subjectKey(subject),
          event: cascadePayload(event.type, event.event, rule.type, dependent.path),
        })
        audit.push({
          kind: 'event.derived',
          txn: event.txn,
          type: rule.type,
          source_type: event.type,
          agent_id: dependent.agent_id,
          subject,
          principal: event.subject,
          path: dependent.path,
          cause_event_id: event.id,
        })
      }
    })
    return { events: derived, audit }
  }

  async #chunk(posted: readonly IngestedEvent[], pre?: Prefetched): Promise<void> {
    // The routing version this chunk is routed with (the caller synced to at least the ingest's version).
    const version = this.d.routing.version
    const audit: AuditEntryInput[] = []
    const byType = new Map<string, StreamRecord[]>()
    const streamsFor = (type: string) => {
      let list = byType.get(type)
      if (!list)
        byType.set(
          type,
          (list = [...this.d.routing.forType(type)].filter((s) => queuesSets(s.status))),
        )
      return list
    }
    // Subject lookups only for events some stream could receive (those prefetched are not read again);
    // each index term read once per list.
    const lookUp = async (list: readonly IngestedEvent[], prefetched?: Promise<Listed>) => {
      const known = prefetched ? await prefetched : new Map<IngestedEvent, Set<string>>()
      const found = await this.#lookUp(
        list.filter((e) => streamsFor(e.type).length > 0 && !known.has(e)),
      )
      return list.map((e) => known.get(e) ?? found.get(e) ?? new Set<string>())
    }
    // The posted events' lookups run while the cascade finds the agents acting for their subjects.
    const [, postedListed, derivation] = await Promise.all([
      this.d.keys.refresh(),
      lookUp(posted, pre?.listed),
      pre?.derived ?? this.#derive(posted),
    ])
    const derived = derivation.events
    audit.push(...derivation.audit)
    const events = [...posted, ...derived]
    const listed = [...postedListed, ...(await lookUp(derived, pre?.derivedListed))]
    const candidates = events.map((e) => streamsFor(e.type))
    const work: { event: IngestedEvent; stream: StreamRecord; order: number }[] = []
    events.forEach((event, i) => {
      for (const stream of candidates[i]!) {
        const has = listed[i]!.has(stream.stream_id)
        if (stream.default_subjects === 'NONE' ? has : !has) work.push({ event, stream, order: i })
      }
    })
    if (work.length === 0) {
      if (audit.length > 0) this.d.audit?.submit(audit)
      return
    }

    const unsigned = new Map<string, number>()
    for (const { stream } of work)
      unsigned.set(stream.stream_id, (unsigned.get(stream.stream_id) ?? 0) + 1)
    const perStream = new Map<string, { order: number; item: OutboxItem }[]>()
    const appends: Promise<void>[] = []
    let failure: unknown
    const append = async (stream: StreamRecord, signed: { order: number; item: OutboxItem }[]) => {
      const items = signed.sort((a, b) => a.order - b.order).map((s) => s.item)
      const sid = stream.stream_id
      const appending = this.d.outbox.append(sid, items)
      // A paused stream holds them until it is enabled again (which schedules it).
      const scheduled = deliverableLanes(stream.status).includes('n')
        ? this.d.queued(stream, appending)
        : undefined
      // Handled at once (a rejection left waiting would crash the process); awaited below.
      scheduled?.catch(() => {})
      const { dropped, droppedJtis, held } = await appending
      const now = Date.now()
      if (isPush(stream) && stream.status === 'enabled') this.#behind.note(sid, held, now)
      else this.#behind.forget(sid)
      // The trail holds one record per SET outcome (delivery.attempt, poll.ack, ...; each with the time
      // the SET was queued), not one per SET minted: a minted SET costs no audit record of its own.
      if (dropped > 0) {
        this.d.log.warn('stream backlog bound reached; oldest SETs dropped', {
          stream_id: sid,
          dropped,
        })
        this.d.audit?.submit({
          kind: 'stream.backlog_dropped',
          stream_id: sid,
          count: dropped,
          jtis: droppedJtis,
        })
        this.d.activity.emit('dropped', { stream_id: sid, count: dropped, at: now })
      }
      for (const item of items)
        this.d.activity.emit('minted', {
          txn: item.txn,
          stream_id: sid,
          jti: item.jti,
          type: item.type,
          at: now,
          priority: item.lane === 'p',
        })
      await scheduled
    }
    for (const [i, { event, stream, order }] of work.entries()) {
      if (i > 0 && i % SIGN_SLICE === 0) await new Promise((r) => setImmediate(r))
      const jti = deriveJti(event.id, stream.stream_id)
      const set = await signSet(this.d.keys, stream.signing_alg, {
        iss: this.d.issuer,
        aud: stream.aud,
        jti,
        txn: event.txn,
        sub_id: event.subject,
        eventType: event.type,
        event: event.event,
      })
      let signed = perStream.get(stream.stream_id)
      if (!signed) perStream.set(stream.stream_id, (signed = []))
      const lane = this.d.priorityTypes.has(event.type) ? 'p' : 'n'
      signed.push({
        order,
        item: {
          jti,
          set,
          sk: event.sk,
          txn: event.txn,
          type: event.type,
          lane,
          at: event.received_at,
          v: version,
        },
      })
      const left = unsigned.get(stream.stream_id)! - 1
      unsigned.set(stream.stream_id, left)
      // Handled at once (a rejection left waiting would crash the process); rethrown below so the
      // ingest entry stays pending and is run again, which repeats the same jtis.
      if (left === 0)
        appends.push(append(stream, signed).catch((err: unknown) => void (failure ??= err)))
    }
    await Promise.all(appends)
    // A stream deleted while this chunk was routed has its keys removed again, once for the whole chunk
    // (one routing read). Off the chunk's path (later chunks about its subjects wait for this one); a
    // failed check must not run the chunk again (that would queue its SETs twice).
    void this.#purgeIfDeleted([...perStream.keys()])
    if (failure !== undefined) throw failure
    if (audit.length > 0) this.d.audit?.submit(audit)
  }
}
