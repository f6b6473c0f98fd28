/**
 * Broker configuration: one typed object, read from `SSF_BROKER_*` environment variables by one zod
 * schema, checked at start. An invalid value stops the broker with a message naming the variable.
 *
 * `VARIABLES` below is the single source of every variable: its schema, its default (written once, in
 * the schema's helper) and its meaning; the README table (`CONFIG_VARIABLES`) is rendered from it.
 */
import { z } from 'zod'
import {
  DEFAULT_PRIORITY_EVENT_TYPES,
  resolveEventTypeUri as resolveEventType,
} from '../events/priority.js'

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
  /** Smoothed event-loop lag (ms) beyond which normal-priority ingest is refused with 503; 0: never. */
  admissionLagMs: number
  /** Most SETs one stream holds, whatever its status or method; the oldest are dropped beyond it. */
  streamBacklogMax: number
  dataDir: string
  adminToken: string | undefined
  allowPrivatePush: boolean
  keyRotationOverlapSeconds: number
  keyPublishAheadSeconds: number
  maxStreamsPerReceiver: number
  /** Per stream, how many SETs may be in flight at once (distinct subjects only; see dispatcher). */
  pushConcurrencyPerStream: number
  fanOutConcurrency: number
  /** How many streams one broker process delivers to at the same time. */
  pushStreamsInFlight: number
  /** How long an idle push stream's lease is kept for SETs queued next (ms; 0: let go at once). */
  pushLingerMs: number
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
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

interface VariableDoc {
  name: string
  default: string
  meaning: string
}

/** A variable's schema (from its raw environment value) and the default shown in the README. */
interface Variable<T> {
  schema: z.ZodType<T, string | undefined>
  default: string
}

/** Empty counts as unset for every variable but SSF_BROKER_PRIORITY_EVENT_TYPES. */
const raw = () =>
  z
    .string()
    .optional()
    .transform((value) => (value === '' ? undefined : value))

function fail(ctx: z.RefinementCtx, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message })
  return z.NEVER
}

function whole(value: string, ctx: z.RefinementCtx, min: number, max: number): number {
  if (!/^\d+$/.test(value)) return fail(ctx, `must be a whole number, got "${value}"`)
  const n = Number(value)
  if (n < min || n > max) return fail(ctx, `must be between ${min} and ${max}, got ${n}`)
  return n
}

function int(fallback: number, min: number, max: number): Variable<number> {
  return {
    schema: raw().transform((value, ctx) =>
      value === undefined ? fallback : whole(value, ctx, min, max),
    ),
    default: String(fallback),
  }
}

function optionalInt(min: number, max: number, shown = '(unset)'): Variable<number | undefined> {
  return {
    schema: raw().transform((value, ctx) =>
      value === undefined ? undefined : whole(value, ctx, min, max),
    ),
    default: shown,
  }
}

function bool(): Variable<boolean> {
  return {
    schema: raw().transform((value, ctx) => {
      if (value === undefined || value === 'false' || value === '0') return false
      if (value === 'true' || value === '1') return true
      return fail(ctx, `must be "true" or "false", got "${value}"`)
    }),
    default: 'false',
  }
}

function text(fallback: string): Variable<string> {
  return { schema: raw().transform((value) => value ?? fallback), default: fallback }
}

function optionalText(
  shown = '(unset)',
  check?: (value: string) => string | undefined,
): Variable<string | undefined> {
  return {
    schema: raw().transform((value, ctx) => {
      const problem = value === undefined ? undefined : check?.(value)
      return problem ? fail(ctx, problem) : value
    }),
    default: shown,
  }
}

function oneOf<T extends string>(
  fallback: T,
  values: readonly T[],
  problem: (value: string) => string,
): Variable<T> {
  return {
    schema: raw().transform((value, ctx) =>
      value === undefined
        ? fallback
        : values.includes(value as T)
          ? (value as T)
          : fail(ctx, problem(value)),
    ),
    default: fallback,
  }
}

