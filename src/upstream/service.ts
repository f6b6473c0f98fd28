/**
 * The broker as a receiver of upstream transmitters (IdPs that speak SSF): registering an upstream
 * (discovery, stream creation there), taking its SETs by push or poll, verifying each with the receiver
 * SDK, and ingesting it like a posted event: re-signed by this broker for every matching stream, `txn`
 * kept, cascaded, audited with the upstream's `iss` and `jti`, and fanned out once per (iss, jti).
 * Verification and stream-updated SETs from the upstream update its status and go no further.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { AuditLog } from '../audit/log.js'
import type { Logger } from '../lib/log.js'
import { randomId } from '../lib/ids.js'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import { createReceiver, type Receiver } from '../receiver/receiver.js'
import { createPushHandler } from '../receiver/push-handler.js'
import { ReceiverError } from '../receiver/errors.js'
import type { HttpSettings } from '../receiver/http.js'
import {
  DELIVERY_METHODS,
  SSF_EVENT_TYPES,
  type TransmitterMetadata,
  type VerifiedSet,
} from '../receiver/types.js'
import type { EventAcceptor } from './acceptor.js'
import { UpstreamDedup } from './dedup.js'
import { eventFromSet } from './set-to-event.js'
import { createOutbound, type Outbound } from './outbound.js'
import { SecretBox } from './secret-box.js'
import { createTokenProvider, type TokenConfig, type TokenProvider } from './token.js'
import { UpstreamStore } from './store.js'
import {
  createStream,
  deleteStream,
  requestVerification,
  streamStatus,
  type ManagementContext,
} from './management.js'
import type { UpstreamDelivery, UpstreamRecord, UpstreamStatus } from './model.js'

export const INBOUND_PATH = '/ssf/inbound'
const STATUSES: readonly UpstreamStatus[] = ['enabled', 'paused', 'disabled']
const VERIFY_STATE_TTL_MS = 10 * 60_000
const ACCEPT_TIMEOUT_MS = 5000

export interface UpstreamServiceOptions {
  redis: Redis
  keys?: Keyspace
  /** This broker's issuer: the push endpoint given to upstreams is under it. */
  issuer: string
  acceptor: EventAcceptor
  log: Logger
  audit?: AuditLog
  /** SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH: also http and loopback upstreams. */
  allowPrivate: boolean
  connectTimeoutMs: number
  requestTimeoutMs: number
  /** Key sealing stored upstream secrets (SSF_BROKER_SECRETS_KEY); unset: stored unsealed. */
  secretsKey?: string | undefined
  /** Requested from an upstream when the registration names no event types. */
  defaultEventsRequested: readonly string[]
  /** How long an upstream (iss, jti) is remembered for de-duplication. */
  replayRetentionSeconds?: number
  /** Called once per upstream event ingested (for the ssf_broker_upstream_events_total metric). */
  onUpstreamEvent?: (upstreamId: string) => void
}

export interface RegisterInput {
  issuer: string
  delivery: UpstreamDelivery
  authorization: TokenConfig
  events_requested?: string[]
  description?: string
}

/** What one process holds for an upstream: its receiver (keys, replay check) and token. */
export interface UpstreamRuntime {
  record: UpstreamRecord
  receiver: Receiver
  token: TokenProvider
  management: ManagementContext | undefined
  push: ((request: Request) => Promise<Response>) | undefined
  /** Runs for each verified SET of this upstream (push and poll). */
  onEvent(set: VerifiedSet): Promise<void>
}

export class UpstreamRegistrationError extends Error {
  constructor(
    readonly kind: 'invalid' | 'unreachable',
    message: string,
  ) {
    super(message)
    this.name = 'UpstreamRegistrationError'
  }
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest()

export class UpstreamService {
  readonly store: UpstreamStore
  readonly keys: Keyspace
  readonly outbound: Outbound
  readonly #box: SecretBox
  readonly #dedup: UpstreamDedup
  readonly #runtimes = new Map<string, UpstreamRuntime>()
  readonly #http: HttpSettings

