/**
 * HTTP client for push delivery (RFC 8935 §2). Two undici Agents carry all receiver traffic, one for normal
 * SETs and a smaller one for control and priority SETs (so those never wait behind a window of normal ones
 * for a connection): a keep-alive pool per origin, explicit timeouts and response cap (undici's defaults
 * are 300 s and unbounded), no redirects, and the SSRF guard both on the URL and on the resolved address
 * at connect time.
 *
 * A push never takes longer than connect + headers + body timeouts in total: undici's body timeout is per
 * chunk, so without an overall deadline a receiver trickling bytes could hold a delivery slot for days.
 *
 * Classification of what the receiver said:
 * - delivered: any 2xx (RFC 8935 specifies 202; other 2xx still mean the SET was accepted).
 * - retry: 429, 408, 5xx (even if the error body is too large), network errors, timeouts. `Retry-After`
 *   (delta-seconds or HTTP-date) on 429 and 503 becomes `retryAfterMs`, capped at one hour.
 * - retry: 400 with RFC 8935 `err` `invalid_key` or `authentication_failed`; the receiver can fix its key
 *   cache or our credentials without the SET changing.
 * - failed (permanent): 400 with any other `err` (`invalid_request`, `invalid_issuer`, `invalid_audience`,
 *   `access_denied`, `invalid_state`, unknown codes), 400 without a parseable RFC 8935 body, 3xx (never
 *   followed), other 4xx, endpoints the SSRF guard refuses (`address_not_allowed: ...`), and an
 *   authorization value that is not printable ASCII (`invalid_authorization`; it could inject headers).
 *
 * `error` is short and machine-friendly: `http_503`, `err_invalid_request`, `timeout_headers`,
 * `connection_refused`, `response_too_large`, ...
 */
import type dns from 'node:dns'
import { performance } from 'node:perf_hooks'
import { Agent } from 'undici'
import { checkPushUrl, guardedLookup } from './address-guard.js'

export interface PushClientOptions {
  /** Permit http: and non-public addresses. Development and tests only. */
  allowPrivate: boolean
  connectTimeoutMs: number
  /** Applies to waiting for the response headers, and again to the body. */
  requestTimeoutMs: number
  maxResponseBytes: number
  connectionsPerOrigin: number
  userAgent: string
  /** Replaces dns.lookup, for tests. */
  lookup?: typeof dns.lookup
}

export type PushOutcome =
  | { kind: 'delivered'; status: number; latencyMs: number }
  | { kind: 'retry'; status?: number; error: string; retryAfterMs?: number; latencyMs: number }
  | {
      kind: 'failed'
      status?: number
      error: string
      err?: string
      description?: string
      latencyMs: number
    }

export interface PushRequest {
  url: string
  /** Sent verbatim as the Authorization header (SSF `authorization_header`). */
  authorization?: string
  /** The compact SET, sent as the whole body. */
  set: string
  /**
   * Control and priority SETs: sent over connections of their own, so they never queue behind a
   * stream's window of normal SETs waiting for a connection to the same receiver.
   */
  urgent?: boolean
  signal?: AbortSignal
}

export interface PushClient {
  push(req: PushRequest): Promise<PushOutcome>
  close(): Promise<void>
}

const MAX_RETRY_AFTER_MS = 3_600_000
const MAX_DESCRIPTION = 512
const MAX_ERR_CODE = 64
const RETRYABLE_ERR_CODES = new Set(['invalid_key', 'authentication_failed'])
const PERMANENT_ERR_CODES = new Set([
  'invalid_request',
  'invalid_issuer',
  'invalid_audience',
  'access_denied',
  'invalid_state',
])

/** Error codes of failures before or during the exchange, by what they mean for us. */
const NETWORK_ERRORS: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'timeout_connect',
  ETIMEDOUT: 'timeout_connect',
  UND_ERR_HEADERS_TIMEOUT: 'timeout_headers',
  UND_ERR_BODY_TIMEOUT: 'timeout_body',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'response_too_large',
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  UND_ERR_SOCKET: 'connection_closed',
  ENOTFOUND: 'dns_not_found',
  EAI_AGAIN: 'dns_error',
  EHOSTUNREACH: 'host_unreachable',
  ENETUNREACH: 'network_unreachable',
}

function positiveInteger(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`createPushClient: ${name} must be a positive integer`)
  }
}

