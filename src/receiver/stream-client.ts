/**
 * SSF stream management from the receiver's side (SSF §8): create, read, update, replace and delete a
 * stream (§8.1.1), read and update its status (§8.1.2), add and remove subjects (§8.1.3), and trigger a
 * verification event (§8.1.4.2). Every endpoint comes from the transmitter's metadata, never a fixed
 * path; a missing one is `ERR_ENDPOINT_UNSUPPORTED`. The `iss` of every returned configuration must
 * equal the receiver's issuer (SSF §8.1.1), and a created stream's `aud` must name the receiver.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { ReceiverError } from './errors.js'
import {
  bearerHeader,
  httpRequest,
  isObject,
  parseJson,
  transmitterHttpError,
  type HttpResponse,
} from './http.js'
import type { Receiver } from './receiver.js'
import {
  DELIVERY_METHODS,
  type StreamConfiguration,
  type StreamRequest,
  type StreamStatus,
  type SubjectIdentifier,
  type TokenSource,
  type TransmitterMetadata,
  type VerifiedSet,
} from './types.js'

/** Options of {@link createStreamClient}. */
export interface StreamClientOptions {
  /** The receiver whose transmitter is managed (its metadata, issuer and audience are used). */
  receiver: Receiver
  /** The receiver's bearer token for the management API (or a function returning a fresh one). */
  token: TokenSource
}

/** A stream's status (SSF §8.1.2). */
export interface StreamStatusInfo {
  stream_id: string
  status: StreamStatus
  reason?: string
}

/** A triggered verification (SSF §8.1.4.2). */
export interface TriggeredVerification {
  state: string
  /** Resolves with the verification SET once the receiver got it (push or poll); rejects on timeout. */
  delivered: Promise<VerifiedSet>
}

/** Options of {@link StreamClient.ensureStream}. */
export interface EnsureStreamOptions {
  /**
   * Set the stream's status to `enabled` if it is paused or disabled.
   * @defaultValue true
   */
  enable?: boolean
}

/** The SSF stream management client (see {@link createStreamClient}). */
export interface StreamClient {
  create(request?: StreamRequest): Promise<StreamConfiguration>
  get(streamId: string): Promise<StreamConfiguration>
  list(): Promise<StreamConfiguration[]>
  /** PATCH: the given receiver-supplied members change, the others stay. */
  update(streamId: string, changes: StreamRequest): Promise<StreamConfiguration>
  /** PUT: receiver-supplied members not given are removed. */
  replace(streamId: string, request: StreamRequest): Promise<StreamConfiguration>
  delete(streamId: string): Promise<void>
  getStatus(streamId: string): Promise<StreamStatusInfo>
  updateStatus(streamId: string, status: StreamStatus, reason?: string): Promise<StreamStatusInfo>
  /**
   * Reuses this receiver's stream with the same delivery (method, and `endpoint_url` for push), updated
   * to `request`, or creates one. A missing `delivery` means poll (SSF §8.1.1.1).
   */
  ensureStream(request?: StreamRequest, options?: EnsureStreamOptions): Promise<StreamConfiguration>
  addSubject(
    streamId: string,
    subject: SubjectIdentifier,
    options?: { verified?: boolean },
  ): Promise<void>
  removeSubject(streamId: string, subject: SubjectIdentifier): Promise<void>
  /** Asks for a verification event carrying `state` (random by default) and waits for it in the background. */
  triggerVerification(
    streamId: string,
    options?: { state?: string; timeoutMs?: number },
  ): Promise<TriggeredVerification>
}

type Endpoint =
  | 'configuration_endpoint'
  | 'status_endpoint'
  | 'add_subject_endpoint'
  | 'remove_subject_endpoint'
  | 'verification_endpoint'

const STATUSES: readonly StreamStatus[] = ['enabled', 'paused', 'disabled']

/**
 * Creates a stream management client.
 *
 * @example
 * ```ts
 * const streams = createStreamClient({ receiver, token: process.env.SSF_RECEIVER_TOKEN! })
 * const stream = await streams.ensureStream({
 *   delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://rs.example.com/ssf/events', authorization_header: `Bearer ${secret}` },
 *   events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
 * })
 * ```
 */