  constructor(private readonly options: UpstreamServiceOptions) {
    this.keys = options.keys ?? createKeyspace()
    this.store = new UpstreamStore(options.redis, this.keys)
    this.outbound = createOutbound({
      allowPrivate: options.allowPrivate,
      connectTimeoutMs: options.connectTimeoutMs,
    })
    this.#box = new SecretBox(options.secretsKey)
    this.#dedup = new UpstreamDedup(
      options.redis,
      this.keys,
      (options.replayRetentionSeconds ?? 259_200) * 1000,
    )
    this.#http = {
      timeoutMs: options.requestTimeoutMs,
      maxResponseBytes: 1_048_576,
      dispatcher: this.outbound.dispatcher,
    }
  }

  get sealsSecrets(): boolean {
    return this.#box.sealing
  }

  inboundUrl(id: string): string {
    return `${this.options.issuer}${INBOUND_PATH}/${id}`
  }

  #receiverFor(issuer: string, audience: string | string[], id: string | undefined): Receiver {
    return createReceiver({
      issuer,
      audience,
      allowInsecureIssuer: this.options.allowPrivate,
      replayStore: this.#dedup,
      http: this.#http,
      ...(id !== undefined
        ? {
            verificationState: async (state: string) =>
              (await this.options.redis.exists(this.keys.upstreams.verifyState(id, state))) === 1,
          }
        : {}),
    })
  }

  #tokenConfig(record: UpstreamRecord): TokenConfig {
    const a = record.authorization
    if (a.type === 'bearer') return { type: 'bearer', token: this.#box.open(a.token_sealed) }
    return {
      type: 'client_credentials',
      token_endpoint: a.token_endpoint,
      client_id: a.client_id,
      client_secret: this.#box.open(a.client_secret_sealed),
      ...(a.scope !== undefined ? { scope: a.scope } : {}),
    }
  }

  /** The process-local runtime of a registered upstream (built once; dropped when it is deleted). */
  async runtime(id: string): Promise<UpstreamRuntime | undefined> {
    const record = await this.store.get(id)
    if (!record) {
      this.#runtimes.delete(id)
      return undefined
    }
    const cached = this.#runtimes.get(id)
    if (cached && cached.record.created_at === record.created_at) return cached
    const receiver = this.#receiverFor(record.issuer, record.audience, id)
    const token = createTokenProvider(this.#tokenConfig(record), {
      dispatcher: this.outbound.dispatcher,
      timeoutMs: this.options.requestTimeoutMs,
    })
    const onEvent = (set: VerifiedSet) => this.#handle(record, set)
    const expected = record.inbound_authorization_sha256
      ? Buffer.from(record.inbound_authorization_sha256, 'hex')
      : undefined
    const runtime: UpstreamRuntime = {
      record,
      receiver,
      token,
      management: undefined,
      onEvent,
      push: expected
        ? createPushHandler({
            receiver,
            onEvent,
            // Constant-time comparison of hashes: the value itself is never stored.
            authorization: (value) =>
              value !== undefined && timingSafeEqual(sha256(value), expected),
            onError: (error) => this.#pushError(record, error),
          })
        : undefined,
    }
    this.#runtimes.set(id, runtime)
    return runtime
  }

  async #management(runtime: UpstreamRuntime): Promise<ManagementContext> {
    runtime.management ??= {
      issuer: runtime.record.issuer,
      metadata: await runtime.receiver.metadata(),
      token: runtime.token,
      http: this.#http,
      check: this.outbound.check,
    }
    return runtime.management
  }

  #pushError(record: UpstreamRecord, error: unknown): void {
    const code = error instanceof ReceiverError ? error.code : 'ERR_PROCESSING'
    this.options.log.warn('upstream push refused', {
      upstream_id: record.upstream_id,
      code,
      ...(error instanceof ReceiverError ? { error: error.message } : {}),
    })
    void this.store
      .error(
        record.upstream_id,
        `push: ${code}${error instanceof ReceiverError ? `: ${error.message}` : ''}`,
      )
      .catch(() => {})
  }

  async #handle(record: UpstreamRecord, set: VerifiedSet): Promise<void> {
    const id = record.upstream_id
    if (set.type === SSF_EVENT_TYPES.verification) {
      await this.store.verified(id)
      if (typeof set.event.state === 'string')
        await this.options.redis.del(this.keys.upstreams.verifyState(id, set.event.state))
    } else if (set.type === SSF_EVENT_TYPES.streamUpdated) {
      const status = set.event.status
      if (typeof status !== 'string' || !STATUSES.includes(status as UpstreamStatus)) {
        throw new ReceiverError(
          'ERR_SET_CLAIM_INVALID',
          `stream-updated: status must be one of ${STATUSES.join(', ')}`,
        )
      }
      const reason = typeof set.event.reason === 'string' ? set.event.reason : undefined
      await this.store.setStatus(id, status as UpstreamStatus, reason)
      this.options.log.info('upstream stream status changed', { upstream_id: id, status })
    } else {
      const event = eventFromSet(set)
      const clientId = `upstream:${id}`
      let accepted: { txn: string }[]
      try {
        accepted = await withTimeout(
          this.options.acceptor.accept([event], clientId),
          ACCEPT_TIMEOUT_MS,
        )
      } catch (error) {
        // Transient: the upstream retries (push: 503; poll: the SET stays unacknowledged).
        throw new ReceiverError(
          'ERR_STORE_UNAVAILABLE',
          'the broker could not store the event; retry later',
          { cause: error },
        )
      }
      const txn = accepted[0]?.txn ?? event.txn ?? ''
      this.options.audit?.submit({
        kind: 'event.ingested',
        txn,
        type: event.type,
        subject: event.subject,
        client_id: clientId,
        details: { upstream_id: id, upstream_iss: set.iss, upstream_jti: set.jti },
      })
      try {
        this.options.onUpstreamEvent?.(id)
      } catch {
        // a metrics hook never changes the outcome
      }
      void this.store.eventsReceived(id, 1).catch(() => {})
    }
    // Durable (or applied): from now on a redelivery is a duplicate. A failure here only risks a
    // second fan-out after the pending mark expires, never a loss.
    await this.#dedup.commit(set.iss, set.jti).catch((error) =>
      this.options.log.warn('upstream dedup commit failed', {
        upstream_id: id,
        error: String(error),
      }),
    )
  }

  /** Registers an upstream: discovery, a stream created there, the record stored. */
  async register(input: RegisterInput): Promise<UpstreamRecord> {
    const problem = this.outbound.check(input.issuer)
    if (problem) throw new UpstreamRegistrationError('invalid', `issuer: ${problem}`)
    const id = randomId(16)
    let metadata: TransmitterMetadata
    try {
      metadata = await this.#receiverFor(input.issuer, 'discovery', undefined).metadata()
    } catch (error) {
      throw registrationError('discovery', error)
    }
    const method = input.delivery === 'push' ? DELIVERY_METHODS.push : DELIVERY_METHODS.poll
    if (
      Array.isArray(metadata.delivery_methods_supported) &&
      !metadata.delivery_methods_supported.includes(method)
    ) {
      throw new UpstreamRegistrationError(
        'invalid',
        `delivery: the upstream does not support ${input.delivery} (${method})`,
      )
    }
    const token = createTokenProvider(input.authorization, {
      dispatcher: this.outbound.dispatcher,
      timeoutMs: this.options.requestTimeoutMs,
    })
    const ctx: ManagementContext = {
      issuer: input.issuer,
      metadata,
      token,
      http: this.#http,
      check: this.outbound.check,
    }
    const inboundAuthorization =
      input.delivery === 'push' ? `Bearer ${randomBytes(32).toString('base64url')}` : undefined
    const events = input.events_requested ?? [...this.options.defaultEventsRequested]
    let created
    try {
      created = await createStream(ctx, {
        delivery: {
          method,
          ...(inboundAuthorization
            ? { endpoint_url: this.inboundUrl(id), authorization_header: inboundAuthorization }
            : {}),
        },
        events_requested: events,
        ...(input.description !== undefined ? { description: input.description } : {}),
      })
    } catch (error) {
      throw registrationError('stream creation', error)
    }
    const auth = input.authorization
    const record: UpstreamRecord = {
      upstream_id: id,
      issuer: input.issuer,
      delivery: input.delivery,
      stream_id: created.stream_id,
      audience: created.aud,
      ...(created.poll_url !== undefined ? { poll_url: created.poll_url } : {}),
      events_requested: events,
      ...(created.events_delivered !== undefined
        ? { events_delivered: created.events_delivered }
        : {}),
      ...(input.description !== undefined ? { description: input.description } : {}),
      authorization:
        auth.type === 'bearer'
          ? { type: 'bearer', token_sealed: this.#box.seal(auth.token) }
          : {
              type: 'client_credentials',
              token_endpoint: auth.token_endpoint,
              client_id: auth.client_id,
              client_secret_sealed: this.#box.seal(auth.client_secret),
              ...(auth.scope !== undefined ? { scope: auth.scope } : {}),
            },
      ...(inboundAuthorization
        ? { inbound_authorization_sha256: sha256(inboundAuthorization).toString('hex') }
        : {}),
      created_at: Date.now(),
    }
    let status: UpstreamStatus = 'enabled'
    let reason: string | undefined
    try {
      const current = await streamStatus(ctx, created.stream_id)
      if (current && STATUSES.includes(current.status as UpstreamStatus)) {
        status = current.status as UpstreamStatus
        reason = current.reason
      }
    } catch {
      // The status endpoint is optional in practice; the stream-updated events tell us later.
    }
    try {
      await this.store.save(record, status)
      if (reason !== undefined) await this.store.setStatus(id, status, reason)
    } catch (error) {
      // Do not leave a stream at the upstream that nobody here knows about.
      await deleteStream(ctx, created.stream_id).catch(() => {})
      throw error
    }
    if (!this.#box.sealing)
      this.options.log.warn(
        'SSF_BROKER_SECRETS_KEY is not set: upstream credentials are stored unsealed in Redis (never returned or logged)',
      )
    this.options.log.info('upstream registered', {
      upstream_id: id,
      issuer: input.issuer,
      delivery: input.delivery,
      stream_id: created.stream_id,
    })
    // Confirm the path end to end; the answer arrives as a verification SET (push or poll).
    const state = randomBytes(16).toString('base64url')
    try {
      await this.options.redis.set(
        this.keys.upstreams.verifyState(id, state),
        '1',
        'PX',
        VERIFY_STATE_TTL_MS,
      )
      await requestVerification(ctx, created.stream_id, state)
    } catch (error) {
      await this.store.error(id, `verification request: ${describe(error)}`).catch(() => {})
    }
    return record
  }

  /** Deletes the upstream here, and its stream at the upstream (unless `force` and the upstream fails). */
  async remove(id: string, force: boolean): Promise<'deleted' | 'not_found'> {
    const runtime = await this.runtime(id)
    if (!runtime) return 'not_found'
    try {
      await deleteStream(await this.#management(runtime), runtime.record.stream_id)
    } catch (error) {
      if (!force) throw registrationError('stream deletion', error)
      this.options.log.warn('upstream stream not deleted at the upstream (forced)', {
        upstream_id: id,
        error: describe(error),
      })
    }
    await this.store.remove(id)
    this.#runtimes.delete(id)
    this.options.log.info('upstream deleted', { upstream_id: id })
    return 'deleted'
  }

  async close(): Promise<void> {
    this.#runtimes.clear()
    await this.outbound.close()
  }
}

function describe(error: unknown): string {
  if (error instanceof ReceiverError) return `${error.code}: ${error.message}`
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return 'unknown error'
}

function registrationError(step: string, error: unknown): UpstreamRegistrationError {
  if (error instanceof UpstreamRegistrationError) return error
  if (error instanceof ReceiverError) {
    const invalid =
      [
        'ERR_DISCOVERY_ISSUER_MISMATCH',
        'ERR_DISCOVERY_INVALID',
        'ERR_ENDPOINT_UNSUPPORTED',
        'ERR_TRANSMITTER_RESPONSE_INVALID',
      ].includes(error.code) ||
      (error.status !== undefined && error.status >= 400 && error.status < 500)
    return new UpstreamRegistrationError(
      invalid ? 'invalid' : 'unreachable',
      `${step}: ${error.message}`,
    )
  }
  if (error instanceof Error && error.name === 'TokenError')
    return new UpstreamRegistrationError('unreachable', `${step}: ${error.message}`)
  if ((error as { code?: string } | null)?.code === 'ERR_SSRF_BLOCKED')
    return new UpstreamRegistrationError('invalid', `${step}: ${(error as Error).message}`)
  return new UpstreamRegistrationError('unreachable', `${step}: ${describe(error)}`)
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
