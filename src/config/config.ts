/**
 * Broker configuration: one typed object, read from `SSF_BROKER_*` environment variables, checked at
 * start. An invalid value stops the broker with a message naming the variable.
 *
 * The table in README.md documents every variable; `CONFIG_VARIABLES` below is its single source.
 */
import { DEFAULT_PRIORITY_EVENT_TYPES, resolveEventTypeUri as resolveEventType } from '../events/priority.js'

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA'
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'ES256', 'EdDSA']

export interface Config {
  /** Broker processes to run (node:cluster workers sharing the port and the Redis). */
  processes: number
  port: number
  host: string
  issuer: string
  /** Unset (and no cluster): embedded mode (the broker runs its own redis-server under dataDir). */
  redisUrl: string | undefined
  /** Redis Cluster seed nodes; set instead of redisUrl. */
  redisClusterNodes: { host: string; port: number }[] | undefined
  /** Starts every Redis key the broker writes. */
  redisPrefix: string
  /** Event-type URIs handled ahead of all others (fan-out and each stream's queue). */
  priorityEventTypes: readonly string[]
  /** Most SETs one stream holds, whatever its status or method; the oldest are dropped beyond it. */
  streamBacklogMax: number
  dataDir: string
  adminToken: string | undefined
  allowPrivatePush: boolean
  keyRotationOverlapSeconds: number
  /** How long a rotated-in signing key is published in the JWKS before it signs. */
  keyPublishAheadSeconds: number
  /** Most streams one receiver client may hold. */
  maxStreamsPerReceiver: number
  /** Per stream, how many SETs may be in flight at once (distinct subjects only; see dispatcher). */
  pushConcurrencyPerStream: number
  fanOutConcurrency: number
  /** How many streams one broker process delivers to at the same time. */
  pushStreamsInFlight: number
  pushConnectTimeoutMs: number
  pushTimeoutMs: number
  pushMaxResponseBytes: number
  retryBaseMs: number
  retryMaxMs: number
  deliveryMaxAgeSeconds: number
  disableAfterFailingSeconds: number
  /** How long a broker process may hold a stream's delivery lease without renewing it. */
  leaseMs: number
  maxEventBodyBytes: number
  defaultSubjects: 'ALL' | 'NONE'
  minVerificationIntervalSeconds: number
  inactivityTimeoutSeconds: number
  pollMaxWaitSeconds: number
  pollRedeliverySeconds: number
  /** Deepest nesting of arrays/objects accepted in a JSON request body. */
  maxJsonDepth: number
  /** subjectFallback: take `sub` as the receiver when a token has no `client_id` (off by default). */
  oauth: { issuer: string; jwksUrl: string; audience: string; subjectFallback: boolean } | undefined
  tls: { certFile: string; keyFile: string } | undefined
  agentMaxExpiresInSeconds: number
  agentMaxChainDepth: number
  auditRetentionSeconds: number
  /** Seals stored upstream credentials (AES-256-GCM); unset: stored unsealed. */
  secretsKey: string | undefined
  /** Cascade policy JSON file (agents/cascade-policy.ts); unset: the built-in policy. */
  cascadePolicyFile: string | undefined
  logLevel: 'debug' | 'info' | 'warn' | 'error'
  /** Bearer token `GET /metrics` requires; unset: the endpoint is open. */
  metricsToken: string | undefined
  /** How long shutdown waits for in-flight pushes and requests before exiting. */
  shutdownGraceSeconds: number
}

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

interface VariableDoc {
  name: string
  default: string
  meaning: string
}

