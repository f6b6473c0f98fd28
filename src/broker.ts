/**
 * Composition root: connects Redis (or starts the embedded one), loads keys, and starts the HTTP API, the
 * fan-out worker and the push dispatcher of one broker process. Every piece of state lives in Redis, so
 * any number of these processes can share one Redis.
 */
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { serve, type ServerType } from '@hono/node-server'
import type { Config } from './config/config.js'
import type { Logger } from './lib/log.js'
import { startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js'
import { connectRedis, logConnectionOutages, type RedisTarget } from './redis/connection.js'
import { INGEST_PARTITIONS, createKeyspace } from './redis/keyspace.js'
import { Activity } from './observe/activity.js'
import { RoutingCache } from './streams/routing-cache.js'
import { StreamLifecycle } from './streams/lifecycle.js'
import { Scheduler } from './delivery/scheduler.js'
import { FairLimiter } from './ingest/fair-limiter.js'
import { IngestLog } from './ingest/ingest-log.js'
import { IngestPipeline } from './ingest/pipeline.js'
import { KeyStore } from './keys/keystore.js'
import { BootstrapAdmin, ClientRegistry } from './auth/clients.js'
import { OAuthVerifier } from './auth/oauth.js'
import { StreamStore } from './streams/store.js'
import { streamRoutes } from './streams/routes.js'
import { ssfRoutes } from './streams/ssf-routes.js'
import { ControlEvents } from './streams/control-events.js'
import { InactivitySweeper } from './streams/inactivity.js'
import { isPush, type StreamRecord } from './streams/model.js'
import { SubjectIndex } from './subjects/index-store.js'
import { PollService } from './delivery/poll.js'
import { Outbox } from './delivery/outbox.js'
import { Dispatcher, type SustainedFailureHandler } from './delivery/dispatcher.js'
import { createPushClient } from './delivery/push-client.js'
import { CHUNK as FAN_OUT_CHUNK, FanOut } from './ingest/fan-out.js'
import { ingestRoutes } from './ingest/routes.js'
import { adminRoutes } from './admin/routes.js'
import { createApp } from './http/app.js'
import { answerClientErrorsAsJson } from './http/client-errors.js'
import { EVENT_TYPES } from './events/catalog.js'
import { AgentRegistry, type AgentRecord } from './agents/registry.js'
import { agentRoutes } from './agents/routes.js'
import { AGENT_EVENT_TYPES } from './agents/events.js'
import { DEFAULT_CASCADE_POLICY, loadCascadePolicyFile } from './agents/cascade-policy.js'
import { retirementEvent } from './agents/retirement.js'
import { AGENT_SUBJECT_MEMBER } from './agents/subjects.js'
import { AuditLog } from './audit/log.js'
import { auditRoutes } from './audit/routes.js'
import { agentRegisteredEntry, agentRetiredEntry } from './audit/entries.js'
import { subjectKey } from './subjects/subject.js'
import { startUpstreams, upstreamOptions } from './upstream/index.js'
import type { ValidEvent } from './ingest/validate.js'
import { Metrics } from './ops/metrics.js'
import { stateGauges } from './ops/state-gauges.js'
import { opsRoutes, readiness } from './ops/health.js'
import { logDeliveries } from './ops/delivery-log.js'
import { closeWithin } from './ops/shutdown.js'
import { LoopLag } from './lib/loop-lag.js'
import { Admission } from './ingest/admission.js'
import { ActivityFeed } from './admin/activity-feed.js'
import { LIVE_EVENTS, consoleApiRoutes } from './console/routes.js'
import { consolePageRoutes } from './console/page.js'
import { overviewSnapshot } from './console/overview.js'

export interface Broker {
  /** Base URL the HTTP server answers on (not necessarily the issuer). */
  url: string
  port: number
  /** Set when this start generated the bootstrap admin token; shown once, never stored. */
  generatedAdminToken: string | undefined
  /** What this process does, as events (metrics, logs and the admin feed listen). */
  activity: Activity
  metrics: Metrics
  /**
   * Stops accepting, answers long polls, lets in-flight pushes and requests finish for up to
   * `graceSeconds` (default SSF_BROKER_SHUTDOWN_GRACE_SECONDS), then closes everything, each step bounded.
   */
  close(graceSeconds?: number): Promise<void>
}

/** A delivery loop that has not gone round for this long is stuck (it waits at most ~1 s per round). */
const DELIVERY_LOOP_STALE_MS = 15_000

/** Event types every stream may receive: the CAEP and RISC types an emitter can post. */
export const STREAM_EVENTS_SUPPORTED: readonly string[] = EVENT_TYPES.filter(
  (t) => t.ingestible,
).map((t) => t.uri)
/** The broker's agent event types: offered only to streams that request them. */
export const REQUEST_ONLY_EVENTS: readonly string[] = AGENT_EVENT_TYPES.map((t) => t.uri)

export async function startBroker(config: Config, log: Logger): Promise<Broker> {
  let embedded: EmbeddedRedis | undefined
  if (config.redisUrl === undefined && config.redisClusterNodes === undefined) {
    embedded = await startEmbeddedRedis(config.dataDir, { log })
    log.info('embedded redis-server running', { url: embedded.url })
  }
  const target: RedisTarget = config.redisClusterNodes
    ? { clusterNodes: config.redisClusterNodes }
    : { url: config.redisUrl ?? embedded!.url }
  const redis = connectRedis(target, 'main')
  logConnectionOutages(redis, log)
  await checkEvictionPolicy(redis, log)
  const ks = createKeyspace(config.redisPrefix)
  const activity = new Activity()

  const keys = new KeyStore(
    redis,
    config.keyRotationOverlapSeconds,
    ks,
    config.keyPublishAheadSeconds,
  )
  await keys.init()
  const clients = new ClientRegistry(redis, ks)
  const admin = new BootstrapAdmin(redis, config.adminToken, ks)
  const oauth = config.oauth ? new OAuthVerifier(config.oauth) : undefined
  const generatedAdminToken = await admin.init()
  const cascadePolicy = config.cascadePolicyFile
    ? loadCascadePolicyFile(config.cascadePolicyFile)
    : DEFAULT_CASCADE_POLICY
  const audit = new AuditLog(redis, {
    keyspace: ks,
    retentionSeconds: config.auditRetentionSeconds,
    onError: (err) => log.warn('audit write failed', { error: String(err) }),
  })
  const stopPruning = audit.startPruning()
  const agents = new AgentRegistry(redis, {
    maxExpiresIn: config.agentMaxExpiresInSeconds,
    maxChainDepth: config.agentMaxChainDepth,
    keyspace: ks,
  })
  const streams = new StreamStore(redis, ks)
  const routing = new RoutingCache(redis, ks, streams, log)
  await routing.start()
  const priorityTypes = new Set(config.priorityEventTypes)
  const outbox = new Outbox(redis, ks, config.streamBacklogMax, priorityTypes.size > 0)
  const scheduler = new Scheduler(redis, ks)
  const subjects = new SubjectIndex(redis, ks, (sid) => streams.exists(sid))
  const poll = new PollService(redis, ks, outbox, config, activity, audit)
  await poll.start()

  const pushClient = createPushClient({
    allowPrivate: config.allowPrivatePush,
    connectTimeoutMs: config.pushConnectTimeoutMs,
    requestTimeoutMs: config.pushTimeoutMs,
    maxResponseBytes: config.pushMaxResponseBytes,
    connectionsPerOrigin: Math.max(config.pushConcurrencyPerStream, 8),
    userAgent: 'ssf-broker/0.1',
  })
  // Late-bound: the dispatcher reports sustained failures to the stream lifecycle, built after it.
  let onSustainedFailure: SustainedFailureHandler = async () => {}
  const dispatcher = new Dispatcher(
    redis,
    ks,
    outbox,
    scheduler,
    routing,
    pushClient,
    config,
    log,
    activity,
    (...args) => onSustainedFailure(...args),
    audit,
  )
  await dispatcher.start()
  /** A stream has SETs to deliver: push streams are claimed or woken, long polls woken. */
  const schedule = async (stream: StreamRecord, endBackoff = false) =>
    isPush(stream) ? dispatcher.queued(stream, endBackoff) : poll.announce([stream.stream_id])
  // A control SET queued for a stream deleted meanwhile is removed with the rest of it.
  const control = new ControlEvents(config.issuer, keys, outbox, async (stream) => {
    await schedule(stream, true)
    await lifecycle.settle(stream.stream_id)
  })
  const lifecycle = new StreamLifecycle({
    streams,
    outbox,
    subjects,
    scheduler,
    control,
    pusher: pushClient,
    log,
    audit,
    maxStreamsPerClient: config.maxStreamsPerReceiver,
    schedule,
  })
  onSustainedFailure = (stream, since, lastError) =>
    lifecycle.disableAfterFailure(stream, since, lastError)
  const inactivity = new InactivitySweeper(
    redis,
    streams,
    lifecycle,
    ks.misc.inactivityLock,
    config.inactivityTimeoutSeconds,
    log,
  )
  inactivity.start()

  const fanOut = new FanOut({
    issuer: config.issuer,
    keys,
    routing,
    outbox,
    subjects,
    // Counted in events: as many single-event requests at once as the events of that many full chunks.
    limiter: new FairLimiter(config.fanOutConcurrency * FAN_OUT_CHUNK),
    priorityTypes,
    log,
    activity,
    cascade: { agents, policy: cascadePolicy },
    audit,
    queued: (stream, appending) =>
      isPush(stream)
        ? dispatcher.queuedWhile(stream, appending)
        : appending.then(() => poll.announce([stream.stream_id])),
    purge: (sid) => lifecycle.purge(sid),
  })
  const ingestLog = new IngestLog(redis, ks, INGEST_PARTITIONS, dispatcher.owner)
  await ingestLog.init()
  const ingest = new IngestPipeline(
    ingestLog,
    streams,
    routing,
    fanOut,
    log,
    activity,
    config.leaseMs,
  )
  ingest.start()
  const loopLag = new LoopLag()
  if (config.admissionLagMs > 0) loopLag.start()
  const admission = new Admission({
    lag: loopLag,
    limitMs: config.admissionLagMs,
    priorityTypes,
    busy: (types) => fanOut.busy(types),
    onShed: (events) => activity.emit('shed', { events, at: Date.now() }),
  })

  // A retired agent's subscribers are told by a session-revoked event about it, through the normal
  // (durable) ingest path, so it also cascades to the agents it delegated to.
  const onRetired = async (record: AgentRecord, reason: string) => {
    const notice = retirementEvent(record, reason)
    await ingest.accept(
      [
        {
          type: notice.type,
          family: 'caep',
          subject: notice.subject,
          sk: subjectKey(notice.subject),
          event: notice.event,
          txn: notice.txn,
        },
      ],
      'ssf-broker',
    )
    await agents.notified(record.agent_id)
    audit.submit(agentRetiredEntry(record, reason, notice.txn))
  }
  const stopExpirySweep = agents.startExpirySweep(onRetired, {
    onError: (err) => log.warn('agent expiry sweep failed', { error: String(err) }),
  })

  // Upstream transmitters' events enter through the same durable ingest path as POST /events.
  const acceptor = {
    accept: async (events: readonly ValidEvent[], clientId: string) =>
      (await ingest.accept(events, clientId)).map((e) => ({ txn: e.txn })),
  }
  const upstreams = startUpstreams({
    ...upstreamOptions(config),
    keys: ks,
    redis,
    log,
    audit,
    clients,
    admin,
    acceptor,
    defaultEventsRequested: STREAM_EVENTS_SUPPORTED,
    onUpstreamEvent: (upstreamId) =>
      activity.emit('upstream', { upstream_id: upstreamId, at: Date.now() }),
  })

  let closing: Promise<void> | undefined
  const ready = readiness({
    ping: () => redis.ping(),
    deliveryAlive: () =>
      dispatcher.loopAt > 0 && Date.now() - dispatcher.loopAt < DELIVERY_LOOP_STALE_MS,
    stopping: () => closing !== undefined,
  })
  const metrics = new Metrics(
    activity,
    stateGauges(streams, outbox),
    async () => (await ready()).ready,
    () => loopLag.ms,
  )
  const stopDeliveryLog = logDeliveries(activity, log)
  const feed = new ActivityFeed(activity)
  const live = new ActivityFeed(activity, LIVE_EVENTS)
  const ops = opsRoutes({
    ready,
    metrics,
    ...(config.metricsToken !== undefined ? { metricsToken: config.metricsToken } : {}),
  })

  const policy = {
    minVerificationInterval: config.minVerificationIntervalSeconds,
    inactivityTimeout: config.inactivityTimeoutSeconds,
  }
  const app = createApp({
    issuer: config.issuer,
    metadata: {
      defaultSubjects: config.defaultSubjects,
      criticalSubjectMembers: [AGENT_SUBJECT_MEMBER],
    },
    keys,
    log,
    ops,
    metrics,
    maxJsonDepth: config.maxJsonDepth,
    routes: [
      streamRoutes({
        issuer: config.issuer,
        eventsSupported: STREAM_EVENTS_SUPPORTED,
        requestOnlyEvents: REQUEST_ONLY_EVENTS,
        audit,
        allowPrivatePush: config.allowPrivatePush,
        defaultSubjects: config.defaultSubjects,
        policy,
        streams,
        lifecycle,
        backlogNote: async (sid) => {
          const { count, lastAt } = await outbox.dropped(sid)
          if (count === 0) return undefined
          return `backlog_dropped: ${count} oldest SETs dropped (more than ${config.streamBacklogMax} held), last at ${new Date(lastAt ?? Date.now()).toISOString()}`
        },
        clients,
        admin,
        ...(oauth ? { oauth } : {}),
      }),
      ssfRoutes({
        redis,
        keyspace: ks,
        streams,
        subjects,
        poll,
        control,
        clients,
        admin,
        ...(oauth ? { oauth } : {}),
        minVerificationIntervalSeconds: config.minVerificationIntervalSeconds,
      }),
      ingestRoutes({
        ingest,
        clients,
        admin,
        maxBodyBytes: config.maxEventBodyBytes,
        audit,
        admission,
      }),
      agentRoutes({
        registry: agents,
        clients,
        admin,
        onRetired,
        onRegistered: async (record, created) =>
          audit.submit(agentRegisteredEntry(record, created)),
        maxBodyBytes: 64 * 1024,
      }),
      auditRoutes({ audit, clients, admin }),
      adminRoutes({
        clients,
        admin,
        keys,
        streams,
        outbox,
        lifecycle,
        schedule: (stream) => schedule(stream, true),
        changeStatus: (stream, status, reason) =>
          lifecycle.setStatus(stream, status, reason, 'admin'),
        feed,
      }),
      consoleApiRoutes({ clients, admin, live, overview: () => overviewSnapshot(metrics, ready) }),
      consolePageRoutes(config.issuer),
      upstreams.routes,
    ],
  })
  const server = await new Promise<ServerType>((resolve, reject) => {
    const tls = config.tls
      ? {
          createServer: createHttpsServer,
          // RFC 9325: TLS 1.2 at least; Node negotiates 1.3 first when the client offers it.
          serverOptions: {
            cert: readFileSync(config.tls.certFile),
            key: readFileSync(config.tls.keyFile),
            minVersion: 'TLSv1.2' as const,
          },
        }
      : {}
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host, ...tls }, () =>
      resolve(s),
    )
    s.once('error', reject)
  })
  answerClientErrorsAsJson(server)
  const port = (server.address() as AddressInfo).port

  const close = (graceSeconds = config.shutdownGraceSeconds) =>
    (closing ??= (async () => {
      const graceMs = graceSeconds * 1000
      // Stop accepting; answer waiting long polls and live feeds at once.
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      const closeIdle = () =>
        'closeIdleConnections' in server ? server.closeIdleConnections() : undefined
      closeIdle()
      const idleTimer = setInterval(closeIdle, 50)
      inactivity.stop()
      stopExpirySweep()
      stopPruning()
      loopLag.stop()
      poll.stop()
      await upstreams.close()
      feed.closeAll()
      live.closeAll()
      // In-flight pushes and requests may finish within the grace period; the rest is redelivered later.
      await closeWithin(
        graceMs,
        [serverClosed, ingest.stop(graceMs), dispatcher.stop(graceMs)],
        log,
        'in-flight work',
      )
      clearInterval(idleTimer)
      if ('closeAllConnections' in server) server.closeAllConnections()
      // Each remaining close is bounded: with Redis unreachable none of them would ever finish.
      await closeWithin(
        1500,
        [pushClient.close(), audit.flush().catch(() => {})],
        log,
        'connections',
      )
      stopDeliveryLog()
      metrics.close()
      routing.stop()
      await closeWithin(300, [redis.quit().catch(() => {})], log, 'redis')
      redis.disconnect()
      if (embedded) await closeWithin(5000, [embedded.stop()], log, 'embedded redis')
    })())

  return {
    url: `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    generatedAdminToken,
    activity,
    metrics,
    close,
  }
}

async function checkEvictionPolicy(
  redis: ReturnType<typeof connectRedis>,
  log: Logger,
): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string]
    if (policy !== 'noeviction')
      log.warn('Redis maxmemory-policy is not noeviction: queued SETs could be evicted and lost', {
        policy,
      })
  } catch {
    // CONFIG may be disabled on managed Redis; nothing to check then.
  }
}