export function createStreamClient(options: StreamClientOptions): StreamClient {
  if (!options || !options.receiver || typeof options.receiver.metadata !== 'function')
    throw new TypeError('receiver: required (createReceiver)')
  if (typeof options.token !== 'string' && typeof options.token !== 'function')
    throw new TypeError('token: required, a string or a function returning one')
  const { receiver } = options

  async function endpoint(name: Endpoint): Promise<string> {
    const meta: TransmitterMetadata = await receiver.metadata()
    const url = meta[name]
    if (typeof url !== 'string')
      throw new ReceiverError(
        'ERR_ENDPOINT_UNSUPPORTED',
        `the transmitter does not advertise ${name}`,
      )
    return url
  }

  async function call(
    name: Endpoint,
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    query: Record<string, string> | undefined,
    json: unknown,
    expected: number[],
  ): Promise<HttpResponse> {
    const base = await endpoint(name)
    const url = new URL(base)
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v)
    const res = await httpRequest(
      url.toString(),
      {
        method,
        headers: { authorization: await bearerHeader(options.token) },
        ...(json !== undefined ? { json } : {}),
      },
      receiver.http,
    )
    if (!expected.includes(res.status)) throw transmitterHttpError(`${method} ${name}`, res)
    return res
  }

  function configuration(value: unknown, what: string, checkAud = false): StreamConfiguration {
    if (
      !isObject(value) ||
      typeof value.stream_id !== 'string' ||
      !isObject(value.delivery) ||
      typeof value.delivery.method !== 'string'
    ) {
      throw new ReceiverError(
        'ERR_TRANSMITTER_RESPONSE_INVALID',
        `${what}: not a stream configuration`,
      )
    }
    if (value.iss !== receiver.issuer)
      throw new ReceiverError(
        'ERR_TRANSMITTER_RESPONSE_INVALID',
        `${what}: iss ${JSON.stringify(String(value.iss).slice(0, 200))} is not the transmitter's issuer`,
      )
    if (checkAud) {
      const auds =
        typeof value.aud === 'string' ? [value.aud] : Array.isArray(value.aud) ? value.aud : []
      if (!auds.some((a) => receiver.audience.includes(a as string)))
        throw new ReceiverError(
          'ERR_TRANSMITTER_RESPONSE_INVALID',
          `${what}: aud does not name this receiver`,
        )
    }
    return value as StreamConfiguration
  }

  function status(value: unknown, what: string): StreamStatusInfo {
    if (
      !isObject(value) ||
      typeof value.stream_id !== 'string' ||
      !STATUSES.includes(value.status as StreamStatus)
    ) {
      throw new ReceiverError('ERR_TRANSMITTER_RESPONSE_INVALID', `${what}: not a stream status`)
    }
    return value as unknown as StreamStatusInfo
  }

  const requireId = (streamId: string) => {
    if (typeof streamId !== 'string' || streamId === '') throw new TypeError('streamId: required')
  }

  const client: StreamClient = {
    async create(request = {}) {
      const res = await call('configuration_endpoint', 'POST', undefined, request, [200, 201])
      return configuration(parseJson(res.text), 'create stream', true)
    },
    async get(streamId) {
      requireId(streamId)
      const res = await call(
        'configuration_endpoint',
        'GET',
        { stream_id: streamId },
        undefined,
        [200],
      )
      return configuration(parseJson(res.text), 'read stream')
    },
    async list() {
      const res = await call('configuration_endpoint', 'GET', undefined, undefined, [200])
      const body = parseJson(res.text)
      // SSF §8.1.1.2: without stream_id the answer is an array (a lone object from older transmitters).
      const items = Array.isArray(body) ? body : isObject(body) ? [body] : undefined
      if (!items)
        throw new ReceiverError(
          'ERR_TRANSMITTER_RESPONSE_INVALID',
          'read streams: not an array of stream configurations',
        )
      return items.map((item) => configuration(item, 'read streams'))
    },
    async update(streamId, changes) {
      requireId(streamId)
      const res = await call(
        'configuration_endpoint',
        'PATCH',
        undefined,
        { ...changes, stream_id: streamId },
        [200, 202],
      )
      return res.status === 202
        ? client.get(streamId)
        : configuration(parseJson(res.text), 'update stream')
    },
    async replace(streamId, request) {
      requireId(streamId)
      const res = await call(
        'configuration_endpoint',
        'PUT',
        undefined,
        { ...request, stream_id: streamId },
        [200, 202],
      )
      return res.status === 202
        ? client.get(streamId)
        : configuration(parseJson(res.text), 'replace stream')
    },
    async delete(streamId) {
      requireId(streamId)
      await call(
        'configuration_endpoint',
        'DELETE',
        { stream_id: streamId },
        undefined,
        [200, 202, 204],
      )
    },
    async getStatus(streamId) {
      requireId(streamId)
      const res = await call('status_endpoint', 'GET', { stream_id: streamId }, undefined, [200])
      return status(parseJson(res.text), 'read status')
    },
    async updateStatus(streamId, next, reason) {
      requireId(streamId)
      if (!STATUSES.includes(next)) throw new TypeError('status: enabled, paused or disabled')
      const res = await call(
        'status_endpoint',
        'POST',
        undefined,
        { stream_id: streamId, status: next, ...(reason !== undefined ? { reason } : {}) },
        [200, 202],
      )
      return res.status === 202
        ? { stream_id: streamId, status: next, ...(reason !== undefined ? { reason } : {}) }
        : status(parseJson(res.text), 'update status')
    },
    async ensureStream(request = {}, ensure = {}) {
      const method = request.delivery?.method ?? DELIVERY_METHODS.poll
      const sameDelivery = (s: StreamConfiguration) =>
        s.delivery.method === method &&
        (method !== DELIVERY_METHODS.push ||
          s.delivery.endpoint_url === request.delivery?.endpoint_url)
      let existing: StreamConfiguration | undefined
      try {
        existing = (await client.list()).find(sameDelivery)
      } catch (error) {
        if (!(error instanceof ReceiverError && (error.status === 404 || error.status === 405)))
          throw error
      }
      let stream: StreamConfiguration
      if (existing) {
        stream =
          Object.keys(request).length > 0
            ? await client.update(existing.stream_id, request)
            : existing
      } else {
        try {
          stream = await client.create(request)
        } catch (error) {
          // SSF §8.1.1.1: 409 when the transmitter allows one stream per receiver; reuse that one.
          if (!(error instanceof ReceiverError && error.status === 409)) throw error
          const [only] = await client.list()
          if (!only) throw error
          stream = await client.update(only.stream_id, request)
        }
      }
      if (ensure.enable !== false) {
        const current = await client.getStatus(stream.stream_id).catch((error: unknown) => {
          if (error instanceof ReceiverError && error.code === 'ERR_ENDPOINT_UNSUPPORTED')
            return undefined
          throw error
        })
        if (current && current.status !== 'enabled')
          await client.updateStatus(stream.stream_id, 'enabled')
      }
      return stream
    },
    async addSubject(streamId, subject, opts = {}) {
      requireId(streamId)
      if (!isObject(subject) || typeof subject.format !== 'string')
        throw new TypeError('subject: a subject identifier with a format')
      await call(
        'add_subject_endpoint',
        'POST',
        undefined,
        {
          stream_id: streamId,
          subject,
          ...(opts.verified !== undefined ? { verified: opts.verified } : {}),
        },
        [200, 202, 204],
      )
    },
    async removeSubject(streamId, subject) {
      requireId(streamId)
      if (!isObject(subject) || typeof subject.format !== 'string')
        throw new TypeError('subject: a subject identifier with a format')
      await call(
        'remove_subject_endpoint',
        'POST',
        undefined,
        { stream_id: streamId, subject },
        [200, 202, 204],
      )
    },
    async triggerVerification(streamId, opts = {}) {
      requireId(streamId)
      const state = opts.state ?? randomBytes(16).toString('base64url')
      const cancel = new AbortController()
      const delivered = receiver.expectVerification(state, {
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        signal: cancel.signal,
      })
      // The caller may never wait for it; a timeout must not become an unhandled rejection.
      delivered.catch(() => {})
      try {
        await call(
          'verification_endpoint',
          'POST',
          undefined,
          { stream_id: streamId, state },
          [200, 202, 204],
        )
      } catch (error) {
        cancel.abort(error)
        throw error
      }
      return { state, delivered }
    },
  }
  return client
}
