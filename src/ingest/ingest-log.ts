/**
 * The durable ingest log: partitioned Redis Streams (`{in:<k>}`, one Cluster slot each) with one
 * consumer group. `POST /events` appends its batch in one script call that also hands the entry to the
 * accepting process (XADD + XREADGROUP), answers 202, and that process fans out at once from memory.
 * When the fan-out is done the entry is acknowledged and deleted. If the process dies first, its entries
 * stay pending in the group, and any other process (or its own restart) takes them over with XAUTOCLAIM
 * once they have been idle for SSF_BROKER_LEASE_MS; a long fan-out keeps its entries fresh meanwhile.
 */
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import { TurnBatch } from '../lib/turn-batch.js'

const SCRIPTS = {
  ssfIngestAppend: {
    file: new URL('./scripts/ingest-append.lua', import.meta.url),
    numberOfKeys: 1,
  },
  ssfIngestGroup: { file: new URL('./scripts/ingest-group.lua', import.meta.url), numberOfKeys: 1 },
  ssfIngestConsumers: {
    file: new URL('./scripts/ingest-consumers.lua', import.meta.url),
    numberOfKeys: 1,
  },
}

export interface LogEntry {
  partition: number
  id: string
  payload: string
}

export class IngestLog {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>
  #next = 0
  #cursors: string[]

  constructor(
    redis: Redis,
    private readonly ks: Keyspace,
    readonly partitions: number,
    private readonly consumer: string,
  ) {
    this.redis = defineScripts(redis, SCRIPTS)
    this.#cursors = Array.from({ length: partitions }, () => '0-0')
  }

  async init(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.partitions }, (_, k) =>
        this.redis.ssfIngestGroup(this.ks.ingest.partition(k), this.ks.ingest.group),
      ),
    )
  }

  /** Stores one payload durably; returns its entry and any older entry the group handed over with it. */
  async append(payload: string): Promise<{ entry: LogEntry; extra: LogEntry[] }> {
    // Round-robin over partitions spreads the load over every Cluster node.
    const partition = this.#next++ % this.partitions
    const [id, ...handed] = (await this.redis.ssfIngestAppend(
      this.ks.ingest.partition(partition),
      this.ks.ingest.group,
      this.consumer,
      payload,
    )) as [string, ...[string, string[]][]]
    const extra = handed.map(([eid, fields]) => ({ partition, id: eid, payload: fields[1]! }))
    return { entry: { partition, id, payload }, extra }
  }

  /**
   * The fan-out of these entries is complete: forget them. Deleted, then acknowledged, as two plain
   * commands sent back to back (no transaction): a crash in between leaves a pending id without data,
   * which XAUTOCLAIM drops from the pending list instead of handing it out. The entries of one partition
   * completed in the same turn of the event loop share one XDEL and one XACK.
   */
  async complete(entries: readonly LogEntry[]): Promise<void> {
    await Promise.all(entries.map((e) => this.#completions.call(e.partition, e.id)))
  }

  readonly #completions = new TurnBatch<number, string, void>(async (partition, ids) => {
    const key = this.ks.ingest.partition(partition)
    await Promise.all([
      this.redis.xdel(key, ...ids),
      this.redis.xack(key, this.ks.ingest.group, ...ids),
    ])
    return ids.map(() => undefined)
  }, 'turn')

  /** Keeps entries whose fan-out is still running from being taken over (resets their idle time). */
  async keepAlive(entries: readonly LogEntry[]): Promise<void> {
    // One XCLAIM per partition for all of its entries (many fan-outs are in flight under load).
    const byPartition = new Map<number, string[]>()
    for (const e of entries) {
      let ids = byPartition.get(e.partition)
      if (!ids) byPartition.set(e.partition, (ids = []))
      ids.push(e.id)
    }
    await Promise.all(
      [...byPartition].map(([k, ids]) =>
        this.redis.xclaim(
          this.ks.ingest.partition(k),
          this.ks.ingest.group,
          this.consumer,
          0,
          ...ids,
          'JUSTID',
        ),
      ),
    )
  }

  /** Forgets the group consumers of stopped processes: holding nothing, idle for at least `minIdleMs`. */
  async pruneConsumers(minIdleMs: number): Promise<number> {
    const removed = await Promise.all(
      Array.from(
        { length: this.partitions },
        (_, k) =>
          this.redis.ssfIngestConsumers(
            this.ks.ingest.partition(k),
            this.ks.ingest.group,
            minIdleMs,
            this.consumer,
          ) as Promise<number>,
      ),
    )
    return removed.reduce((a, b) => a + b, 0)
  }

  /** Takes over entries idle for at least `minIdleMs` (their process died), up to `count` per partition. */
  async reclaim(minIdleMs: number, count: number): Promise<LogEntry[]> {
    const found = await Promise.all(
      Array.from({ length: this.partitions }, async (_, k) => {
        const res = (await this.redis.xautoclaim(
          this.ks.ingest.partition(k),
          this.ks.ingest.group,
          this.consumer,
          minIdleMs,
          this.#cursors[k]!,
          'COUNT',
          count,
        )) as [string, [string, string[] | null][]]
        this.#cursors[k] = res[0]
        return res[1]
          .filter(([, fields]) => fields !== null)
          .map(([id, fields]) => ({ partition: k, id, payload: fields![1]! }))
      }),
    )
    return found.flat()
  }
}
