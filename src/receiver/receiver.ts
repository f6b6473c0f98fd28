/**
 * `createReceiver`: an SSF receiver bound to one transmitter issuer and its audience(s). It discovers the
 * transmitter (SSF §7.2), caches its JWKS, verifies SETs strictly (SSF §4.1, RFC 8417; see verify.ts),
 * rejects replays by `(iss, jti)` (RFC 8935 §4, RFC 8936), and checks verification `state`s (SSF §8.1.4).
 *
 * @module
 */
import type { Dispatcher } from 'undici'
import { checkIssuer, discover } from './discovery.js'
import { ReceiverError } from './errors.js'
import type { HttpSettings } from './http.js'
import { JwksCache } from './jwks.js'
import { MemoryReplayStore, type ReplayStore } from './replay-store.js'
import type { TransmitterMetadata, VerifiedSet } from './types.js'
import { VerificationTracker, type VerificationStateCheck } from './verification-state.js'
import {
  DEFAULT_ALGORITHMS,
  STANDARD_SUBJECT_MEMBERS,
  SUPPORTED_ALGORITHMS,
  verifySetJws,
  type SetAlgorithm,
  type VerifyPolicy,
} from './verify.js'

/** Options of {@link createReceiver}. */
export interface ReceiverOptions {
  /** The transmitter's issuer URL, exactly as in its metadata and every SET's `iss`. */
  issuer: string
  /** This receiver's audience: the `aud` its SETs carry (one of them must match). */
  audience: string | readonly string[]
  /**
   * Accepted JWS algorithms; asymmetric only (`none` and HMAC are refused at construction).
   * @defaultValue ['RS256', 'ES256', 'EdDSA']
   */
  algorithms?: readonly SetAlgorithm[]
  /**
   * How far in the future `iat` may be, for clock skew, in seconds.
   * @defaultValue 5
   */
  clockToleranceSeconds?: number
  /**
   * Refuse SETs issued longer ago than this (seconds). Unset: no limit, because a paused stream or a
   * receiver outage legitimately delivers old SETs. When set, keep it within `replayRetentionSeconds`.
   * @defaultValue undefined
   */
  maxAgeSeconds?: number
  /**
   * Where seen `(iss, jti)` pairs are remembered.
   * @defaultValue a {@link MemoryReplayStore}
   */
  replayStore?: ReplayStore
  /**
   * How long a `jti` is remembered, in seconds.
   * @defaultValue 259200 (3 days: the broker's default maximum delivery age)
   */
  replayRetentionSeconds?: number
  /**
   * Allow an `http:` issuer and endpoints (local development and tests only).
   * @defaultValue false
   */
  allowInsecureIssuer?: boolean
  /**
   * Accept SETs without `sub_id` when the event has a legacy in-payload `subject` (old CAEP/RISC).
   * @defaultValue false
   */
  allowLegacySubject?: boolean
  /**
   * Complex-subject members this receiver processes, besides the SSF §3.2 standard ones and `agent`
   * (which the revocation index matches against a token's agent identities). A SET whose subject has a
   * member the transmitter lists in `critical_subject_members` and that is not known here is refused
   * (SSF §3.6): the receiver drops it rather than over-apply it.
   * @defaultValue []
   */
  subjectMembers?: readonly string[]
  /** Accepts verification `state`s this process did not request (e.g. shared through Redis). */
  verificationState?: VerificationStateCheck
  /**
   * Largest SET accepted, in bytes.
   * @defaultValue 65536
   */
  maxSetBytes?: number
  /** HTTP settings for discovery, JWKS, stream management and polls. */
  http?: {
    /** @defaultValue 5000 */
    timeoutMs?: number
    /** @defaultValue 1048576 */
    maxResponseBytes?: number
    dispatcher?: Dispatcher | undefined
  }
  /** JWKS cache settings. */
  jwks?: {
    /**
     * Minimum time between refetches triggered by an unknown `kid`.
     * @defaultValue 10000
     */
    cooldownMs?: number
    /**
     * Refetch the JWKS when the cached copy is older than this.
     * @defaultValue 600000
     */
    maxAgeMs?: number
  }
}