const atLeast32 = (value: string) =>
  value.length < 32 ? 'must be at least 32 characters' : undefined

function issuer(): Variable<string | undefined> {
  return optionalText('http://localhost:<port>', (value) => {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return `is not a URL: "${value}"`
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      return 'must be an https (or, for development, http) URL'
    if (url.search || url.hash || value.includes('?') || value.includes('#'))
      return 'must not have a query or fragment'
    return undefined
  })
}

function clusterNodes(): Variable<{ host: string; port: number }[] | undefined> {
  return {
    schema: z
      .string()
      .optional()
      .transform((value, ctx) => {
        if (value === undefined || value.trim() === '') return undefined
        const nodes: { host: string; port: number }[] = []
        for (const entry of value.split(',')) {
          const m = /^\s*(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(entry)
          if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
            return fail(ctx, `expected host:port[,host:port...], got "${entry}"`)
          nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) })
        }
        return nodes
      }),
    default: '(unset)',
  }
}

function priorityTypes(): Variable<readonly string[]> {
  return {
    // Empty is not unset here: it means no priority lane.
    schema: z
      .string()
      .optional()
      .transform((value, ctx) => {
        if (value === undefined) return DEFAULT_PRIORITY_EVENT_TYPES
        const out: string[] = []
        for (const entry of value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          const uri = resolveEventType(entry)
          if (uri === undefined)
            return fail(
              ctx,
              `unknown event type "${entry}" (a full URI or an alias such as caep/session-revoked)`,
            )
          out.push(uri)
        }
        return out
      }),
    default: '(revocations, see Delivery semantics)',
  }
}

const doc = <T>(variable: Variable<T>, meaning: string, shown?: string) => ({
  ...variable,
  meaning,
  ...(shown !== undefined ? { default: shown } : {}),
})

