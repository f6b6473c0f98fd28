/**
 * Tampering with the stored audit trail the way an intruder with Redis access could, to prove that
 * verification notices: records are found inside their batch (keys from keyspace.ts).
 */
import type { Redis } from 'ioredis'
import { createKeyspace } from '../../src/redis/keyspace.js'

const keys = createKeyspace('ssf').audit

/** The batch holding record `seq`: its id and its JSON Lines. */
async function batchOf(redis: Redis, seq: number): Promise<{ id: string; lines: string[] }> {
  const [id] = await redis.zrevrangebyscore(keys.order, seq, '-inf', 'LIMIT', 0, 1)
  if (id === undefined) throw new Error(`no batch holds record ${seq}`)
  const text = (await redis.hget(keys.batches, id)) ?? ''
  return { id, lines: text.split('\n').filter(Boolean) }
}

const lineIndex = (lines: string[], seq: number) => {
  const i = lines.findIndex((line) => (JSON.parse(line) as { seq: number }).seq === seq)
  if (i < 0) throw new Error(`record ${seq} not stored`)
  return i
}

/** Reads record `seq` as stored. */
export async function storedRecord(redis: Redis, seq: number): Promise<Record<string, unknown>> {
  const { lines } = await batchOf(redis, seq)
  return JSON.parse(lines[lineIndex(lines, seq)]!) as Record<string, unknown>
}

/** Replaces record `seq` in place with `record`. */
export async function overwriteRecord(
  redis: Redis,
  seq: number,
  record: Record<string, unknown>,
): Promise<void> {
  const { id, lines } = await batchOf(redis, seq)
  lines[lineIndex(lines, seq)] = JSON.stringify(record)
  await redis.hset(keys.batches, id, lines.map((l) => `${l}\n`).join(''))
}

/** Removes record `seq` from its batch. */
export async function removeRecord(redis: Redis, seq: number): Promise<void> {
  const { id, lines } = await batchOf(redis, seq)
  lines.splice(lineIndex(lines, seq), 1)
  await redis.hset(keys.batches, id, lines.map((l) => `${l}\n`).join(''))
}

/** Deletes the records of the batch holding `seq`, leaving its place in chain order listed. */
export async function deleteBatchOf(redis: Redis, seq: number): Promise<string> {
  const { id } = await batchOf(redis, seq)
  await redis.hdel(keys.batches, id)
  return id
}