/** Every variable the broker reads, with its default and meaning (rendered into README.md). */
export const CONFIG_VARIABLES: readonly VariableDoc[] = [
  { name: 'SSF_BROKER_PORT', default: '8080', meaning: 'HTTP port to listen on.' },
  { name: 'SSF_BROKER_PROCESSES', default: '1', meaning: 'Broker processes to run on this machine, sharing the port and the Redis (each one ingests, fans out and delivers); a process that dies is replaced. Use up to one per core.' },
  { name: 'SSF_BROKER_HOST', default: '0.0.0.0', meaning: 'Address to listen on.' },
  {
    name: 'SSF_BROKER_ISSUER',
    default: 'http://localhost:<port>',
    meaning: 'Transmitter issuer: `issuer` in metadata and `iss` of every SET, byte for byte. No query or fragment.',
  },
  {
    name: 'SSF_BROKER_REDIS_URL',
    default: '(unset: embedded)',
    meaning: 'Redis URL (`redis://`, `rediss://`, or `unix:///path`). Unset: the broker starts its own `redis-server` from PATH on a unix socket under the data directory, with AOF persistence, and stops it on exit.',
  },
  {
    name: 'SSF_BROKER_REDIS_CLUSTER_NODES',
    default: '(unset)',
    meaning: 'Redis Cluster seed nodes, `host:port,host:port,...`: the broker runs on that cluster (every multi-key operation stays in one hash slot). Not together with SSF_BROKER_REDIS_URL.',
  },
  { name: 'SSF_BROKER_REDIS_PREFIX', default: 'ssf', meaning: 'Starts every Redis key the broker writes (BullMQ\'s included), so several brokers can share one Redis. Letters, digits, `_`, `-`, `.`, `:`.' },
  { name: 'SSF_BROKER_DATA_DIR', default: './.ssf-broker', meaning: 'Directory for the embedded Redis (socket, AOF files, log, and `broker.pid` naming the broker that owns it; a second broker on the same directory is refused).' },
  {
    name: 'SSF_BROKER_ADMIN_TOKEN',
    default: '(unset: generated)',
    meaning: 'Bootstrap admin bearer token (at least 32 characters). Unset: generated at first start, printed once, only its hash is kept.',
  },
  {
    name: 'SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH',
    default: 'false',
    meaning: '`true` permits `http:` push endpoints and loopback/private/link-local targets. For development and tests only; logs a warning.',
  },
  { name: 'SSF_BROKER_KEY_ROTATION_OVERLAP_SECONDS', default: '604800', meaning: 'How long a rotated-out signing key stays published in the JWKS.' },
  {
    name: 'SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS',
    default: '60',
    meaning: 'How long `POST /admin/keys/rotate` publishes a new signing key in the JWKS before SETs are signed with it, so receivers that cache the JWKS already hold it. `{"immediate": true}` rotates at once.',
  },
  { name: 'SSF_BROKER_MAX_STREAMS_PER_RECEIVER', default: '100', meaning: 'Most streams one receiver client may hold; the next create is refused with 409 `stream_limit_exceeded`.' },
  { name: 'SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM', default: '16', meaning: 'SETs in flight per push stream. SETs about the same subject are always sent one after another, in order.' },
  { name: 'SSF_BROKER_FANOUT_CONCURRENCY', default: '32', meaning: 'Chunks of up to 64 events (of `POST /events` requests) one broker process turns into SETs at once; requests take turns, and chunks holding a priority event type go first.' },
  { name: 'SSF_BROKER_PUSH_STREAMS_IN_FLIGHT', default: '256', meaning: 'Push streams one broker process serves at once.' },
  { name: 'SSF_BROKER_PUSH_CONNECT_TIMEOUT_MS', default: '5000', meaning: 'Connect timeout for push requests.' },
  { name: 'SSF_BROKER_PUSH_TIMEOUT_MS', default: '10000', meaning: 'Timeout for a receiver to send response headers, and again for the body.' },
  { name: 'SSF_BROKER_PUSH_MAX_RESPONSE_BYTES', default: '65536', meaning: 'Largest receiver response body read.' },
  { name: 'SSF_BROKER_RETRY_BASE_MS', default: '500', meaning: 'First retry delay after a transient push failure; doubles per attempt, with ±20% jitter.' },
  { name: 'SSF_BROKER_RETRY_MAX_MS', default: '2000', meaning: 'Longest delay between retries (a `Retry-After` up to one hour is honoured). While a stream is failing, each retry sends a single SET as a probe, so a receiver that stays down sees one request per stream per this interval, and one that recovers gets its backlog within about this long.' },
  { name: 'SSF_BROKER_DELIVERY_MAX_AGE_SECONDS', default: '259200', meaning: 'A SET still undelivered this long after its first attempt goes to the dead-letter list.' },
  { name: 'SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS', default: '259200', meaning: 'A push stream whose deliveries have failed without a break for this long is disabled, with the last error and since when as its status reason (a stream-updated event is attempted first). 0 turns it off.' },
  {
    name: 'SSF_BROKER_STREAM_BACKLOG_MAX',
    default: '100000',
    meaning: 'Most SETs one stream holds, whatever its status or delivery method; beyond it the oldest are dropped, counted in the stream\'s status `reason` and written to the audit trail.',
  },
  { name: 'SSF_BROKER_PAUSED_BUFFER_MAX', default: '(unset)', meaning: 'Deprecated: the paused buffer is now SSF_BROKER_STREAM_BACKLOG_MAX. When set (and that is not), it is used as the backlog bound.' },
  {
    name: 'SSF_BROKER_PRIORITY_EVENT_TYPES',
    default: '(revocations, see Delivery semantics)',
    meaning: 'Comma list of event-type URIs or aliases (`caep/session-revoked`) handled ahead of all others, in fan-out and in each stream\'s queue; never ahead of an earlier SET about the same subject. Empty: no priority lane.',
  },
  { name: 'SSF_BROKER_LEASE_MS', default: '3000', meaning: 'Delivery lease per stream. A crashed process\'s streams are taken over by another process after this long.' },
  { name: 'SSF_BROKER_MAX_EVENT_BODY_BYTES', default: '1048576', meaning: 'Largest accepted `POST /events` body.' },
  { name: 'SSF_BROKER_MAX_JSON_DEPTH', default: '32', meaning: 'Deepest nesting of arrays and objects accepted anywhere in a JSON request body; deeper bodies get 400 before any work.' },
  { name: 'SSF_BROKER_DEFAULT_SUBJECTS', default: 'ALL', meaning: '`ALL`: a new stream receives events about every subject until the receiver removes some; `NONE`: only subjects the receiver adds. Advertised as `default_subjects`.' },
  { name: 'SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS', default: '15', meaning: 'Shortest interval between verification requests per stream; faster requests get 429.' },
  { name: 'SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS', default: '2592000', meaning: 'A stream with no management call (or poll, for poll streams) for this long is paused, and told so by a stream-updated event. 0 turns it off.' },
  { name: 'SSF_BROKER_POLL_MAX_WAIT_SECONDS', default: '30', meaning: 'Longest time a long-poll request is held open when no SET is available.' },
  { name: 'SSF_BROKER_POLL_REDELIVERY_SECONDS', default: '30', meaning: 'A polled SET not acknowledged within this time is handed out again.' },
  { name: 'SSF_BROKER_OAUTH_ISSUER', default: '(unset)', meaning: 'Issuer of OAuth 2.0 JWT access tokens accepted besides the broker\'s own client tokens. Set together with the JWKS URL and audience.' },
  { name: 'SSF_BROKER_OAUTH_JWKS_URL', default: '(unset)', meaning: 'JWKS URL of that authorization server.' },
  { name: 'SSF_BROKER_OAUTH_AUDIENCE', default: '(unset)', meaning: 'Required `aud` of those access tokens (usually the broker\'s issuer URL).' },
  {
    name: 'SSF_BROKER_OAUTH_SUBJECT_FALLBACK',
    default: 'false',
    meaning: '`true`: an access token without a `client_id` claim is taken as the receiver named by its `sub`. Only safe when the authorization server never issues a token (a user\'s, say) whose `sub` can equal a receiver\'s client id: such a token would act as that receiver. Off: tokens without `client_id` get 401.',
  },
  { name: 'SSF_BROKER_TLS_CERT_FILE', default: '(unset)', meaning: 'PEM certificate chain: with the key file, the broker serves HTTPS itself (TLS 1.2 minimum, 1.3 preferred).' },
  { name: 'SSF_BROKER_TLS_KEY_FILE', default: '(unset)', meaning: 'PEM private key for SSF_BROKER_TLS_CERT_FILE.' },
  { name: 'SSF_BROKER_AGENT_MAX_EXPIRES_IN_SECONDS', default: '86400', meaning: 'Longest `expires_in` an agent registration may ask for (`POST /agents`).' },
  { name: 'SSF_BROKER_AGENT_MAX_CHAIN_DEPTH', default: '8', meaning: 'Most agents in one delegation chain (user → A → B → C is 3); deeper registrations are refused.' },
  { name: 'SSF_BROKER_CASCADE_POLICY_FILE', default: '(unset: built-in)', meaning: 'JSON file replacing the cascade policy: which event types about a principal reach the agents acting for it, and as what (see docs/agents.md).' },
  { name: 'SSF_BROKER_SECRETS_KEY', default: '(unset)', meaning: 'Secret (at least 32 characters) that seals the credentials stored for upstream transmitters (`POST /admin/upstreams`) with AES-256-GCM. Unset: they are stored unsealed in Redis, and still never returned or logged. Keep it stable: sealed credentials need the same key.' },
  { name: 'SSF_BROKER_AUDIT_RETENTION_SECONDS', default: '7776000', meaning: 'How long audit records are kept.' },
  { name: 'SSF_BROKER_LOG_LEVEL', default: 'info', meaning: '`debug` (adds a line per delivered SET), `info` (lifecycle), `warn` (adds failed push attempts, dead letters) or `error`.' },
  { name: 'SSF_BROKER_METRICS_TOKEN', default: '(unset: open)', meaning: 'Bearer token required by `GET /metrics`. Unset: the endpoint answers anyone who can reach it.' },
  { name: 'SSF_BROKER_SHUTDOWN_GRACE_SECONDS', default: '10', meaning: 'On SIGTERM/SIGINT: how long in-flight pushes and requests may take before the process exits anyway (what is left is redelivered). The process is gone within this plus 2 s, even with Redis unreachable.' },
  { name: 'SSF_BROKER_URL', default: '(unset)', meaning: 'Used by the `ssf-broker` client commands (the broker\'s base URL); the server ignores it.' },
  { name: 'SSF_BROKER_TOKEN', default: '(unset)', meaning: 'Used by the `ssf-broker` client commands (bearer token); the server ignores it.' },
]