export function createPushClient(options: PushClientOptions): PushClient {
  if (typeof options.allowPrivate !== 'boolean')
    throw new TypeError('createPushClient: allowPrivate must be a boolean')
  positiveInteger('connectTimeoutMs', options.connectTimeoutMs)
  positiveInteger('requestTimeoutMs', options.requestTimeoutMs)
  positiveInteger('maxResponseBytes', options.maxResponseBytes)
  positiveInteger('connectionsPerOrigin', options.connectionsPerOrigin)
  if (typeof options.userAgent !== 'string' || !/^[\x20-\x7e]+$/.test(options.userAgent)) {
    throw new TypeError('createPushClient: userAgent must be a non-empty printable ASCII string')
  }
  if (options.lookup !== undefined && typeof options.lookup !== 'function')
    throw new TypeError('createPushClient: lookup must be a function')

  const { allowPrivate, maxResponseBytes, userAgent } = options
  const totalMs = options.connectTimeoutMs + 2 * options.requestTimeoutMs
  const agentWith = (connections: number) =>
    new Agent({
      connections,
      pipelining: 1,
      connect: {
        timeout: options.connectTimeoutMs,
        lookup: guardedLookup(allowPrivate, options.lookup),
      },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      maxResponseSize: maxResponseBytes,
    })
  const agent = agentWith(options.connectionsPerOrigin)
  const urgentAgent = agentWith(Math.max(2, Math.ceil(options.connectionsPerOrigin / 4)))

  async function push(req: PushRequest): Promise<PushOutcome> {
    const started = performance.now()
    const latency = () => performance.now() - started

    const problem = checkPushUrl(req.url, allowPrivate)
    if (problem)
      return { kind: 'failed', error: `address_not_allowed: ${problem}`, latencyMs: latency() }
    if (req.authorization !== undefined && !/^[\x20-\x7e]+$/.test(req.authorization)) {
      return { kind: 'failed', error: 'invalid_authorization', latencyMs: latency() }
    }
    const url = new URL(req.url)
    const headers: Record<string, string> = {
      'content-type': 'application/secevent+jwt',
      accept: 'application/json',
      'user-agent': userAgent,
    }
    if (req.authorization !== undefined) headers.authorization = req.authorization

    // One signal for the overall deadline and the caller's cancellation; it also covers reading the body.
    const controller = new AbortController()
    const deadline = setTimeout(
      () =>
        controller.abort(
          Object.assign(new Error('push deadline exceeded'), { code: 'PUSH_DEADLINE' }),
        ),
      totalMs,
    )
    const onCallerAbort = () => controller.abort(req.signal?.reason)
    if (req.signal?.aborted) onCallerAbort()
    else req.signal?.addEventListener('abort', onCallerAbort, { once: true })

    try {
      const res = await (req.urgent ? urgentAgent : agent).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers,
        body: req.set,
        signal: controller.signal,
      })
      const status = res.statusCode

      if (status === 400) {
        let text: string
        try {
          text = await res.body.text()
        } catch (err) {
          return {
            kind: 'failed',
            status,
            error: networkError(err, controller.signal),
            latencyMs: latency(),
          }
        }
        return setErrorOutcome(text, latency())
      }

      // Read and discard (bounded) so the socket goes back to the pool; dump swallows body errors.
      await res.body.dump({ limit: maxResponseBytes })
      const latencyMs = latency()
      if (status >= 200 && status < 300) return { kind: 'delivered', status, latencyMs }
      if (status === 408 || status === 429 || status >= 500) {
        const retryAfterMs =
          status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined
        return {
          kind: 'retry',
          status,
          error: `http_${status}`,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          latencyMs,
        }
      }
      return { kind: 'failed', status, error: `http_${status}`, latencyMs }
    } catch (err) {
      const latencyMs = latency()
      if (codeOf(err) === 'ERR_SSRF_BLOCKED') {
        return {
          kind: 'failed',
          error: `address_not_allowed: ${(err as Error).message}`,
          latencyMs,
        }
      }
      return { kind: 'retry', error: networkError(err, controller.signal), latencyMs }
    } finally {
      clearTimeout(deadline)
      req.signal?.removeEventListener('abort', onCallerAbort)
    }
  }

  return {
    push,
    close: async () => {
      await Promise.all([agent.close(), urgentAgent.close()])
    },
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function networkError(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return codeOf(signal.reason) === 'PUSH_DEADLINE' ? 'timeout_total' : 'aborted'
  const code = codeOf(err)
  if (code === undefined) return 'network_error'
  const known = NETWORK_ERRORS[code]
  if (known) return known
  if (/CERT|SSL|TLS/.test(code)) return 'tls_error'
  return /^[A-Z0-9_]{1,40}$/.test(code) ? `network_${code.toLowerCase()}` : 'network_error'
}

/** RFC 8935 §2.3 error body `{ "err", "description"? }`; the receiver is untrusted, so keep only bounded strings. */
function setErrorOutcome(text: string, latencyMs: number): PushOutcome {
  const status = 400
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { kind: 'failed', status, error: 'http_400', latencyMs }
  }
  const fields =
    typeof body === 'object' && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : {}
  const { err, description } = fields
  if (typeof err !== 'string' || err === '')
    return { kind: 'failed', status, error: 'http_400', latencyMs }
  if (RETRYABLE_ERR_CODES.has(err)) return { kind: 'retry', status, error: `err_${err}`, latencyMs }
  return {
    kind: 'failed',
    status,
    error: PERMANENT_ERR_CODES.has(err) ? `err_${err}` : 'err_unknown',
    err: err.slice(0, MAX_ERR_CODE),
    ...(typeof description === 'string'
      ? { description: description.slice(0, MAX_DESCRIPTION) }
      : {}),
    latencyMs,
  }
}

/** `Retry-After` as delta-seconds or an HTTP-date, in ms from now, clamped to [0, 1 h]. */
function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!text) return undefined
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - Date.now()
  if (Number.isNaN(ms)) return undefined
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS)
}
