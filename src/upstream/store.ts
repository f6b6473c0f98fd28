/**
 * The upstream registry in Redis: one record per upstream (written once, at registration) and a stats
 * hash per upstream that counters and status changes update field by field, from any broker process.
 */
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import type { UpstreamRecord, UpstreamStats, UpstreamStatus } from './model.js'

const MAX_ERROR = 500

export class UpstreamStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keyspace,
  ) {}

  async save(record: UpstreamRecord, status: UpstreamStatus): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.upstreams.records, record.upstream_id, JSON.stringify(record))
      .hset(this.keys.upstreams.stats(record.upstream_id), { status, events_received: 0 })
      .exec()
  }

  async get(id: string): Promise<UpstreamRecord | undefined> {
    const raw = await this.redis.hget(this.keys.upstreams.records, id)
    return raw === null ? undefined : (JSON.parse(raw) as UpstreamRecord)
  }

  async list(): Promise<UpstreamRecord[]> {
    const all = await this.redis.hvals(this.keys.upstreams.records)
    return all
      .map((raw) => JSON.parse(raw) as UpstreamRecord)
      .sort((a, b) => a.created_at - b.created_at || a.upstream_id.localeCompare(b.upstream_id))
  }

  async remove(id: string): Promise<boolean> {
    const [[, removed] = []] =
      (await this.redis
        .multi()
        .hdel(this.keys.upstreams.records, id)
        .del(this.keys.upstreams.stats(id), this.keys.upstreams.lease(id))
        .exec()) ?? []
    return removed === 1
  }

  async stats(id: string): Promise<UpstreamStats> {
    const h = await this.redis.hgetall(this.keys.upstreams.stats(id))
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v))
    return {
      status: (h.status as UpstreamStatus | undefined) ?? 'enabled',
      ...(h.reason !== undefined ? { reason: h.reason } : {}),
      events_received: num(h.events_received) ?? 0,
      ...(h.last_event_at !== undefined ? { last_event_at: num(h.last_event_at)! } : {}),
      ...(h.last_error !== undefined ? { last_error: h.last_error } : {}),
      ...(h.last_error_at !== undefined ? { last_error_at: num(h.last_error_at)! } : {}),
      ...(h.verified_at !== undefined ? { verified_at: num(h.verified_at)! } : {}),
    }
  }

  async eventsReceived(id: string, count: number, at = Date.now()): Promise<void> {
    await this.redis
      .multi()
      .hincrby(this.keys.upstreams.stats(id), 'events_received', count)
      .hset(this.keys.upstreams.stats(id), 'last_event_at', Math.floor(at / 1000))
      .exec()
  }

  async setStatus(id: string, status: UpstreamStatus, reason: string | undefined): Promise<void> {
    const key = this.keys.upstreams.stats(id)
    const tx = this.redis.multi().hset(key, 'status', status)
    if (reason !== undefined) tx.hset(key, 'reason', reason.slice(0, MAX_ERROR))
    else tx.hdel(key, 'reason')
    await tx.exec()
  }

  async verified(id: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.keys.upstreams.stats(id), 'verified_at', Math.floor(at / 1000))
  }

  /** Records the latest problem with an upstream (never a secret: callers pass codes and statuses). */
  async error(id: string, message: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.keys.upstreams.stats(id), {
      last_error: message.slice(0, MAX_ERROR),
      last_error_at: Math.floor(at / 1000),
    })
  }
}