/** What {@link Receiver.receive} did with a SET. */
export type ReceiveResult =
  { status: 'accepted'; set: VerifiedSet } | { status: 'duplicate'; jti: string; iss: string }

/** A handler for verified SETs. */
export type SetHandler = (set: VerifiedSet) => void | Promise<unknown>

/** An SSF receiver (see {@link createReceiver}). */
export interface Receiver {
  readonly issuer: string
  readonly audience: readonly string[]
  /** Whether http issuers and endpoints are allowed (`allowInsecureIssuer`). */
  readonly allowInsecure: boolean
  /** HTTP settings shared by the SDK's clients. */
  readonly http: HttpSettings
  /**
   * Verifies a compact SET strictly, records its `jti`, and returns its parts. Throws
   * {@link ReceiverError}; a SET seen before throws `ERR_SET_REPLAYED`.
   */
  verify(compactSet: string): Promise<VerifiedSet>
  /**
   * Verifies a SET, then runs `handler`. A SET seen before is reported as a duplicate without running
   * the handler again (it waits for a first delivery still being processed). When the handler throws,
   * the `jti` is forgotten so a redelivery is processed again. Used by the push handler and poll client.
   */
  receive(compactSet: string, handler: SetHandler): Promise<ReceiveResult>
  /** The transmitter metadata (discovered once, then cached). */
  metadata(): Promise<TransmitterMetadata>
  /** Discovers the transmitter again and drops cached keys. */
  refresh(): Promise<TransmitterMetadata>
  /**
   * Discovers the transmitter and fetches its keys now, so the first SET is verified without waiting
   * for either. Optional: everything is fetched on first use otherwise.
   */
  ready(): Promise<TransmitterMetadata>
  /** Waits for the verification SET that echoes `state` (SSF §8.1.4.2). */
  expectVerification(
    state: string,
    options?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<VerifiedSet>
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number
}

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  allowZero = false,
): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0))
    throw new TypeError(`${name}: must be a ${allowZero ? 'non-negative' : 'positive'} number`)
  return v
}

/**
 * Creates a receiver for one transmitter. Nothing is fetched until the first use.
 *
 * @example
 * ```ts
 * const receiver = createReceiver({ issuer: 'https://broker.example.com', audience: 'rs-1' })
 * const set = await receiver.verify(compact)
 * console.log(set.type, set.subject, set.event)
 * ```
 */
