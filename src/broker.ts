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
import { connectRedis } from './redis/connection.js'
import { KeyStore } from './keys/keystore.js'
import { BootstrapAdmin, ClientRegistry } from './auth/clients.js'
import { OAuthVerifier } from './auth/oauth.js'
import { StreamStore } from './streams/store.js'
import { setStatus, streamRoutes } from './streams/routes.js'
import { ssfRoutes } from './streams/ssf-routes.js'
import { ControlEvents } from './streams/control-events.js'
import { InactivitySweeper } from './streams/inactivity.js'
import { isPush, type PushDelivery, type StreamRecord } from './streams/model.js'
import { SubjectIndex } from './subjects/index-store.js'
import { PollService } from './delivery/poll.js'
import { Outbox } from './delivery/outbox.js'
import { Dispatcher, type SustainedFailureHandler } from './delivery/dispatcher.js'
import { createPushClient } from './delivery/push-client.js'
import { FanOut } from './ingest/fan-out.js'
import { createFanOutWorker, createIngestQueue } from './ingest/queue.js'
import { ingestRoutes } from './ingest/routes.js'
import { adminRoutes } from './admin/routes.js'
import { createApp } from './http/app.js'
import { answerClientErrorsAsJson } from './http/client-errors.js'
import { EVENT_TYPES, EVENT_URIS } from './events/catalog.js'
import { AgentRegistry, type AgentRecord } from './agents/registry.js'
import { agentRoutes } from './agents/routes.js'
import { AGENT_EVENT_TYPES } from './agents/events.js'
import { DEFAULT_CASCADE_POLICY, loadCascadePolicyFile } from './agents/cascade-policy.js'
import { retirementEvent } from './agents/retirement.js'
import { AGENT_SUBJECT_MEMBER } from './agents/subjects.js'
import { AuditLog } from './audit/log.js'
import { auditRoutes } from './audit/routes.js'
import { agentRegisteredEntry, agentRetiredEntry } from './audit/entries.js'
import { enqueueEvents } from './ingest/enqueue.js'
import { subjectKey } from './subjects/subject.js'

export interface Broker {
  /** Base URL the HTTP server answers on (not necessarily the issuer). */
  url: string
  port: number
  /** Set when this start generated the bootstrap admin token; shown once, never stored. */
  generatedAdminToken: string | undefined
  close(): Promise<void>
}

/** Event types every stream may receive: the CAEP and RISC types an emitter can post. */
export const STREAM_EVENTS_SUPPORTED: readonly string[] = EVENT_TYPES.filter((t) => t.ingestible).map((t) => t.uri)
/** The broker's agent event types: offered only to streams that request them. */
export const REQUEST_ONLY_EVENTS: readonly string[] = AGENT_EVENT_TYPES.map((t) => t.uri)

