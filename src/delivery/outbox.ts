/**
 * Per-stream outbox: the durable queue of SETs waiting for one stream, in three lanes (Redis Streams,
 * all under the stream's own hash tag, so every script here touches one Cluster slot):
 *
 *   control   verification and stream-updated SETs: first, and delivered even while paused (SSF §8.1.4, §8.1.5)
 *   priority  SETs of SSF_BROKER_PRIORITY_EVENT_TYPES: ahead of the normal lane, but never ahead of an
 *             earlier SET about the same subject (the `pending` hash counts queued normal SETs per subject)
 *   normal    everything else, in append order
 *
 * Appends, completions and poll hand-outs are one script call each for a whole batch; no script's work
 * grows with a lane's length (the backlog bound trims only what is over it). Dead letters live in their
 * own slot: a dead letter is written there first, then removed from the lane, so a crash in between
 * leaves a duplicate with the same `jti`, never a loss.
 */
import type { Redis } from 'ioredis'
import type { Keyspace, StreamKeys } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import { randomId } from '../lib/ids.js'

export type Lane = 'c' | 'p' | 'n'

export interface OutboxItem {
  jti: string
  set: string
  /** Subject key: SETs about one subject are sent one after another, in order. */
  sk: string
  txn: string
  type: string
  lane: Lane
  /** When its event was acknowledged to the emitter (ms): delivery latency and maximum age count from here. */
  at: number
  /**
   * The routing version it was minted under: its delivery uses a routing cache at least this fresh, so a
   * stream change acknowledged before the event applies to its SET without a version read per delivery.
   * Unknown (undefined): delivery reads the current version first.
   */
  v?: number
}

/** A queued SET: its lane entry id and its place in the stream's append order. */
export interface QueuedSet extends OutboxItem {
  id: string
  n: number
}

/** What one append did (Outbox.append). */
export interface Appended {
  dropped: number
  droppedJtis: string[]
  /** The SETs as queued, in order. */
  queued: QueuedSet[]
  /** The stream's lanes held nothing before: these SETs are its whole queue (at that moment). */
  wasEmpty: boolean
  /** Some SET awaits a retry, or a run of failures has not ended: delivery starts with one probe. */
  failing: boolean
  /** SETs the stream's lanes hold after this append (the control lane's included). */
  held: number
}

/** The head of a stream's lanes (Outbox.head). */
export interface Head {
  c: QueuedSet[]
  p: QueuedSet[]
  n: QueuedSet[]
  /** For the subjects of the priority SETs read, the normal SETs queued about each (absent: none). */
  pending: Map<string, number>
  /** As in Appended. */
  failing: boolean
}

export interface DeadLetter {
  id: string
  stream_id: string
  jti: string
  txn: string
  type: string
  sk: string
  set: string
  reason: string
  status?: number
  err?: string
  description?: string
  attempts: number
  first_attempt_at?: number
  failed_at: number
  /** When the event was acknowledged (ms). */
  acknowledged_at?: number
}

export interface DeliveryRecord {
  jti: string
  at: number
  outcome: 'delivered' | 'retry' | 'failed' | 'dead_letter' | 'acked' | 'set_error'
  attempt: number
  status?: number
  latency_ms?: number
  error?: string
  /** Receiver-reported description of a poll setErr (RFC 8936), truncated. */
  description?: string
}

export interface Attempts {
  a: number
  f: number
}

const LOG_KEEP = 1000
const LANES: readonly Lane[] = ['c', 'p', 'n']

const SCRIPTS = {
  ssfOutboxAppend: {
    file: new URL('./scripts/outbox-append.lua', import.meta.url),
    numberOfKeys: 7,
  },
  ssfOutboxHead: { file: new URL('./scripts/outbox-head.lua', import.meta.url), numberOfKeys: 6 },
  ssfOutboxComplete: {
    file: new URL('./scripts/outbox-complete.lua', import.meta.url),
    numberOfKeys: 6,
  },
  ssfPollTake: { file: new URL('./scripts/poll-take.lua', import.meta.url), numberOfKeys: 4 },
  ssfPollAck: { file: new URL('./scripts/poll-ack.lua', import.meta.url), numberOfKeys: 6 },
}