/** Every variable the broker reads: its schema, default and meaning (rendered into README.md), in README order. */
const VARIABLES = {
  SSF_BROKER_PORT: doc(int(8080, 0, 65535), 'HTTP port to listen on.'),
  SSF_BROKER_PROCESSES: doc(
    int(1, 1, 64),
    'Broker processes to run on this machine, sharing the port and the Redis (each one ingests, fans out and delivers); a process that dies is replaced. Use up to one per core.',
  ),
  SSF_BROKER_HOST: doc(text('0.0.0.0'), 'Address to listen on.'),
  SSF_BROKER_ISSUER: doc(
    issuer(),
    'Transmitter issuer: `issuer` in metadata and `iss` of every SET, byte for byte. No query or fragment.',
  ),
  SSF_BROKER_REDIS_URL: doc(
    optionalText('(unset: embedded)', (value) =>
      /^(rediss?|unix):\/\//.test(value)
        ? undefined
        : 'must start with redis://, rediss:// or unix://',
    ),
    'Redis URL (`redis://`, `rediss://`, or `unix:///path`). Unset: the broker starts its own `redis-server` from PATH on a unix socket under the data directory, with AOF persistence, and stops it on exit.',
  ),
  SSF_BROKER_REDIS_CLUSTER_NODES: doc(
    clusterNodes(),
    'Redis Cluster seed nodes, `host:port,host:port,...`: the broker runs on that cluster (every multi-key operation stays in one hash slot). Not together with SSF_BROKER_REDIS_URL.',
  ),
  SSF_BROKER_REDIS_PREFIX: doc(
    {
      schema: raw().transform((value, ctx) => {
        const prefix = value ?? 'ssf'
        return /^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)
          ? prefix
          : fail(
              ctx,
              'must be 1 to 64 letters, digits, "_", "-", "." or ":" (no braces: hash tags are the broker\'s)',
            )
      }),
      default: 'ssf',
    },
    "Starts every Redis key the broker writes (BullMQ's included), so several brokers can share one Redis. Letters, digits, `_`, `-`, `.`, `:`.",
  ),
  SSF_BROKER_DATA_DIR: doc(
    text('./.ssf-broker'),
    'Directory for the embedded Redis (socket, AOF files, log, and `broker.pid` naming the broker that owns it; a second broker on the same directory is refused).',
  ),
  SSF_BROKER_ADMIN_TOKEN: doc(
    optionalText('(unset: generated)', atLeast32),
    'Bootstrap admin bearer token (at least 32 characters). Unset: generated at first start, printed once, only its hash is kept.',
  ),
  SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH: doc(
    bool(),
    '`true` permits `http:` push endpoints and loopback/private/link-local targets. For development and tests only; logs a warning.',
  ),
  SSF_BROKER_KEY_ROTATION_OVERLAP_SECONDS: doc(
    int(604_800, 0, 31_536_000),
    'How long a rotated-out signing key stays published in the JWKS.',
  ),
  SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS: doc(
    int(60, 0, 86_400),
    'How long `POST /admin/keys/rotate` publishes a new signing key in the JWKS before SETs are signed with it, so receivers that cache the JWKS already hold it. `{"immediate": true}` rotates at once.',
  ),
  SSF_BROKER_MAX_STREAMS_PER_RECEIVER: doc(
    int(100, 1, 1_000_000),
    'Most streams one receiver client may hold; the next create is refused with 409 `stream_limit_exceeded`.',
  ),
  SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM: doc(
    int(16, 1, 256),
    'Normal SETs in flight per push stream, as a sliding window; control and priority SETs may use as many slots again. SETs about the same subject are always sent one after another, in order.',
  ),
  SSF_BROKER_FANOUT_CONCURRENCY: doc(
    int(8, 1, 1024),
    'Chunks of 64 events (of `POST /events` requests) one broker process turns into SETs at once, counted in events: 8 means 8 full chunks, or up to 512 single-event requests, or any mix weighing 512 events. Chunks holding a priority event type go first; otherwise the chunk whose streams (those its event types route to) have the fewest chunks running goes next, so a flood for one stream does not hold back the events of other streams, and among those the request that has had the fewest chunks started, so a small request does not wait behind a large one. More chunks at once share the event loop and each takes longer.',
  ),
  SSF_BROKER_PUSH_STREAMS_IN_FLIGHT: doc(
    int(256, 1, 10_000),
    'Push streams one broker process serves at once.',
  ),
  SSF_BROKER_PUSH_LINGER_MS: doc(
    int(3, 0, 1000),
    'How long a broker process keeps a push stream it has just delivered everything to before letting it go. SETs this process queues for the stream meanwhile go out at once, without giving the stream back and claiming it again; SETs another process queues wait at most this long. 0 lets go at once.',
  ),
  SSF_BROKER_PUSH_CONNECT_TIMEOUT_MS: doc(
    int(5000, 1, 60_000),
    'Connect timeout for push requests.',
  ),
  SSF_BROKER_PUSH_TIMEOUT_MS: doc(
    int(10_000, 1, 120_000),
    'Timeout for a receiver to send response headers, and again for the body.',
  ),
  SSF_BROKER_PUSH_MAX_RESPONSE_BYTES: doc(
    int(65_536, 1024, 10_485_760),
    'Largest receiver response body read.',
  ),
  SSF_BROKER_RETRY_BASE_MS: doc(
    int(500, 1, 3_600_000),
    'First retry delay after a transient push failure; doubles per attempt, with ±20% jitter.',
  ),
  SSF_BROKER_RETRY_MAX_MS: doc(
    int(2000, 1, 86_400_000),
    'Longest delay between retries (a `Retry-After` up to one hour is honoured). While a stream is failing, each retry sends a single SET as a probe, so a receiver that stays down sees one request per stream per this interval, and one that recovers gets its backlog within about this long.',
  ),
  SSF_BROKER_DELIVERY_MAX_AGE_SECONDS: doc(
    int(259_200, 1, 31_536_000),
    'A SET still undelivered this long after its first attempt goes to the dead-letter list.',
  ),
  SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS: doc(
    int(259_200, 0, 31_536_000),
    'A push stream whose deliveries have failed without a break for this long is disabled, with the last error and since when as its status reason (a stream-updated event is attempted first). 0 turns it off.',
  ),
  SSF_BROKER_STREAM_BACKLOG_MAX: doc(
    int(100_000, 1, 10_000_000),
    "Most SETs one stream holds, whatever its status or delivery method; beyond it the oldest are dropped, counted in the stream's status `reason` and written to the audit trail.",
  ),
  SSF_BROKER_PAUSED_BUFFER_MAX: doc(
    optionalInt(1, 10_000_000),
    'Deprecated: the paused buffer is now SSF_BROKER_STREAM_BACKLOG_MAX. When set (and that is not), it is used as the backlog bound.',
  ),
  SSF_BROKER_PRIORITY_EVENT_TYPES: doc(
    priorityTypes(),
    "Comma list of event-type URIs or aliases (`caep/session-revoked`) handled ahead of all others, in fan-out and in each stream's queue; never ahead of an earlier SET about the same subject. Empty: no priority lane.",
  ),
  SSF_BROKER_ADMISSION_LAG_MS: doc(
    int(20, 0, 10_000),
    "Admission control of `POST /events`: while this process's event loop runs late by more than this many milliseconds (averaged over about 200 ms), a request holding no priority event type is refused with 503 `overloaded` and `Retry-After: 1`, before anything is stored, when the streams its events route to are far behind here (5,000 or more of their events waiting to be fanned out, or a push stream holding 5,000 or more SETs: seconds of work). Events for streams that keep up, and requests holding a priority event, are always taken. 0 turns admission control off.",
  ),
  SSF_BROKER_LEASE_MS: doc(
    int(3000, 500, 600_000),
    "Delivery lease per stream. A crashed process's streams are taken over by another process after this long.",
  ),
  SSF_BROKER_MAX_EVENT_BODY_BYTES: doc(
    int(1_048_576, 1024, 67_108_864),
    'Largest accepted `POST /events` body.',
  ),
  SSF_BROKER_MAX_JSON_DEPTH: doc(
    int(32, 2, 1000),
    'Deepest nesting of arrays and objects accepted anywhere in a JSON request body; deeper bodies get 400 before any work.',
  ),
  SSF_BROKER_DEFAULT_SUBJECTS: doc(
    oneOf<'ALL' | 'NONE'>('ALL', ['ALL', 'NONE'], (value) => `must be ALL or NONE, got "${value}"`),
    '`ALL`: a new stream receives events about every subject until the receiver removes some; `NONE`: only subjects the receiver adds. Advertised as `default_subjects`.',
  ),
  SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS: doc(
    int(15, 0, 86_400),
    'Shortest interval between verification requests per stream; faster requests get 429.',
  ),
  SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS: doc(
    int(2_592_000, 0, 31_536_000),
    'A stream with no management call (or poll, for poll streams) for this long is paused, and told so by a stream-updated event. 0 turns it off.',
  ),
  SSF_BROKER_POLL_MAX_WAIT_SECONDS: doc(
    int(25, 0, 300),
    'Longest time a long-poll request is held open when no SET is available (below the 30 s common poll clients time out at).',
  ),
  SSF_BROKER_POLL_REDELIVERY_SECONDS: doc(
    int(30, 1, 86_400),
    'A polled SET not acknowledged within this time is handed out again.',
  ),
  SSF_BROKER_OAUTH_ISSUER: doc(
    optionalText(),
    "Issuer of OAuth 2.0 JWT access tokens accepted besides the broker's own client tokens. Set together with the JWKS URL and audience.",
  ),
  SSF_BROKER_OAUTH_JWKS_URL: doc(
    optionalText('(unset)', (value) => (URL.canParse(value) ? undefined : 'is not a URL')),
    'JWKS URL of that authorization server.',
  ),
  SSF_BROKER_OAUTH_AUDIENCE: doc(
    optionalText(),
    "Required `aud` of those access tokens (usually the broker's issuer URL).",
  ),
  SSF_BROKER_OAUTH_SUBJECT_FALLBACK: doc(
    bool(),
    "`true`: an access token without a `client_id` claim is taken as the receiver named by its `sub`. Only safe when the authorization server never issues a token (a user's, say) whose `sub` can equal a receiver's client id: such a token would act as that receiver. Off: tokens without `client_id` get 401.",
  ),
  SSF_BROKER_TLS_CERT_FILE: doc(
    optionalText(),
    'PEM certificate chain: with the key file, the broker serves HTTPS itself (TLS 1.2 minimum, 1.3 preferred).',
  ),
  SSF_BROKER_TLS_KEY_FILE: doc(optionalText(), 'PEM private key for SSF_BROKER_TLS_CERT_FILE.'),
  SSF_BROKER_AGENT_MAX_EXPIRES_IN_SECONDS: doc(
    int(86_400, 1, 31_536_000),
    'Longest `expires_in` an agent registration may ask for (`POST /agents`).',
  ),
  SSF_BROKER_AGENT_MAX_CHAIN_DEPTH: doc(
    int(8, 1, 64),
    'Most agents in one delegation chain (user → A → B → C is 3); deeper registrations are refused.',
  ),
  SSF_BROKER_CASCADE_POLICY_FILE: doc(
    optionalText('(unset: built-in)'),
    'JSON file replacing the cascade policy: which event types about a principal reach the agents acting for it, and as what (see docs/agents.md).',
  ),
  SSF_BROKER_SECRETS_KEY: doc(
    optionalText('(unset)', atLeast32),
    'Secret (at least 32 characters) that seals the credentials stored for upstream transmitters (`POST /admin/upstreams`) with AES-256-GCM. Unset: they are stored unsealed in Redis, and still never returned or logged. Keep it stable: sealed credentials need the same key.',
  ),
  SSF_BROKER_AUDIT_RETENTION_SECONDS: doc(
    int(7_776_000, 60, 315_360_000),
    'How long audit records are kept.',
  ),
  SSF_BROKER_LOG_LEVEL: doc(
    oneOf<Config['logLevel']>(
      'info',
      ['debug', 'info', 'warn', 'error'],
      (value) => `must be debug, info, warn or error, got "${value}"`,
    ),
    '`debug` (adds a line per delivered SET), `info` (lifecycle), `warn` (adds failed push attempts, dead letters) or `error`.',
  ),
  SSF_BROKER_METRICS_TOKEN: doc(
    optionalText('(unset: open)'),
    'Bearer token required by `GET /metrics`. Unset: the endpoint answers anyone who can reach it.',
  ),
  SSF_BROKER_SHUTDOWN_GRACE_SECONDS: doc(
    int(10, 0, 3600),
    'On SIGTERM/SIGINT: how long in-flight pushes and requests may take before the process exits anyway (what is left is redelivered). The process is gone within this plus 2 s, even with Redis unreachable.',
  ),
  SSF_BROKER_URL: doc(
    optionalText(),
    "Used by the `ssf-broker` client commands (the broker's base URL); the server ignores it.",
  ),
  SSF_BROKER_TOKEN: doc(
    optionalText(),
    'Used by the `ssf-broker` client commands (bearer token); the server ignores it.',
  ),
}