export async function startBroker(config: Config, log: Logger): Promise<Broker> {
  let embedded: EmbeddedRedis | undefined
  if (config.redisUrl === undefined) {
    embedded = await startEmbeddedRedis(config.dataDir, { log })
    log.info('embedded redis-server running', { url: embedded.url })
  }
  const redisUrl = config.redisUrl ?? embedded!.url
  const redis = connectRedis(redisUrl, 'main')
  await checkEvictionPolicy(redis, log)

  const keys = new KeyStore(redis, config.keyRotationOverlapSeconds)
  await keys.init()
  const clients = new ClientRegistry(redis)
  const admin = new BootstrapAdmin(redis, config.adminToken)
  const oauth = config.oauth ? new OAuthVerifier(config.oauth) : undefined
  const generatedAdminToken = await admin.init()
  const cascadePolicy = config.cascadePolicyFile ? loadCascadePolicyFile(config.cascadePolicyFile) : DEFAULT_CASCADE_POLICY
  const audit = new AuditLog(redis, { retentionSeconds: config.auditRetentionSeconds, onError: (err) => log.warn('audit write failed', { error: String(err) }) })
  const stopPruning = audit.startPruning()
  const agents = new AgentRegistry(redis, { maxExpiresIn: config.agentMaxExpiresInSeconds, maxChainDepth: config.agentMaxChainDepth })
  const streams = new StreamStore(redis)
  const outbox = new Outbox(redis, config.pausedBufferMax)
  const subjects = new SubjectIndex(redis)
  const poll = new PollService(redis, outbox, config, audit)
  await poll.start()

  const pushClient = createPushClient({
    allowPrivate: config.allowPrivatePush,
    connectTimeoutMs: config.pushConnectTimeoutMs,
    requestTimeoutMs: config.pushTimeoutMs,
    maxResponseBytes: config.pushMaxResponseBytes,
    connectionsPerOrigin: Math.max(config.pushConcurrencyPerStream, 8),
    userAgent: 'ssf-broker/0.1',
  })
  // Late-bound: the dispatcher reports sustained failures to stream lifecycle code built after it.
  let onSustainedFailure: SustainedFailureHandler = async () => {}
  const dispatcher = new Dispatcher(redis, outbox, streams, pushClient, config, log, (...args) => onSustainedFailure(...args), audit)
  await dispatcher.start()
  const wake = () => dispatcher.announce()
  const notify = (stream: StreamRecord) => (isPush(stream) ? dispatcher.announce() : poll.announce([stream.stream_id]))
  const control = new ControlEvents(config.issuer, keys, outbox, redis, notify)
  const statusDeps = { streams, outbox, wake, audit }
  onSustainedFailure = async (stream, since, lastError) => {
    const reason = `disabled after sustained delivery failure: failing since ${new Date(since).toISOString()}, last error ${lastError}`
    // Tell the receiver first (SSF §8.1.5), with one direct attempt: its queue is about to be dropped.
    const set = await control.sign(stream, EVENT_URIS.streamUpdated, { status: 'disabled', reason })
    const delivery = stream.delivery as PushDelivery
    await pushClient.push({ url: delivery.endpoint_url, set, ...(delivery.authorization_header !== undefined ? { authorization: delivery.authorization_header } : {}) })
    const current = await streams.get(stream.stream_id)
    if (current && current.status !== 'disabled') await setStatus(statusDeps, current, 'disabled', reason, 'broker')
  }
  const inactivity = new InactivitySweeper(redis, streams, control, statusDeps, config.inactivityTimeoutSeconds, log)
  inactivity.start()

  const fanOut = new FanOut(config.issuer, keys, streams, outbox, subjects, log, { agents, policy: cascadePolicy }, audit, () => dispatcher.wake())
  const queue = createIngestQueue(redisUrl)

  // A retired agent's subscribers are told by a session-revoked event about it, through the normal
  // (durable) ingest path, so it also cascades to the agents it delegated to.
  const onRetired = async (record: AgentRecord, reason: string) => {
    const notice = retirementEvent(record, reason)
    await enqueueEvents(redis, queue, [{ type: notice.type, family: 'caep', subject: notice.subject, sk: subjectKey(notice.subject), event: notice.event, txn: notice.txn }], 'ssf-broker')
    await agents.notified(record.agent_id)
    audit.submit(agentRetiredEntry(record, reason, notice.txn))
  }
  const stopExpirySweep = agents.startExpirySweep(onRetired, { onError: (err) => log.warn('agent expiry sweep failed', { error: String(err) }) })
  const worker = createFanOutWorker(config, redisUrl, async (job) => {
    const { pushQueued, pollStreams } = await fanOut.run(job.events)
    await Promise.all([pushQueued > 0 ? dispatcher.announce() : undefined, poll.announce(pollStreams)])
  })
  worker.on('error', (err) => log.warn('fan-out worker error', { error: String(err) }))
  worker.on('failed', (job, err) => log.error('fan-out job failed', { job_id: job?.id, attempts: job?.attemptsMade, error: String(err) }))

  const policy = { minVerificationInterval: config.minVerificationIntervalSeconds, inactivityTimeout: config.inactivityTimeoutSeconds }
  const app = createApp({
    issuer: config.issuer,
    metadata: { defaultSubjects: config.defaultSubjects, criticalSubjectMembers: [AGENT_SUBJECT_MEMBER] },
    keys,
    log,
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
        outbox,
        subjects,
        clients,
        admin,
        ...(oauth ? { oauth } : {}),
        wake,
      }),
      ssfRoutes({ redis, streams, subjects, poll, control, clients, admin, ...(oauth ? { oauth } : {}), minVerificationIntervalSeconds: config.minVerificationIntervalSeconds }),
      ingestRoutes({ redis, queue, clients, admin, maxBodyBytes: config.maxEventBodyBytes, audit }),
      agentRoutes({
        registry: agents,
        clients,
        admin,
        onRetired,
        onRegistered: async (record, created) => audit.submit(agentRegisteredEntry(record, created)),
        maxBodyBytes: 64 * 1024,
      }),
      auditRoutes({ audit, clients, admin }),
      adminRoutes({ clients, admin, keys, streams, outbox, wake }),
    ],
  })
  const server = await new Promise<ServerType>((resolve, reject) => {
    const tls = config.tls
      ? {
          createServer: createHttpsServer,
          // RFC 9325: TLS 1.2 at least; Node negotiates 1.3 first when the client offers it.
          serverOptions: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), minVersion: 'TLSv1.2' as const },
        }
      : {}
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host, ...tls }, () => resolve(s))
    s.once('error', reject)
  })
  answerClientErrorsAsJson(server)
  const port = (server.address() as AddressInfo).port

  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      inactivity.stop()
      stopExpirySweep()
      stopPruning()
      poll.stop()
      if ('closeAllConnections' in server) server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await worker.close()
      await dispatcher.stop()
      await queue.close()
      await pushClient.close()
      await audit.flush().catch(() => {})
      await redis.quit().catch(() => redis.disconnect())
      await embedded?.stop()
    })())

  return { url: `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, generatedAdminToken, close }
}

async function checkEvictionPolicy(redis: ReturnType<typeof connectRedis>, log: Logger): Promise<void> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string]
    if (policy !== 'noeviction') log.warn('Redis maxmemory-policy is not noeviction: queued SETs could be evicted and lost', { policy })
  } catch {
    // CONFIG may be disabled on managed Redis; nothing to check then.
  }
}