export function createReceiver(options: ReceiverOptions): Receiver {
  if (!options || typeof options !== 'object')
    throw new TypeError('createReceiver: options are required')
  const { issuer } = options
  if (typeof issuer !== 'string') throw new TypeError('issuer: required')
  const allowInsecure = options.allowInsecureIssuer === true
  checkIssuer(issuer, allowInsecure)
  const audiences =
    typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])]
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === ''))
    throw new TypeError('audience: required, a non-empty string or array of strings')
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0)
    throw new TypeError('algorithms: must be a non-empty array')
  for (const alg of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(alg))
      throw new TypeError(
        `algorithms: ${String(alg)} is not allowed; only asymmetric algorithms (${SUPPORTED_ALGORITHMS.join(', ')})`,
      )
  }
  const clockTolerance = positive('clockToleranceSeconds', options.clockToleranceSeconds, 5, true)
  const maxAge =
    options.maxAgeSeconds === undefined
      ? undefined
      : positive('maxAgeSeconds', options.maxAgeSeconds, 0)
  const retentionMs =
    positive('replayRetentionSeconds', options.replayRetentionSeconds, 259_200) * 1000
  const http: HttpSettings = {
    timeoutMs: positive('http.timeoutMs', options.http?.timeoutMs, 5000),
    maxResponseBytes: positive('http.maxResponseBytes', options.http?.maxResponseBytes, 1_048_576),
    dispatcher: options.http?.dispatcher,
  }
  const replay = options.replayStore ?? new MemoryReplayStore()
  if (typeof replay.remember !== 'function' || typeof replay.forget !== 'function')
    throw new TypeError('replayStore: must implement remember() and forget()')
  const verifications = new VerificationTracker(options.verificationState)
  const subjectMembers = new Set<string>([
    ...STANDARD_SUBJECT_MEMBERS,
    'agent',
    ...(options.subjectMembers ?? []),
  ])
  const maxSetBytes = positive('maxSetBytes', options.maxSetBytes, 65_536)

  let metadataPromise: Promise<TransmitterMetadata> | undefined
  const metadata = (): Promise<TransmitterMetadata> => {
    if (!metadataPromise) {
      const attempt = discover(issuer, http, allowInsecure)
      metadataPromise = attempt
      // A failed discovery is retried by the next call rather than cached.
      attempt.catch(() => {
        if (metadataPromise === attempt) metadataPromise = undefined
      })
    }
    return metadataPromise
  }
  const jwks = new JwksCache(async () => (await metadata()).jwks_uri!, {
    http,
    cooldownMs: positive('jwks.cooldownMs', options.jwks?.cooldownMs, 10_000, true),
    maxAgeMs: positive('jwks.maxAgeMs', options.jwks?.maxAgeMs, 600_000),
    minRsaBits: 2048,
  })

  const replayKey = (iss: string, jti: string) => JSON.stringify([iss, jti])
  /** A store outage is transient: coded without a setErr, so push answers 503 and poll leaves the SET unacknowledged. */
  const remember = async (key: string): Promise<boolean> => {
    try {
      return await replay.remember(key, retentionMs)
    } catch (error) {
      throw new ReceiverError('ERR_STORE_UNAVAILABLE', 'the replay store is unavailable', {
        cause: error,
      })
    }
  }
  const inflight = new Map<string, Promise<void>>()

  async function check(compact: string): Promise<VerifiedSet> {
    let meta: TransmitterMetadata
    try {
      meta = await metadata()
    } catch (error) {
      if (error instanceof ReceiverError) throw error
      throw new ReceiverError('ERR_DISCOVERY_FAILED', 'transmitter discovery failed', {
        cause: error,
      })
    }
    const policy: VerifyPolicy = {
      issuer,
      audiences,
      algorithms: new Set(algorithms),
      clockToleranceSeconds: clockTolerance,
      maxAgeSeconds: maxAge,
      maxSetBytes,
      allowLegacySubject: options.allowLegacySubject === true,
      subjectMembers,
      criticalSubjectMembers: meta.critical_subject_members ?? [],
    }
    return verifySetJws(compact, policy, (alg, kid) => jwks.keysFor(alg, kid))
  }

  const receiver: Receiver = {
    issuer,
    audience: audiences,
    allowInsecure,
    http,
    get jwksFetches() {
      return jwks.fetches
    },
    async verify(compact) {
      const set = await check(compact)
      if (!(await remember(replayKey(set.iss, set.jti)))) {
        throw new ReceiverError(
          'ERR_SET_REPLAYED',
          `the SET with jti "${set.jti.slice(0, 100)}" was already received`,
        )
      }
      return set
    },
    async receive(compact, handler) {
      const set = await check(compact)
      const key = replayKey(set.iss, set.jti)
      if (!(await remember(key))) {
        // A first delivery still being processed decides: if it fails, so does this one (and the
        // transmitter retries, by then with the jti forgotten).
        const first = inflight.get(key)
        if (first) await first
        return { status: 'duplicate', jti: set.jti, iss: set.iss }
      }
      const work = (async () => {
        await verifications.check(set)
        await handler(set)
        verifications.settle(set)
      })()
      inflight.set(key, work)
      try {
        await work
        return { status: 'accepted', set }
      } catch (error) {
        await replay.forget(key).catch(() => {})
        throw error
      } finally {
        inflight.delete(key)
      }
    },
    metadata,
    async refresh() {
      metadataPromise = undefined
      jwks.clear()
      return metadata()
    },
    async ready() {
      const meta = await metadata()
      await jwks.prefetch()
      return meta
    },
    expectVerification(state, opts) {
      return verifications.expect(state, opts)
    },
  }
  return receiver
}