type Values = { [K in keyof typeof VARIABLES]: z.output<(typeof VARIABLES)[K]['schema']> }

/** Every variable the broker reads, with its default and meaning (rendered into README.md). */
export const CONFIG_VARIABLES: readonly VariableDoc[] = Object.entries(VARIABLES).map(
  ([name, v]) => ({ name, default: v.default, meaning: v.meaning }),
)

const ENV_SCHEMA = z.object(
  Object.fromEntries(Object.entries(VARIABLES).map(([name, v]) => [name, v.schema])) as {
    [K in keyof typeof VARIABLES]: (typeof VARIABLES)[K]['schema']
  },
)

type Env = Record<string, string | undefined>

/** Rules between variables, checked once each is valid on its own. */
function checkTogether(v: Values, env: Env): void {
  if (v.SSF_BROKER_REDIS_CLUSTER_NODES !== undefined && v.SSF_BROKER_REDIS_URL !== undefined) {
    throw new ConfigError(
      'SSF_BROKER_REDIS_URL',
      'must be unset when SSF_BROKER_REDIS_CLUSTER_NODES is set (one or the other)',
    )
  }
  if (v.SSF_BROKER_RETRY_MAX_MS < v.SSF_BROKER_RETRY_BASE_MS)
    throw new ConfigError(
      'SSF_BROKER_RETRY_MAX_MS',
      'must not be less than SSF_BROKER_RETRY_BASE_MS',
    )
  const oauthVars = [
    'SSF_BROKER_OAUTH_ISSUER',
    'SSF_BROKER_OAUTH_JWKS_URL',
    'SSF_BROKER_OAUTH_AUDIENCE',
  ] as const
  const oauthSet = oauthVars.filter((name) => v[name] !== undefined)
  if (oauthSet.length > 0 && oauthSet.length < oauthVars.length) {
    throw new ConfigError(
      oauthVars.find((name) => v[name] === undefined)!,
      'must be set together with the other SSF_BROKER_OAUTH_* variables',
    )
  }
  if ((v.SSF_BROKER_TLS_CERT_FILE === undefined) !== (v.SSF_BROKER_TLS_KEY_FILE === undefined)) {
    throw new ConfigError(
      v.SSF_BROKER_TLS_CERT_FILE !== undefined
        ? 'SSF_BROKER_TLS_KEY_FILE'
        : 'SSF_BROKER_TLS_CERT_FILE',
      'must be set together with its pair',
    )
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('SSF_BROKER_') && !(name in VARIABLES))
      throw new ConfigError(name, 'is not a known setting (see README)')
  }
}