type Env = Record<string, string | undefined>

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function bool(env: Env, name: string): boolean {
  const raw = env[name]
  if (raw === undefined || raw === '' || raw === 'false' || raw === '0') return false
  if (raw === 'true' || raw === '1') return true
  throw new ConfigError(name, `must be "true" or "false", got "${raw}"`)
}

function issuerFrom(env: Env, port: number): string {
  const raw = env.SSF_BROKER_ISSUER
  if (raw === undefined || raw === '') return `http://localhost:${port}`
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError('SSF_BROKER_ISSUER', `is not a URL: "${raw}"`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('SSF_BROKER_ISSUER', 'must be an https (or, for development, http) URL')
  if (url.search || url.hash || raw.includes('?') || raw.includes('#')) throw new ConfigError('SSF_BROKER_ISSUER', 'must not have a query or fragment')
  // The issuer is compared byte for byte (SSF §7.2): keep it exactly as given, minus a trailing slash.
  return raw.replace(/\/+$/, '')
}

function clusterNodesFrom(env: Env): { host: string; port: number }[] | undefined {
  const raw = env.SSF_BROKER_REDIS_CLUSTER_NODES
  if (raw === undefined || raw.trim() === '') return undefined
  return raw.split(',').map((entry) => {
    const m = /^\s*(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(entry)
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new ConfigError('SSF_BROKER_REDIS_CLUSTER_NODES', `expected host:port[,host:port...], got "${entry}"`)
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
  })
}

function priorityTypesFrom(env: Env): readonly string[] {
  const raw = env.SSF_BROKER_PRIORITY_EVENT_TYPES
  if (raw === undefined) return DEFAULT_PRIORITY_EVENT_TYPES
  const out: string[] = []
  for (const entry of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const uri = resolveEventType(entry)
    if (uri === undefined) throw new ConfigError('SSF_BROKER_PRIORITY_EVENT_TYPES', `unknown event type "${entry}" (a full URI or an alias such as caep/session-revoked)`)
    out.push(uri)
  }
  return out
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'SSF_BROKER_PORT', 8080, 0, 65535)
  const redisUrl = env.SSF_BROKER_REDIS_URL || undefined
  if (redisUrl !== undefined && !/^(rediss?|unix):\/\//.test(redisUrl)) {
    throw new ConfigError('SSF_BROKER_REDIS_URL', 'must start with redis://, rediss:// or unix://')
  }
  const redisClusterNodes = clusterNodesFrom(env)
  if (redisClusterNodes !== undefined && redisUrl !== undefined) {
    throw new ConfigError('SSF_BROKER_REDIS_URL', 'must be unset when SSF_BROKER_REDIS_CLUSTER_NODES is set (one or the other)')
  }
  const redisPrefix = env.SSF_BROKER_REDIS_PREFIX || 'ssf'
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(redisPrefix)) throw new ConfigError('SSF_BROKER_REDIS_PREFIX', 'must be 1 to 64 letters, digits, "_", "-", "." or ":" (no braces: hash tags are the broker\'s)')
  const adminToken = env.SSF_BROKER_ADMIN_TOKEN || undefined
  if (adminToken !== undefined && adminToken.length < 32) {
    throw new ConfigError('SSF_BROKER_ADMIN_TOKEN', 'must be at least 32 characters')
  }
  const secretsKey = env.SSF_BROKER_SECRETS_KEY || undefined
  if (secretsKey !== undefined && secretsKey.length < 32) throw new ConfigError('SSF_BROKER_SECRETS_KEY', 'must be at least 32 characters')
  const logLevel = env.SSF_BROKER_LOG_LEVEL || 'info'
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new ConfigError('SSF_BROKER_LOG_LEVEL', `must be debug, info, warn or error, got "${logLevel}"`)
  }
  const retryBaseMs = int(env, 'SSF_BROKER_RETRY_BASE_MS', 500, 1, 3_600_000)
  const retryMaxMs = int(env, 'SSF_BROKER_RETRY_MAX_MS', 2000, 1, 86_400_000)
  if (retryMaxMs < retryBaseMs) throw new ConfigError('SSF_BROKER_RETRY_MAX_MS', 'must not be less than SSF_BROKER_RETRY_BASE_MS')
  const defaultSubjects = env.SSF_BROKER_DEFAULT_SUBJECTS || 'ALL'
  if (defaultSubjects !== 'ALL' && defaultSubjects !== 'NONE') throw new ConfigError('SSF_BROKER_DEFAULT_SUBJECTS', `must be ALL or NONE, got "${defaultSubjects}"`)
  const oauthVars = ['SSF_BROKER_OAUTH_ISSUER', 'SSF_BROKER_OAUTH_JWKS_URL', 'SSF_BROKER_OAUTH_AUDIENCE'] as const
  const oauthSet = oauthVars.filter((name) => env[name])
  if (oauthSet.length > 0 && oauthSet.length < oauthVars.length) {
    throw new ConfigError(oauthVars.find((name) => !env[name])!, 'must be set together with the other SSF_BROKER_OAUTH_* variables')
  }
  if (env.SSF_BROKER_OAUTH_JWKS_URL) {
    try {
      new URL(env.SSF_BROKER_OAUTH_JWKS_URL)
    } catch {
      throw new ConfigError('SSF_BROKER_OAUTH_JWKS_URL', 'is not a URL')
    }
  }
  if (Boolean(env.SSF_BROKER_TLS_CERT_FILE) !== Boolean(env.SSF_BROKER_TLS_KEY_FILE)) {
    throw new ConfigError(env.SSF_BROKER_TLS_CERT_FILE ? 'SSF_BROKER_TLS_KEY_FILE' : 'SSF_BROKER_TLS_CERT_FILE', 'must be set together with its pair')
  }
  const known = new Set(CONFIG_VARIABLES.map((v) => v.name))
  for (const name of Object.keys(env)) {
    if (name.startsWith('SSF_BROKER_') && !known.has(name)) throw new ConfigError(name, 'is not a known setting (see README)')
  }
  return Object.freeze({
    processes: int(env, 'SSF_BROKER_PROCESSES', 1, 1, 64),
    port,
    host: env.SSF_BROKER_HOST || '0.0.0.0',
    issuer: issuerFrom(env, port),
    redisUrl,
    redisClusterNodes,
    redisPrefix,
    priorityEventTypes: priorityTypesFrom(env),
    streamBacklogMax: int(env, 'SSF_BROKER_STREAM_BACKLOG_MAX', env.SSF_BROKER_PAUSED_BUFFER_MAX ? int(env, 'SSF_BROKER_PAUSED_BUFFER_MAX', 10_000, 1, 10_000_000) : 100_000, 1, 10_000_000),
    dataDir: env.SSF_BROKER_DATA_DIR || './.ssf-broker',
    adminToken,
    allowPrivatePush: bool(env, 'SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH'),
    keyRotationOverlapSeconds: int(env, 'SSF_BROKER_KEY_ROTATION_OVERLAP_SECONDS', 604_800, 0, 31_536_000),
    keyPublishAheadSeconds: int(env, 'SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS', 60, 0, 86_400),
    maxStreamsPerReceiver: int(env, 'SSF_BROKER_MAX_STREAMS_PER_RECEIVER', 100, 1, 1_000_000),
    pushConcurrencyPerStream: int(env, 'SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM', 16, 1, 256),
    fanOutConcurrency: int(env, 'SSF_BROKER_FANOUT_CONCURRENCY', 32, 1, 1024),
    pushStreamsInFlight: int(env, 'SSF_BROKER_PUSH_STREAMS_IN_FLIGHT', 256, 1, 10_000),
    pushConnectTimeoutMs: int(env, 'SSF_BROKER_PUSH_CONNECT_TIMEOUT_MS', 5000, 1, 60_000),
    pushTimeoutMs: int(env, 'SSF_BROKER_PUSH_TIMEOUT_MS', 10_000, 1, 120_000),
    pushMaxResponseBytes: int(env, 'SSF_BROKER_PUSH_MAX_RESPONSE_BYTES', 65_536, 1024, 10_485_760),
    retryBaseMs,
    retryMaxMs,
    deliveryMaxAgeSeconds: int(env, 'SSF_BROKER_DELIVERY_MAX_AGE_SECONDS', 259_200, 1, 31_536_000),
    disableAfterFailingSeconds: int(env, 'SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS', 259_200, 0, 31_536_000),
    leaseMs: int(env, 'SSF_BROKER_LEASE_MS', 3000, 500, 600_000),
    maxEventBodyBytes: int(env, 'SSF_BROKER_MAX_EVENT_BODY_BYTES', 1_048_576, 1024, 67_108_864),
    maxJsonDepth: int(env, 'SSF_BROKER_MAX_JSON_DEPTH', 32, 2, 1000),
    defaultSubjects,
    minVerificationIntervalSeconds: int(env, 'SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS', 15, 0, 86_400),
    inactivityTimeoutSeconds: int(env, 'SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS', 2_592_000, 0, 31_536_000),
    pollMaxWaitSeconds: int(env, 'SSF_BROKER_POLL_MAX_WAIT_SECONDS', 30, 0, 300),
    pollRedeliverySeconds: int(env, 'SSF_BROKER_POLL_REDELIVERY_SECONDS', 30, 1, 86_400),
    oauth: env.SSF_BROKER_OAUTH_ISSUER
      ? { issuer: env.SSF_BROKER_OAUTH_ISSUER, jwksUrl: env.SSF_BROKER_OAUTH_JWKS_URL!, audience: env.SSF_BROKER_OAUTH_AUDIENCE!, subjectFallback: bool(env, 'SSF_BROKER_OAUTH_SUBJECT_FALLBACK') }
      : undefined,
    tls: env.SSF_BROKER_TLS_CERT_FILE ? { certFile: env.SSF_BROKER_TLS_CERT_FILE, keyFile: env.SSF_BROKER_TLS_KEY_FILE! } : undefined,
    agentMaxExpiresInSeconds: int(env, 'SSF_BROKER_AGENT_MAX_EXPIRES_IN_SECONDS', 86_400, 1, 31_536_000),
    agentMaxChainDepth: int(env, 'SSF_BROKER_AGENT_MAX_CHAIN_DEPTH', 8, 1, 64),
    auditRetentionSeconds: int(env, 'SSF_BROKER_AUDIT_RETENTION_SECONDS', 7_776_000, 60, 315_360_000),
    cascadePolicyFile: env.SSF_BROKER_CASCADE_POLICY_FILE || undefined,
    secretsKey,
    logLevel: logLevel as Config['logLevel'],
    metricsToken: env.SSF_BROKER_METRICS_TOKEN || undefined,
    shutdownGraceSeconds: int(env, 'SSF_BROKER_SHUTDOWN_GRACE_SECONDS', 10, 0, 3600),
  })
}
