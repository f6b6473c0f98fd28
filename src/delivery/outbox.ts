/**
 * Per-stream outbox: the durable queue of SETs waiting for delivery to one push stream.
 *
 *   ssf:ob:<sid>:q      zset jti -> ingest sequence (delivery order)
 *   ssf:ob:<sid>:items  hash jti -> OutboxItem JSON
 *   ssf:ob:<sid>:inflight zset jti -> time (ms) a polled, unacknowledged SET may be handed out again
 *   ssf:ready           zset sid -> time (ms) the stream is next due; while a process holds a stream's
 *                       lease the score is the lease expiry, so a crashed holder's streams fall due again
 *                       on their own after SSF_BROKER_LEASE_MS
 *   ssf:lease           hash sid -> holder id
 *   ssf:dlq, ssf:dlq:items  dead letters (zset id -> failed_at ms; hash id -> DeadLetter JSON)
 *   ssf:dl:<sid>        capped list of recent delivery outcomes
 *   ssf:failing-since:<sid>  when the stream's current run of failed pushes began
 *
 * Control SETs (verification, stream-updated) are queued with a negative sequence: ahead of any backlog,
 * and still delivered while the stream is paused, since they speak about the stream itself (SSF §8.1.4,
 * §8.1.5: a stream-updated event must go out before the broker stops delivery).
 *
 * A SET's `jti` is derived from (event, stream), so appending the same SET twice (a fan-out re-run after
 * a crash) is a no-op while it is still queued. All multi-key updates are Lua scripts: atomic on one
 * Redis. (On Redis Cluster the keys would need a shared hash tag; not supported yet.)
 */
import type { Redis } from 'ioredis'
import { statusKey } from '../streams/store.js'
import { randomId } from '../lib/ids.js'

export interface OutboxItem {
  jti: string
  set: string
  /** Subject key: SETs about one subject are sent one after another, in order. */
  sk: string
  seq: number
  txn: string
  type: string
  /** When it was queued (ms); poll SETs expire by it. */
  t?: number
  /** Attempts so far and time of the first one (ms). */
  a?: number
  f?: number
}

