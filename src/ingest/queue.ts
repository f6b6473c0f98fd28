/**
 * The ingest queue (BullMQ). `POST /events` answers 202 only after its job is stored in Redis; the
 * job is the durable record of the acknowledged events until their SETs are in the stream outboxes.
 *
 * A crashed process's job is picked up again once its lock lapses (lockDuration = SSF_BROKER_LEASE_MS,
 * checked every half of it) rather than after BullMQ's default 30 s stall check; re-running a job is
 * safe because SET `jti`s are derived from (event, stream) and outbox appends ignore queued duplicates.
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq'
import type { Config } from '../config/config.js'
import { redisOptionsFromUrl } from '../redis/connection.js'
import type { IngestedEvent } from './fan-out.js'

const QUEUE = 'fanout'
const PREFIX = 'ssf:bull'

export interface FanOutJob {
  events: IngestedEvent[]
}

function connection(url: string): ConnectionOptions {
  // BullMQ's own options type is narrower than ioredis's for callbacks we do not set.
  return { ...redisOptionsFromUrl(url), maxRetriesPerRequest: null } as ConnectionOptions
}

export function createIngestQueue(redisUrl: string): Queue<FanOutJob> {
  return new Queue<FanOutJob>(QUEUE, {
    connection: connection(redisUrl),
    prefix: PREFIX,
    defaultJobOptions: {
      attempts: 50,
      backoff: { type: 'exponential', delay: 200 },
      removeOnComplete: true,
      removeOnFail: { count: 10_000 },
    },
  })
}

export function createFanOutWorker(config: Config, redisUrl: string, process: (job: FanOutJob) => Promise<void>): Worker<FanOutJob> {
  return new Worker<FanOutJob>(QUEUE, async (job) => process(job.data), {
    connection: connection(redisUrl),
    prefix: PREFIX,
    // Jobs spend most of their time waiting on Redis and on signatures (off the main thread): many at
    // once keep both busy. Order within a stream comes from the ingest sequence, not from job order.
    concurrency: config.fanOutConcurrency,
    lockDuration: config.leaseMs,
    stalledInterval: Math.max(250, Math.floor(config.leaseMs / 2)),
    // A stall here means a crashed process, not a poisonous job: always run it again.
    maxStalledCount: 1000,
  })
}