export function loadConfig(env: Env = process.env): Config {
  const parsed = ENV_SCHEMA.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new ConfigError(String(issue.path[0]), issue.message)
  }
  const v = parsed.data
  checkTogether(v, env)
  const port = v.SSF_BROKER_PORT
  return Object.freeze({
    processes: v.SSF_BROKER_PROCESSES,
    port,
    host: v.SSF_BROKER_HOST,
    // The issuer is compared byte for byte (SSF §7.2): kept exactly as given, minus a trailing slash.
    issuer: v.SSF_BROKER_ISSUER?.replace(/\/+$/, '') ?? `http://localhost:${port}`,
    redisUrl: v.SSF_BROKER_REDIS_URL,
    redisClusterNodes: v.SSF_BROKER_REDIS_CLUSTER_NODES,
    redisPrefix: v.SSF_BROKER_REDIS_PREFIX,
    priorityEventTypes: v.SSF_BROKER_PRIORITY_EVENT_TYPES,
    admissionLagMs: v.SSF_BROKER_ADMISSION_LAG_MS,
    streamBacklogMax: env.SSF_BROKER_STREAM_BACKLOG_MAX
      ? v.SSF_BROKER_STREAM_BACKLOG_MAX
      : (v.SSF_BROKER_PAUSED_BUFFER_MAX ?? v.SSF_BROKER_STREAM_BACKLOG_MAX),
    dataDir: v.SSF_BROKER_DATA_DIR,
    adminToken: v.SSF_BROKER_ADMIN_TOKEN,
    allowPrivatePush: v.SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH,
    keyRotationOverlapSeconds: v.SSF_BROKER_KEY_ROTATION_OVERLAP_SECONDS,
    keyPublishAheadSeconds: v.SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS,
    maxStreamsPerReceiver: v.SSF_BROKER_MAX_STREAMS_PER_RECEIVER,
    pushConcurrencyPerStream: v.SSF_BROKER_PUSH_CONCURRENCY_PER_STREAM,
    fanOutConcurrency: v.SSF_BROKER_FANOUT_CONCURRENCY,
    pushStreamsInFlight: v.SSF_BROKER_PUSH_STREAMS_IN_FLIGHT,
    pushLingerMs: v.SSF_BROKER_PUSH_LINGER_MS,
    pushConnectTimeoutMs: v.SSF_BROKER_PUSH_CONNECT_TIMEOUT_MS,
    pushTimeoutMs: v.SSF_BROKER_PUSH_TIMEOUT_MS,
    pushMaxResponseBytes: v.SSF_BROKER_PUSH_MAX_RESPONSE_BYTES,
    retryBaseMs: v.SSF_BROKER_RETRY_BASE_MS,
    retryMaxMs: v.SSF_BROKER_RETRY_MAX_MS,
    deliveryMaxAgeSeconds: v.SSF_BROKER_DELIVERY_MAX_AGE_SECONDS,
    disableAfterFailingSeconds: v.SSF_BROKER_DISABLE_AFTER_FAILING_SECONDS,
    leaseMs: v.SSF_BROKER_LEASE_MS,
    maxEventBodyBytes: v.SSF_BROKER_MAX_EVENT_BODY_BYTES,
    maxJsonDepth: v.SSF_BROKER_MAX_JSON_DEPTH,
    defaultSubjects: v.SSF_BROKER_DEFAULT_SUBJECTS,
    minVerificationIntervalSeconds: v.SSF_BROKER_MIN_VERIFICATION_INTERVAL_SECONDS,
    inactivityTimeoutSeconds: v.SSF_BROKER_INACTIVITY_TIMEOUT_SECONDS,
    pollMaxWaitSeconds: v.SSF_BROKER_POLL_MAX_WAIT_SECONDS,
    pollRedeliverySeconds: v.SSF_BROKER_POLL_REDELIVERY_SECONDS,
    oauth:
      v.SSF_BROKER_OAUTH_ISSUER !== undefined
        ? {
            issuer: v.SSF_BROKER_OAUTH_ISSUER,
            jwksUrl: v.SSF_BROKER_OAUTH_JWKS_URL!,
            audience: v.SSF_BROKER_OAUTH_AUDIENCE!,
            subjectFallback: v.SSF_BROKER_OAUTH_SUBJECT_FALLBACK,
          }
        : undefined,
    tls:
      v.SSF_BROKER_TLS_CERT_FILE !== undefined
        ? { certFile: v.SSF_BROKER_TLS_CERT_FILE, keyFile: v.SSF_BROKER_TLS_KEY_FILE! }
        : undefined,
    agentMaxExpiresInSeconds: v.SSF_BROKER_AGENT_MAX_EXPIRES_IN_SECONDS,
    agentMaxChainDepth: v.SSF_BROKER_AGENT_MAX_CHAIN_DEPTH,
    auditRetentionSeconds: v.SSF_BROKER_AUDIT_RETENTION_SECONDS,
    cascadePolicyFile: v.SSF_BROKER_CASCADE_POLICY_FILE,
    secretsKey: v.SSF_BROKER_SECRETS_KEY,
    logLevel: v.SSF_BROKER_LOG_LEVEL,
    metricsToken: v.SSF_BROKER_METRICS_TOKEN,
    shutdownGraceSeconds: v.SSF_BROKER_SHUTDOWN_GRACE_SECONDS,
  })
}