export interface DeadLetter {
  id: string
  stream_id: string
  jti: string
  txn: string
  type: string
  seq: number
  sk: string
  set: string
  reason: string
  status?: number
  err?: string
  description?: string
  attempts: number
  first_attempt_at?: number
  failed_at: number
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

export const READY = 'ssf:ready'
const LEASE = 'ssf:lease'
const DLQ = 'ssf:dlq'
const DLQ_ITEMS = 'ssf:dlq:items'
const qKey = (sid: string) => `ssf:ob:${sid}:q`
const itemsKey = (sid: string) => `ssf:ob:${sid}:items`
const inflightKey = (sid: string) => `ssf:ob:${sid}:inflight`
/** Sequence offset of the control lane: far below any ingest sequence, still an exact double. */
export const CONTROL_LANE = -1e15
const logKey = (sid: string) => `ssf:dl:${sid}`
/** Since when (ms) a push stream's deliveries have failed without a break; cleared by any success. */
export const failingKey = (sid: string) => `ssf:failing-since:${sid}`
const LOG_KEEP = 1000

const SCRIPTS = {
  ssfAppend: {
    numberOfKeys: 4,
    // KEYS status, q, items, ready; ARGV sid, now, pausedMax, push (1|0), (jti, seq, item)...
    lua: `
      local status = redis.call('GET', KEYS[1])
      if not status or status == 'disabled' then return {0, 0} end
      local added = 0
      local control = false
      for i = 5, #ARGV, 3 do
        if redis.call('ZADD', KEYS[2], 'NX', ARGV[i+1], ARGV[i]) == 1 then
          redis.call('HSET', KEYS[3], ARGV[i], ARGV[i+2])
          added = added + 1
          if tonumber(ARGV[i+1]) < 0 then control = true end
        end
      end
      if ARGV[4] == '1' and added > 0 and (status == 'enabled' or control) then
        redis.call('ZADD', KEYS[4], 'NX', ARGV[2], ARGV[1])
      end
      local dropped = 0
      if status == 'paused' then
        local over = redis.call('ZCOUNT', KEYS[2], 0, '+inf') - tonumber(ARGV[3])
        if over > 0 then
          local old = redis.call('ZRANGEBYSCORE', KEYS[2], 0, '+inf', 'LIMIT', 0, over)
          for _, jti in ipairs(old) do
            redis.call('ZREM', KEYS[2], jti)
            redis.call('HDEL', KEYS[3], jti)
          end
          dropped = #old
        end
      end
      return {added, dropped}`,
  },
  ssfClaim: {
    numberOfKeys: 2,
    // KEYS ready, lease; ARGV now, leaseMs, owner, max
    lua: `
      local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
      local lease_until = tonumber(ARGV[1]) + tonumber(ARGV[2])
      for _, sid in ipairs(due) do
        redis.call('ZADD', KEYS[1], lease_until, sid)
        redis.call('HSET', KEYS[2], sid, ARGV[3])
      end
      return due`,
  },
  ssfRenew: {
    numberOfKeys: 2,
    // KEYS ready, lease; ARGV leaseUntil, owner, sid...
    lua: `
      local held = {}
      for i = 3, #ARGV do
        if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[2] then
          redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
          table.insert(held, ARGV[i])
        end
      end
      return held`,
  },
  ssfRelease: {
    numberOfKeys: 4,
    // KEYS ready, lease, q, status; ARGV sid, owner, dueAt, mode ('idle' | 'backoff')
    // Returns 0 not the holder, 1 released, 2 (idle mode) work remains: keep draining.
    lua: `
      if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
      local status = redis.call('GET', KEYS[4])
      local deliverable = 0
      if status == 'enabled' then deliverable = redis.call('ZCARD', KEYS[3])
      elseif status == 'paused' then deliverable = redis.call('ZCOUNT', KEYS[3], '-inf', '(0') end
      if ARGV[4] == 'idle' and deliverable > 0 then return 2 end
      redis.call('HDEL', KEYS[2], ARGV[1])
      if deliverable > 0 then
        redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
      else
        redis.call('ZREM', KEYS[1], ARGV[1])
      end
      return 1`,
  },
  ssfPollTake: {
    numberOfKeys: 2,
    // KEYS q, inflight; ARGV now, redeliverMs, max, controlOnly (1|0)
    // Returns {moreAvailable (0|1), jti...}: the oldest SETs not currently handed out, now marked in flight.
    lua: `
      local now = tonumber(ARGV[1])
      local max = tonumber(ARGV[3])
      local top = '+inf'
      if ARGV[4] == '1' then top = '(0' end
      local out = {}
      local more = 0
      local offset = 0
      while more == 0 do
        local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', top, 'LIMIT', offset, 200)
        for _, jti in ipairs(batch) do
          local due = redis.call('ZSCORE', KEYS[2], jti)
          if not due or tonumber(due) <= now then
            if #out < max then table.insert(out, jti) else more = 1 break end
          end
        end
        if #batch < 200 then break end
        offset = offset + 200
      end
      for _, jti in ipairs(out) do redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), jti) end
      table.insert(out, 1, more)
      return out`,
  },
  ssfUpdateItem: {
    numberOfKeys: 2,
    // KEYS q, items; ARGV jti, item — only while the SET is still queued
    lua: `
      if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1 end
      return 0`,
  },
  ssfDeadLetter: {
    numberOfKeys: 4,
    // KEYS q, items, dlq, dlqItems; ARGV jti, id, failedAt, record
    lua: `
      if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
      redis.call('HDEL', KEYS[2], ARGV[1])
      redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
      redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
      return 1`,
  },
} as const

type ScriptName = keyof typeof SCRIPTS
type Scripted = Redis & { [K in ScriptName]: (...args: (string | number)[]) => Promise<unknown> }

export class Outbox {
  private readonly redis: Scripted

