/**
 * What the ingest path holds, for tests that check a refused request stored nothing: how many events a
 * broker acknowledged (its `ssf_broker_events_ingested_total`), and how many ingest entries still wait for
 * their fan-out (entries are deleted once fanned out).
 */
import type { Redis } from 'ioredis'
import { INGEST_PARTITIONS, createKeyspace } from '../../src/redis/keyspace.js'

export async function eventsIngested(brokerUrl: string): Promise<number> {
  const text = await (await fetch(`${brokerUrl}/metrics`)).text()
  return text
    .split('\n')
    .filter((line) => line.startsWith('ssf_broker_events_ingested_total{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
}

export async function ingestEntriesWaiting(redis: Redis, prefix = 'ssf'): Promise<number> {
  const ks = createKeyspace(prefix)
  const lens = await Promise.all(
    Array.from({ length: INGEST_PARTITIONS }, (_, k) => redis.xlen(ks.ingest.partition(k))),
  )
  return lens.reduce((a, b) => a + b, 0)
}
