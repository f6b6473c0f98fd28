/**
 * Fan-out: one ingested event becomes one SET per stream that delivers its type (SSF §4.1, §8.1.1).
 * Signatures are kept many in flight (jose signs through WebCrypto off the main thread), then each
 * stream's SETs are appended to its outbox in one script call.
 *
 * Cascade: an event about a principal whose type the cascade policy names (agents/cascade-policy.ts) also
 * becomes one derived event per agent acting for that principal, down the whole delegation chain: same
 * `txn` and sequence, `sub_id` naming the agent, the delegation path as an `act` chain in the payload.
 * Derived events are routed exactly like posted ones.
 *
 * A stream receives an event when it delivers the event's type and its subjects admit the event's
 * subject: on a default_subjects ALL stream unless the receiver removed a matching subject, on a NONE
 * stream only if it added one (see subjects/index-store.ts).
 */
import type { Activity } from '../observe/activity.js'
import type { KeyStore } from '../keys/keystore.js'
import { signSet } from '../keys/sign-set.js'
import type { StreamStore } from '../streams/store.js'
import { isPush, type StreamRecord } from '../streams/model.js'
import type { SubjectIndex } from '../subjects/index-store.js'
import type { Subject } from '../subjects/subject.js'
import type { Outbox, OutboxItem } from '../delivery/outbox.js'
import { deriveJti, sha256Hex } from '../lib/ids.js'
import { subjectKey } from '../subjects/subject.js'
import { cascadeFor, cascadePayload, type CascadePolicy } from '../agents/cascade-policy.js'
import { dependentSubId } from '../agents/subjects.js'
import type { AgentRegistry } from '../agents/registry.js'
import type { AuditEntryInput, AuditLog } from '../audit/log.js'
import type { Logger } from '../lib/log.js'

export interface IngestedEvent {
  /** Broker-assigned id; with the stream id it determines each SET's `jti`. */
  id: string
  /** Ingest order, across all broker processes: the delivery order of a stream's SETs. */
  seq: number
  type: string
  subject: Subject
  /** Canonical subject key (see subjects/subject.ts). */
  sk: string
  event: Record<string, unknown>
  txn: string
  received_at: number
  client_id: string
}

const SIGNING_IN_FLIGHT = 256

async function mapLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

export class FanOut {
  constructor(
    private readonly issuer: string,
    private readonly keys: KeyStore,
    private readonly streams: StreamStore,
    private readonly outbox: Outbox,
    private readonly subjects: SubjectIndex,
    private readonly log: Logger,
    private readonly cascade?: { agents: AgentRegistry; policy: CascadePolicy },
    private readonly audit?: AuditLog,
    /** Wakes this process's push dispatcher (other processes are told once, by the caller, at the end). */
    private readonly wakeLocal?: () => void,
    private readonly activity?: Activity,
  ) {}

  /** The events derived for every agent acting for each event's principal (none without a policy match). */
  async #derive(events: readonly IngestedEvent[], audit: AuditEntryInput[]): Promise<IngestedEvent[]> {
    if (!this.cascade) return []
    const derived: IngestedEvent[] = []
    for (const event of events) {
      const rule = cascadeFor(event.type, event.event, this.cascade.policy)
      if (!rule) continue
      for (const dependent of await this.cascade.agents.dependents(event.subject)) {
        const subject = dependentSubId(event.subject, dependent.record.agent, { principalIsAgent: dependent.principalIsAgent })
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
    }
    return derived
  }

  /** Mints and queues the SETs of a batch of events; reports what became due where. */
  async run(posted: readonly IngestedEvent[]): Promise<{ pushQueued: number; pollStreams: string[] }> {
    await this.keys.refresh()
    const audit: AuditEntryInput[] = []
    const events = [...posted, ...(await this.#derive(posted, audit))]
    const streamsByType = new Map<string, StreamRecord[]>()
    for (const type of new Set(events.map((e) => e.type))) {
      const ids = await this.streams.idsForEvent(type)
      const records = await this.streams.getMany(ids)
      streamsByType.set(type, records.filter((s): s is StreamRecord => s !== undefined && s.status !== 'disabled'))
    }
    const work: { event: IngestedEvent; stream: StreamRecord }[] = []
    // Subject lookups for all events at once: ioredis sends them back to back on one connection.
    const listedPerEvent = await Promise.all(
      events.map((event) => ((streamsByType.get(event.type)?.length ?? 0) > 0 ? this.subjects.matches(event.subject) : new Set<string>())),
    )
    for (const [i, event] of events.entries()) {
      const candidates = streamsByType.get(event.type) ?? []
      const listed = listedPerEvent[i]!
      for (const stream of candidates) {
        const admitted = stream.default_subjects === 'NONE' ? listed.has(stream.stream_id) : !listed.has(stream.stream_id)
        if (admitted) work.push({ event, stream })
      }
    }

    // Each stream's SETs are appended as soon as the last of them is signed, so delivery to the first
    // streams overlaps signing for the rest of a large fan-out or cascade.
    const unsigned = new Map<string, number>()
    for (const { stream } of work) unsigned.set(stream.stream_id, (unsigned.get(stream.stream_id) ?? 0) + 1)
    const perStream = new Map<string, OutboxItem[]>()
    const appends: Promise<void>[] = []
    let failure: unknown
    let pushQueued = 0
    const pollStreams: string[] = []
    const append = async (stream: StreamRecord, items: OutboxItem[]) => {
      const sid = stream.stream_id
      const push = isPush(stream)
      const { added, dropped } = await this.outbox.append(sid, items, push)
      if (push && added > 0) {
        pushQueued += added
        this.wakeLocal?.()
      } else if (added > 0) pollStreams.push(sid)
      if (dropped > 0) this.log.warn('paused stream buffer full; oldest held SETs dropped', { stream_id: sid, dropped })
      if (added > 0 && this.activity?.has('minted')) {
        const at = Date.now()
        for (const item of items.slice(0, added)) this.activity.emit('minted', { txn: item.txn, stream_id: sid, jti: item.jti, type: item.type, at, priority: false })
      }
      for (const item of items) audit.push({ kind: 'set.minted', jti: item.jti, stream_id: sid, aud: stream.aud, txn: item.txn, type: item.type })
    }
    await mapLimited(work, SIGNING_IN_FLIGHT, async ({ event, stream }) => {
      const jti = deriveJti(event.id, stream.stream_id)
      const set = await signSet(this.keys, stream.signing_alg, {
        iss: this.issuer,
        aud: stream.aud,
        jti,
        txn: event.txn,
        sub_id: event.subject,
        eventType: event.type,
        event: event.event,
      })
      let items = perStream.get(stream.stream_id)
      if (!items) perStream.set(stream.stream_id, (items = []))
      items.push({ jti, set, sk: event.sk, seq: event.seq, txn: event.txn, type: event.type, t: event.received_at })
      const left = unsigned.get(stream.stream_id)! - 1
      unsigned.set(stream.stream_id, left)
      // Handled at once (a rejection left waiting would crash the process); rethrown below so the job
      // is retried, which is safe: appends of the same jtis are no-ops.
      if (left === 0) appends.push(append(stream, items).catch((err: unknown) => void (failure ??= err)))
    })
    await Promise.all(appends)
    if (failure !== undefined) throw failure
    if (audit.length > 0) this.audit?.submit(audit)
    return { pushQueued, pollStreams }
  }
}