  constructor(redis: Redis, private readonly pausedMax: number) {
    for (const [name, def] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: def.numberOfKeys, lua: def.lua })
    }
    this.redis = redis as Scripted
  }

  /** Queues SETs for a stream. Dropped if the stream is disabled or gone. Push streams become due. */
  async append(sid: string, items: readonly OutboxItem[], push: boolean): Promise<{ added: number; dropped: number }> {
    const args: (string | number)[] = [sid, Date.now(), this.pausedMax, push ? 1 : 0]
    for (const item of items) args.push(item.jti, item.seq, JSON.stringify(item))
    const [added, dropped] = (await this.redis.ssfAppend(statusKey(sid), qKey(sid), itemsKey(sid), READY, ...args)) as [number, number]
    return { added, dropped }
  }

  async claim(owner: string, leaseMs: number, max: number): Promise<string[]> {
    return (await this.redis.ssfClaim(READY, LEASE, Date.now(), leaseMs, owner, max)) as string[]
  }

  async renew(owner: string, leaseMs: number, sids: readonly string[]): Promise<Set<string>> {
    if (sids.length === 0) return new Set()
    return new Set((await this.redis.ssfRenew(READY, LEASE, Date.now() + leaseMs, owner, ...sids)) as string[])
  }

  /** 'idle': release only if nothing is left (else returns 'more'); 'backoff': come back at `dueAt`. */
  async release(sid: string, owner: string, mode: 'idle' | 'backoff', dueAt = Date.now()): Promise<'released' | 'more' | 'lost'> {
    const result = (await this.redis.ssfRelease(READY, LEASE, qKey(sid), statusKey(sid), sid, owner, dueAt, mode)) as number
    return result === 2 ? 'more' : result === 1 ? 'released' : 'lost'
  }

  /** The first `count` queued SETs, in delivery order (only control SETs when `controlOnly`). */
  async head(sid: string, count: number, controlOnly = false): Promise<OutboxItem[]> {
    const jtis = await this.redis.zrangebyscore(qKey(sid), '-inf', controlOnly ? '(0' : '+inf', 'LIMIT', 0, count)
    return this.#items(sid, jtis)
  }

  async #items(sid: string, jtis: readonly string[]): Promise<OutboxItem[]> {
    if (jtis.length === 0) return []
    const raws = await this.redis.hmget(itemsKey(sid), ...jtis)
    return raws.flatMap((raw) => (raw ? [JSON.parse(raw) as OutboxItem] : []))
  }

  /**
   * RFC 8936 poll: the oldest SETs not currently handed out to another poll, marked as handed out for
   * `redeliverMs` (unacknowledged ones are handed out again after that).
   */
  async pollTake(sid: string, max: number, redeliverMs: number, controlOnly: boolean): Promise<{ items: OutboxItem[]; more: boolean }> {
    const [more, ...jtis] = (await this.redis.ssfPollTake(qKey(sid), inflightKey(sid), Date.now(), redeliverMs, max, controlOnly ? 1 : 0)) as [number, ...string[]]
    return { items: await this.#items(sid, jtis), more: more === 1 }
  }

  /**
   * Forgets acknowledged (or error-reported) SETs of a poll stream; returns those that were queued
   * (acks for unknown jtis are ignored).
   */
  async acknowledge(sid: string, jtis: readonly string[]): Promise<OutboxItem[]> {
    if (jtis.length === 0) return []
    const known = await this.#items(sid, jtis)
    const ids = known.map((i) => i.jti)
    if (ids.length > 0) await this.redis.multi().zrem(qKey(sid), ...ids).hdel(itemsKey(sid), ...ids).zrem(inflightKey(sid), ...ids).exec()
    return known
  }

  async pending(sid: string): Promise<number> {
    return this.redis.zcard(qKey(sid))
  }

  /** Removes delivered SETs and records their outcomes, in one round trip. */
  async complete(sid: string, jtis: readonly string[], records: readonly DeliveryRecord[], clearFailing = false): Promise<void> {
    const multi = this.redis.multi()
    if (jtis.length > 0) multi.zrem(qKey(sid), ...jtis).hdel(itemsKey(sid), ...jtis)
    if (clearFailing) multi.del(failingKey(sid))
    this.#log(multi, sid, records)
    await multi.exec()
  }

  async record(sid: string, records: readonly DeliveryRecord[]): Promise<void> {
    const multi = this.redis.multi()
    this.#log(multi, sid, records)
    await multi.exec()
  }

  #log(multi: ReturnType<Redis['multi']>, sid: string, records: readonly DeliveryRecord[]): void {
    if (records.length === 0) return
    multi.lpush(logKey(sid), ...records.map((r) => JSON.stringify(r))).ltrim(logKey(sid), 0, LOG_KEEP - 1)
  }

  async updateItem(sid: string, item: OutboxItem): Promise<void> {
    await this.redis.ssfUpdateItem(qKey(sid), itemsKey(sid), item.jti, JSON.stringify(item))
  }

  async deadLetter(sid: string, item: OutboxItem, failure: { reason: string; status?: number; err?: string; description?: string }): Promise<DeadLetter | undefined> {
    const letter: DeadLetter = {
      id: randomId(12),
      stream_id: sid,
      jti: item.jti,
      txn: item.txn,
      type: item.type,
      seq: item.seq,
      sk: item.sk,
      set: item.set,
      ...failure,
      attempts: item.a ?? 0,
      ...(item.f !== undefined ? { first_attempt_at: item.f } : {}),
      failed_at: Date.now(),
    }
    const moved = await this.redis.ssfDeadLetter(qKey(sid), itemsKey(sid), DLQ, DLQ_ITEMS, item.jti, letter.id, letter.failed_at, JSON.stringify(letter))
    return moved === 1 ? letter : undefined
  }

  async deliveries(sid: string, limit: number): Promise<DeliveryRecord[]> {
    const raws = await this.redis.lrange(logKey(sid), 0, limit - 1)
    return raws.map((raw) => JSON.parse(raw) as DeliveryRecord)
  }

  /** Makes an enabled stream due now (after a status change back to enabled). */
  async markReady(sid: string): Promise<void> {
    await this.redis.zadd(READY, 'NX', Date.now(), sid)
  }

  /** Takes a stream out of push scheduling (it polls now, or is gone). */
  async unready(sid: string): Promise<void> {
    await this.redis.multi().zrem(READY, sid).hdel(LEASE, sid).exec()
  }

  /** Forgets everything queued for a stream (disabled or deleted). */
  async purge(sid: string): Promise<void> {
    await this.redis.multi().del(qKey(sid), itemsKey(sid), inflightKey(sid)).zrem(READY, sid).hdel(LEASE, sid).exec()
  }

  async deleteLog(sid: string): Promise<void> {
    await this.redis.del(logKey(sid))
  }

  async deadLetterCount(): Promise<number> {
    return this.redis.zcard(DLQ)
  }

  /** Dead letters, newest first; optionally one stream's. */
  async listDeadLetters(options: { streamId?: string; limit: number; before?: number }): Promise<DeadLetter[]> {
    const out: DeadLetter[] = []
    let max: number | string = options.before !== undefined ? `(${options.before}` : '+inf'
    // Page through the index until enough letters of the wanted stream are found.
    for (;;) {
      const page: string[] = await this.redis.zrevrangebyscore(DLQ, max, '-inf', 'WITHSCORES', 'LIMIT', 0, 500)
      if (page.length === 0) break
      const ids = page.filter((_: string, i: number) => i % 2 === 0)
      const raws = await this.redis.hmget(DLQ_ITEMS, ...ids)
      for (const raw of raws) {
        if (!raw) continue
        const letter = JSON.parse(raw) as DeadLetter
        if (options.streamId === undefined || letter.stream_id === options.streamId) out.push(letter)
        if (out.length >= options.limit) return out
      }
      if (page.length < 1000) break
      max = `(${page[page.length - 1]}`
    }
    return out
  }

  async getDeadLetters(ids: readonly string[]): Promise<DeadLetter[]> {
    if (ids.length === 0) return []
    const raws = await this.redis.hmget(DLQ_ITEMS, ...ids)
    return raws.flatMap((raw) => (raw ? [JSON.parse(raw) as DeadLetter] : []))
  }

  /** Puts a dead letter back in its stream's outbox (same jti); false if the stream is gone or disabled. */
  async redrive(letter: DeadLetter): Promise<boolean> {
    const item: OutboxItem = { jti: letter.jti, set: letter.set, sk: letter.sk, seq: letter.seq, txn: letter.txn, type: letter.type }
    const { added } = await this.append(letter.stream_id, [item], true)
    const queued = added === 1 || (await this.redis.zscore(qKey(letter.stream_id), letter.jti)) !== null
    if (queued) await this.redis.multi().zrem(DLQ, letter.id).hdel(DLQ_ITEMS, letter.id).exec()
    return queued
  }
}
