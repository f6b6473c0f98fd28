/**
 * The whole Redis keyspace of the broker: every key and channel it uses is built here, nowhere else
 * (documented in docs/redis-keyspace.md). Every key starts with SSF_BROKER_REDIS_PREFIX (default `ssf`).
 *
 * Hash tags (`{...}`) decide the Redis Cluster slot. Keys that a script or a MULTI touches together share
 * one tag, so every multi-key operation stays inside one slot:
 *   {o:<sid>}   one stream's delivery state (lanes, attempts, delivery log, subjects of that stream)
 *   {streams}   stream records, the routing version and change log, per-client and activity indexes
 *   {in:<k>}    ingest partition k (a Redis Stream with a consumer group)
 *   {sched:<k>} delivery scheduling shard k (due streams and their leases)
 *   {keys} {clients} {agents} {audit} {dlq} {bull} {misc}: small shared areas, one slot each
 *   {upstreams} upstream transmitters this broker subscribes to: records, counters, poll leases
 * Keys used only by single-key commands (the subject term index) carry no tag and spread over the cluster;
 * their variable part is hashed, so no caller-supplied brace can pick a slot.
 */
import { createHash } from 'node:crypto'

/** Ingest log partitions: acknowledged requests are spread over this many Redis Streams (and slots). */
export const INGEST_PARTITIONS = 16

/** Delivery scheduling shards: due streams are spread over this many slots. */
export const SCHED_SHARDS = 16

const hashPart = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 32)

/** Shards of streams seen lately: a hash per lookup showed in profiles of large fan-outs. */
const shardCache = new Map<string, number>()
const SHARD_CACHE_MAX = 100_000

/** Which scheduling shard a stream belongs to (stable for a stream id). */
export function schedShardOf(sid: string): number {
  let shard = shardCache.get(sid)
  if (shard === undefined) {
    shard = createHash('sha256').update(sid).digest().readUInt16BE(0) % SCHED_SHARDS
    if (shardCache.size >= SHARD_CACHE_MAX) shardCache.clear()
    shardCache.set(sid, shard)
  }
  return shard
}

export interface StreamKeys {
  /** Normal lane: Redis Stream of queued SETs, in append order. */
  readonly lane: string
  /** Priority lane (SSF_BROKER_PRIORITY_EVENT_TYPES). */
  readonly priority: string
  /** Control lane: verification and stream-updated SETs; delivered even while paused. */
  readonly control: string
  /** hash subjectKey -> number of queued normal-lane SETs about it (keeps priority behind same-subject SETs). */
  readonly pending: string
  /** hash jti -> "lane entry-id subject-key": poll SETs handed out and not yet acknowledged */
  readonly handedOut: string
  /** hash jti -> {a: attempts, f: first attempt ms} for SETs that failed at least once. */
  readonly attempts: string
  /** capped list of recent delivery outcomes */
  readonly log: string
  /** hash of backlog-bound drops: {count, last_at} */
  readonly dropped: string
  /** since when (ms) pushes have failed without a break */
  readonly failingSince: string
  /** set while a verification request's minimum interval runs */
  readonly verifyLast: string
  /** hash subjectKey -> subject JSON: the stream's added/removed subjects */
  readonly subjects: string
}