/** When a queued SET was appended (ms): the time part of its lane entry id. */
export const queuedAt = (set: QueuedSet): number => Number(set.id.slice(0, set.id.indexOf('-')))

function laneKey(k: StreamKeys, lane: Lane): string {
  return lane === 'c' ? k.control : lane === 'p' ? k.priority : k.lane
}

function parseEntry(lane: Lane, id: string, fields: string[]): QueuedSet {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  const set: QueuedSet = {
    id,
    lane,
    jti: f.j!,
    sk: f.s!,
    txn: f.t!,
    type: f.y!,
    at: Number(f.a),
    n: Number(f.n),
    set: f.d!,
  }
  if (f.v) set.v = Number(f.v)
  return set
}

export class Outbox {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>

  constructor(
    redis: Redis,
    private readonly ks: Keyspace,
    private readonly backlogMax: number,
    private readonly priorityLane = true,
  ) {
    this.redis = defineScripts(redis, SCRIPTS)
  }

  #k(sid: string): StreamKeys {
    return this.ks.stream(sid)
  }

  /**
   * Queues SETs, in the order given. Returns how many old ones the backlog bound dropped (and their first
   * jtis), the SETs as queued (entry ids and order numbers), whether the lanes were empty before (then
   * these are the whole queue) and whether the stream is in a run of failed pushes.
   */
  async append(sid: string, items: readonly OutboxItem[]): Promise<Appended> {
    if (items.length === 0)
      return { dropped: 0, droppedJtis: [], queued: [], wasEmpty: false, failing: false, held: 0 }
    const k = this.#k(sid)
    const args: (string | number)[] = [this.backlogMax, Date.now(), this.priorityLane ? 1 : 0]
    for (const item of items)
      args.push(item.lane, item.jti, item.sk, item.txn, item.type, item.at, item.set, item.v ?? '')
    const [dropped, empty, failing, first, held, ...rest] = (await this.redis.ssfOutboxAppend(
      k.control,
      k.priority,
      k.lane,
      k.pending,
      k.dropped,
      k.attempts,
      k.failingSince,
      ...args,
    )) as [number, number, number, number, number, ...string[]]
    return {
      dropped,
      held,
      droppedJtis: rest.slice(items.length),
      queued: items.map((item, i) => ({ ...item, id: rest[i]!, n: first + i })),
      wasEmpty: empty === 1,
      failing: failing === 1,
    }
  }

  /**
   * The first `count` SETs of each lane asked for, in append order (after the entry ids `after` gives per
   * lane, if any), and for the subjects of the priority SETs among them the number of normal-lane SETs
   * queued about each (`pending`; absent means none), so a priority SET can be kept behind an earlier
   * SET about its subject. One script call.
   */
  async head(
    sid: string,
    lanes: readonly Lane[],
    count: number,
    after: Readonly<Record<Lane, string>> = { c: '-', p: '-', n: '-' },
  ): Promise<Head> {
    const k = this.#k(sid)
    const [c, p, n, pending, failing] = (await this.redis.ssfOutboxHead(
      k.control,
      k.priority,
      k.lane,
      k.pending,
      k.attempts,
      k.failingSince,
      count,
      lanes.join(''),
      after.c,
      after.p,
      after.n,
    )) as [[string, string[]][], [string, string[]][], [string, string[]][], string[], number]
    const counts = new Map<string, number>()
    for (let i = 0; i + 1 < pending.length; i += 2) counts.set(pending[i]!, Number(pending[i + 1]))
    return {
      c: c.map(([id, f]) => parseEntry('c', id, f)),
      p: p.map(([id, f]) => parseEntry('p', id, f)),
      n: n.map(([id, f]) => parseEntry('n', id, f)),
      pending: counts,
      failing: failing === 1,
    }
  }

  /**
   * Removes SETs that are done with and records their outcomes, in one script call. With `countLeft`,
   * returns how many SETs the stream's lanes still hold (else, or when there was nothing to do, undefined).
   */
  async complete(
    sid: string,
    done: readonly QueuedSet[],
    records: readonly DeliveryRecord[],
    countLeft = false,
  ): Promise<number | undefined> {
    if (done.length === 0 && records.length === 0) return undefined
    const k = this.#k(sid)
    const args: (string | number)[] = [LOG_KEEP, done.length, countLeft ? 1 : 0]
    for (const s of done) args.push(s.lane, s.id, s.sk, s.jti)
    for (const r of records) args.push(JSON.stringify(r))
    const [, left] = (await this.redis.ssfOutboxComplete(
      k.control,
      k.priority,
      k.lane,
      k.pending,
      k.attempts,
      k.log,
      ...args,
    )) as [number, number]
    return left >= 0 ? left : undefined
  }

  async attempts(sid: string, jtis: readonly string[]): Promise<Map<string, Attempts>> {
    if (jtis.length === 0) return new Map()
    const raws = await this.redis.hmget(this.#k(sid).attempts, ...jtis)
    const out = new Map<string, Attempts>()
    jtis.forEach((jti, i) => raws[i] && out.set(jti, JSON.parse(raws[i]!) as Attempts))
    return out
  }

  async setAttempts(sid: string, entries: ReadonlyMap<string, Attempts>): Promise<void> {
    if (entries.size === 0) return
    await this.redis.hset(
      this.#k(sid).attempts,
      Object.fromEntries([...entries].map(([jti, a]) => [jti, JSON.stringify(a)])),
    )
  }

  /** Moves a SET to the dead-letter list (written there first, then removed from its lane). */
  async deadLetter(
    sid: string,
    item: QueuedSet,
    failure: { reason: string; status?: number; err?: string; description?: string },
    attempts?: Attempts,
    record?: DeliveryRecord,
  ): Promise<DeadLetter> {
    const letter: DeadLetter = {
      id: randomId(12),
      stream_id: sid,
      jti: item.jti,
      txn: item.txn,
      type: item.type,
      sk: item.sk,
      set: item.set,
      ...failure,
      attempts: attempts?.a ?? 0,
      ...(attempts?.f !== undefined ? { first_attempt_at: attempts.f } : {}),
      failed_at: Date.now(),
      acknowledged_at: item.at,
    }
    await this.redis
      .multi()
      .hset(this.ks.dlq.items, letter.id, JSON.stringify(letter))
      .zadd(this.ks.dlq.index, letter.failed_at, letter.id)
      .exec()
    await this.complete(sid, [item], record ? [record] : [])
    return letter
  }

  /**
   * RFC 8936 poll: SETs handed out before and not acknowledged within `redeliverMs` first, then new
   * ones, from the lanes given (in that order: what the stream's status delivers, streams/delivery-policy.ts).
   */
  async pollTake(
    sid: string,
    max: number,
    redeliverMs: number,
    lanes: readonly Lane[],
  ): Promise<QueuedSet[]> {
    const k = this.#k(sid)
    const rows = (await this.redis.ssfPollTake(
      k.control,
      k.priority,
      k.lane,
      k.handedOut,
      max,
      redeliverMs,
      lanes.join(''),
    )) as [Lane, string, string[]][]
    return rows.map(([lane, id, fields]) => parseEntry(lane, id, fields))
  }

  /** Forgets acknowledged (or error-reported) SETs of a poll stream; returns those that were handed out. */
  async acknowledge(
    sid: string,
    jtis: readonly string[],
    record: (jti: string) => DeliveryRecord,
  ): Promise<{ jti: string; txn: string; at: number }[]> {
    if (jtis.length === 0) return []
    const k = this.#k(sid)
    const rows = (await this.redis.ssfPollAck(
      k.control,
      k.priority,
      k.lane,
      k.handedOut,
      k.pending,
      k.log,
      LOG_KEEP,
      jtis.length,
      ...jtis,
      ...jtis.map((j) => JSON.stringify(record(j))),
    )) as [string, string][]
    return rows.map(([jti, where]) => {
      const [, , , txn, at] = where.split('\x1f')
      return { jti, txn: txn ?? '', at: Number(at) }
    })
  }

  /** SETs waiting in every lane. */
  async pending(sid: string): Promise<number> {
    const k = this.#k(sid)
    const lens = await Promise.all(LANES.map((lane) => this.redis.xlen(laneKey(k, lane))))
    return lens.reduce((a, b) => a + b, 0)
  }

  /** SETs the backlog bound has dropped so far, and when last. */
  async dropped(sid: string): Promise<{ count: number; lastAt?: number }> {
    const h = await this.redis.hgetall(this.#k(sid).dropped)
    return { count: Number(h.count ?? 0), ...(h.last_at ? { lastAt: Number(h.last_at) } : {}) }
  }

  async deliveries(sid: string, limit: number): Promise<DeliveryRecord[]> {
    const raws = await this.redis.lrange(this.#k(sid).log, 0, limit - 1)
    return raws.map((raw) => JSON.parse(raw) as DeliveryRecord)
  }

  /** Forgets everything queued for a stream (disabled, or its delivery method changed). */
  async purge(sid: string): Promise<void> {
    const k = this.#k(sid)
    await this.redis.del(k.control, k.priority, k.lane, k.pending, k.attempts, k.handedOut)
  }

  /** Removes every delivery key of a deleted stream. */
  async purgeAll(sid: string): Promise<void> {
    const k = this.#k(sid)
    await this.redis.del(
      k.control,
      k.priority,
      k.lane,
      k.pending,
      k.attempts,
      k.handedOut,
      k.log,
      k.dropped,
      k.failingSince,
      k.verifyLast,
    )
  }

  /** Since when (ms) a stream's pushes have failed without a break; set once per run of failures. */
  async failingSince(sid: string, now: number): Promise<number> {
    const key = this.#k(sid).failingSince
    await this.redis.set(key, String(now), 'NX')
    return Number((await this.redis.get(key)) ?? now)
  }

  async clearFailing(sid: string): Promise<void> {
    await this.redis.del(this.#k(sid).failingSince)
  }

  /** Dead letters, newest first; optionally one stream's. */
  async listDeadLetters(options: {
    streamId?: string
    limit: number
    before?: number
  }): Promise<DeadLetter[]> {
    const out: DeadLetter[] = []
    let max: number | string = options.before !== undefined ? `(${options.before}` : '+inf'
    for (;;) {
      const page: string[] = await this.redis.zrevrangebyscore(
        this.ks.dlq.index,
        max,
        '-inf',
        'WITHSCORES',
        'LIMIT',
        0,
        500,
      )
      if (page.length === 0) break
      const ids = page.filter((_: string, i: number) => i % 2 === 0)
      const raws = await this.redis.hmget(this.ks.dlq.items, ...ids)
      for (const raw of raws) {
        if (!raw) continue
        const letter = JSON.parse(raw) as DeadLetter
        if (options.streamId === undefined || letter.stream_id === options.streamId)
          out.push(letter)
        if (out.length >= options.limit) return out
      }
      if (page.length < 1000) break
      max = `(${page[page.length - 1]}`
    }
    return out
  }

  async deadLetterCount(): Promise<number> {
    return this.redis.zcard(this.ks.dlq.index)
  }

  async getDeadLetters(ids: readonly string[]): Promise<DeadLetter[]> {
    if (ids.length === 0) return []
    const raws = await this.redis.hmget(this.ks.dlq.items, ...ids)
    return raws.flatMap((raw) => (raw ? [JSON.parse(raw) as DeadLetter] : []))
  }

  /** Puts a dead letter back at the end of its stream's normal lane (same jti), then forgets the letter. */
  async redrive(letter: DeadLetter): Promise<void> {
    await this.append(letter.stream_id, [
      {
        jti: letter.jti,
        set: letter.set,
        sk: letter.sk,
        txn: letter.txn,
        type: letter.type,
        lane: 'n',
        at: letter.acknowledged_at ?? Date.now(),
      },
    ])
    await this.redis
      .multi()
      .zrem(this.ks.dlq.index, letter.id)
      .hdel(this.ks.dlq.items, letter.id)
      .exec()
  }
}
