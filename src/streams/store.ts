/**
 * Stream records in Redis.
 *   ssf:stream:<id>           JSON StreamRecord
 *   ssf:ss:<id>               status string, read by the delivery scripts
 *   ssf:client-streams:<cid>  set of the client's stream ids
 *   ssf:streams:by-event:<uri> set of stream ids whose events_delivered contains <uri> (fan-out index)
 *   ssf:activity              zset stream id -> last activity (ms), for the inactivity timeout
 */
import type { Redis, ChainableCommander } from 'ioredis'
import type { StreamRecord } from './model.js'

export const streamKey = (id: string) => `ssf:stream:${id}`
export const statusKey = (id: string) => `ssf:ss:${id}`
const clientStreamsKey = (clientId: string) => `ssf:client-streams:${clientId}`
export const byEventKey = (uri: string) => `ssf:streams:by-event:${uri}`
export const ACTIVITY = 'ssf:activity'

export class StreamStore {
  constructor(private readonly redis: Redis) {}

  async get(id: string): Promise<StreamRecord | undefined> {
    const raw = await this.redis.get(streamKey(id))
    return raw ? (JSON.parse(raw) as StreamRecord) : undefined
  }

  async getMany(ids: readonly string[]): Promise<(StreamRecord | undefined)[]> {
    if (ids.length === 0) return []
    const raws = await this.redis.mget(ids.map(streamKey))
    return raws.map((raw) => (raw ? (JSON.parse(raw) as StreamRecord) : undefined))
  }

  async listForClient(clientId: string): Promise<StreamRecord[]> {
    const ids = await this.redis.smembers(clientStreamsKey(clientId))
    const streams = (await this.getMany(ids)).filter((s): s is StreamRecord => s !== undefined)
    return streams.sort((a, b) => a.created_at - b.created_at)
  }

  /**
   * Streams in stream-id order, a page at a time: `cursor` is the last stream id of the previous page.
   * Optionally only one status and/or one client's streams.
   */
  async list(options: { status?: string; clientId?: string; cursor?: string; limit: number }): Promise<{ streams: StreamRecord[]; next_cursor?: string }> {
    let ids: string[]
    if (options.clientId !== undefined) ids = await this.redis.smembers(clientStreamsKey(options.clientId))
    else {
      ids = []
      const prefix = streamKey('')
      let scan = '0'
      do {
        const [next, keys] = await this.redis.scan(scan, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        scan = next
        for (const key of keys) ids.push(key.slice(prefix.length))
      } while (scan !== '0')
    }
    ids = [...new Set(ids)].sort()
    if (options.cursor !== undefined) ids = ids.filter((id) => id > options.cursor!)
    const out: StreamRecord[] = []
    for (let i = 0; i < ids.length && out.length < options.limit; i += 500) {
      for (const stream of await this.getMany(ids.slice(i, i + 500))) {
        if (!stream || (options.status !== undefined && stream.status !== options.status)) continue
        if (out.length === options.limit) return { streams: out, next_cursor: out[out.length - 1]!.stream_id }
        out.push(stream)
      }
    }
    const last = out[out.length - 1]
    const more = last !== undefined && out.length === options.limit && ids[ids.length - 1] !== last.stream_id
    return more ? { streams: out, next_cursor: last.stream_id } : { streams: out }
  }

  /** Records activity on the stream (resets its inactivity timeout). */
  async touch(id: string): Promise<void> {
    await this.redis.zadd(ACTIVITY, Date.now(), id)
  }

  /** Streams without activity since `before` (ms), oldest first. */
  inactiveSince(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(ACTIVITY, '-inf', before, 'LIMIT', 0, limit)
  }

  /** Stops tracking a stream's activity until its next management call or poll. */
  async untrack(id: string): Promise<void> {
    await this.redis.zrem(ACTIVITY, id)
  }

  idsForEvent(uri: string): Promise<string[]> {
    return this.redis.smembers(byEventKey(uri))
  }

  /** Writes the record and keeps the indexes in step with it; `previous` is the record being replaced. */
  save(stream: StreamRecord, previous?: StreamRecord, multi: ChainableCommander = this.redis.multi()): Promise<unknown> {
    multi.set(streamKey(stream.stream_id), JSON.stringify(stream))
    multi.set(statusKey(stream.stream_id), stream.status)
    multi.zadd(ACTIVITY, Date.now(), stream.stream_id)
    multi.sadd(clientStreamsKey(stream.client_id), stream.stream_id)
    const before = new Set(previous?.events_delivered ?? [])
    const after = new Set(stream.events_delivered)
    for (const uri of before) if (!after.has(uri)) multi.srem(byEventKey(uri), stream.stream_id)
    for (const uri of after) if (!before.has(uri)) multi.sadd(byEventKey(uri), stream.stream_id)
    return multi.exec()
  }

  /** Removes the record and its index entries; the caller purges the stream's delivery state. */
  remove(stream: StreamRecord, multi: ChainableCommander = this.redis.multi()): Promise<unknown> {
    multi.del(streamKey(stream.stream_id), statusKey(stream.stream_id))
    multi.zrem(ACTIVITY, stream.stream_id)
    multi.srem(clientStreamsKey(stream.client_id), stream.stream_id)
    for (const uri of stream.events_delivered) multi.srem(byEventKey(uri), stream.stream_id)
    return multi.exec()
  }
}