export function createKeyspace(prefix = 'ssf') {
  const p = prefix
  const streamKeys = (sid: string): StreamKeys => {
    const t = `${p}:{o:${sid}}`
    return {
      lane: `${t}:lane`,
      priority: `${t}:prio`,
      control: `${t}:ctl`,
      pending: `${t}:pend`,
      handedOut: `${t}:out`,
      attempts: `${t}:att`,
      log: `${t}:log`,
      dropped: `${t}:dropped`,
      failingSince: `${t}:failing`,
      verifyLast: `${t}:verify-last`,
      subjects: `${t}:subj`,
    }
  }
  return Object.freeze({
    prefix: p,
    stream: streamKeys,
    streams: {
      /** hash sid -> StreamRecord JSON */
      records: `${p}:{streams}:rec`,
      /** bumped (INCR) in the same transaction as every record change */
      version: `${p}:{streams}:version`,
      /** Redis Stream of {v: version, sid}: which stream each version changed */
      changes: `${p}:{streams}:changes`,
      byClient: (clientId: string) => `${p}:{streams}:client:${hashPart(clientId)}`,
      /** zset sid -> last activity (ms), for the inactivity timeout */
      activity: `${p}:{streams}:activity`,
    },
    subjectTerm: (term: string) => `${p}:subidx:${hashPart(term)}`,
    ingest: {
      partition: (k: number) => `${p}:{in:${k}}`,
      group: 'fanout',
    },
    sched: {
      ready: (k: number) => `${p}:{sched:${k}}:ready`,
      lease: (k: number) => `${p}:{sched:${k}}:lease`,
      dirty: (k: number) => `${p}:{sched:${k}}:dirty`,
    },
    keys: {
      all: `${p}:{keys}:all`,
      active: `${p}:{keys}:active`,
      /** hash alg -> kid of the key rotated in and published, signing from its activates_at */
      pending: `${p}:{keys}:pending`,
      version: `${p}:{keys}:version`,
    },
    clients: {
      record: (id: string) => `${p}:{clients}:rec:${id}`,
      all: `${p}:{clients}:all`,
      bootstrapHash: `${p}:{clients}:bootstrap-token-hash`,
    },
    agents: {
      /** Declared as KEYS[1] by the graph scripts so Redis Cluster routes them to the agents' slot. */
      anchor: `${p}:{agents}:anchor`,
      recPrefix: `${p}:{agents}:rec:`,
      dlgPrefix: `${p}:{agents}:dlg:`,
      expiry: `${p}:{agents}:exp`,
      notify: `${p}:{agents}:notify`,
      jtiPrefix: `${p}:{agents}:jti:`,
      /** hash: one agent's registration (keys of the graph are also built by its scripts from the prefixes) */
      record: (agentId: string) => `${p}:{agents}:rec:${agentId}`,
      /** set of agent ids a node (a subject) delegated to: the graph's edges */
      delegations: (node: string) => `${p}:{agents}:dlg:${node}`,
      /** set of agent ids registered with one token_jti (hashed) */
      tokenJti: (jti: string) => `${p}:{agents}:jti:${hashPart(jti)}`,
    },
    audit: {
      /** "<seq>:<hash>" of the newest record (the chain head) */
      head: `${p}:{audit}:head`,
      /** "<seq>:<hash>" of the last record removed by retention: where the chain resumes */
      anchor: `${p}:{audit}:anchor`,
      /** hash batch id -> the batch's records as JSON Lines, in chain order */
      batches: `${p}:{audit}:batch`,
      /** hash batch id -> batch summary JSON (last record, newest `at`, index keys it was filed under) */
      batchMeta: `${p}:{audit}:batch-meta`,
      /** zset batch id -> seq of the batch's first record: chain order */
      order: `${p}:{audit}:order`,
      /** zset batch id -> first seq, per query key (t = txn | sub | agent | stream); value hashed */
      index: (t: 'txn' | 'sub' | 'agent' | 'stream', value: string) =>
        `${p}:{audit}:ix:${t}:${hashPart(value)}`,
      indexPattern: `${p}:{audit}:ix:*`,
    },
    dlq: {
      index: `${p}:{dlq}:z`,
      items: `${p}:{dlq}:items`,
    },
    misc: {
      controlSeq: `${p}:{misc}:control-seq`,
      inactivityLock: `${p}:{misc}:lock:inactivity`,
      embeddedOwner: `${p}:{misc}:embedded-owner`,
    },
    upstreams: {
      /** hash upstream_id -> UpstreamRecord JSON (secrets sealed, the inbound authorization as a hash) */
      records: `${p}:{upstreams}:rec`,
      /** hash: events_received, last_event_at, last_error, status, reason, verified_at */
      stats: (id: string) => `${p}:{upstreams}:stats:${id}`,
      /** poll loop lease: which process polls this upstream (value: holder id, PX the lease) */
      lease: (id: string) => `${p}:{upstreams}:lease:${id}`,
      /** verification `state` this broker asked the upstream for (PX while the answer is awaited) */
      verifyState: (id: string, state: string) =>
        `${p}:{upstreams}:vstate:${id}:${hashPart(state)}`,
      /** (upstream iss, jti) seen: "pending" while being ingested, "done" once durable */
      seen: (issJti: string) => `${p}:upseen:${hashPart(issJti)}`,
    },
    /** BullMQ's key prefix: one hash tag, as BullMQ needs on Redis Cluster. */
    bullPrefix: `${p}:{bull}`,
    channels: {
      /** push streams became due (message: scheduling shard numbers) */
      wake: `${p}:wake`,
      /** poll streams got SETs (message: comma-separated stream ids) */
      pollWake: `${p}:poll-wake`,
      /** a stream record changed (message: routing version) */
      routing: `${p}:routing`,
      /** signing keys changed */
      keys: `${p}:keys`,
    },
  })
}

export type Keyspace = ReturnType<typeof createKeyspace>
