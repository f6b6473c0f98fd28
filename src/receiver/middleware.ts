/**
 * Enforcement middleware for hono: the resource-server side of CAEP session revocation (CAEP §3.1) and
 * draft-klrc-aiagent-auth remediation. Each request's bearer token (RFC 6750 §2.1) is verified by the
 * application's own verifier, then checked against the revocation index: `sub`, `sid`, `client_id` /
 * `azp`, `jti`, `email`, and every actor of the RFC 8693 `act` chain. A revoked token gets `401` with
 * `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
 *
 * Live work is stopped the moment a matching revocation is recorded, not at the next request:
 * - `c.get('ssfSignal')` aborts (pass it to tool calls, upstream fetches, `streamSSE` loops);
 * - a request still being handled is answered `401` at once;
 * - a streaming response (SSE, NDJSON by default) is closed, after a final SSE `revoked` event.
 *
 * The watch starts before the index is read, so a revocation recorded between the check and the end
 * of the response is never missed.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono'
import { isObject } from './http.js'
import type { RevocationIndex } from './revocation-index.js'
import type { RevocationRecord } from './revocation.js'
import { TokenRevokedError } from './live-work.js'
import type { TokenClaims } from './types.js'

/** Context variables the middleware sets. */
export type RevocationEnv = {
  Variables: {
    /** The verified access token's claims. */
    ssfToken: TokenClaims
    /** Aborts (reason: `TokenRevokedError`) when the token is revoked while the request or its stream lives. */
    ssfSignal: AbortSignal
  }
}

/** What the hooks are told. */
export interface RevocationHookInfo {
  claims: TokenClaims
  revocation: RevocationRecord
  /** `refused`: at the start of a request; `request`: while it was handled; `stream`: while streaming. */
  phase: 'refused' | 'request' | 'stream'
}

/** Options of {@link revocationMiddleware}. */
export interface RevocationMiddlewareOptions {
  index: RevocationIndex
  /** The application's own access-token verifier (signature, issuer, audience, expiry); throw to refuse. */
  verifyToken: (token: string, c: Context) => TokenClaims | Promise<TokenClaims>
  /** `realm` of the `WWW-Authenticate` challenge. */
  realm?: string
  /**
   * Which responses are live streams, closed when the token is revoked.
   * @defaultValue `text/event-stream`, `application/x-ndjson`, `application/jsonl` responses
   */
  isStreaming?: (res: Response) => boolean
  /** Called whenever a token is refused or its live work is ended. Must not throw. */
  onRevoked?: (info: RevocationHookInfo) => void
  /**
   * When the index cannot be read: `closed` answers 503, `open` lets the request through.
   * @defaultValue 'closed'
   */
  failMode?: 'closed' | 'open'
}

const STREAM_TYPES = /^(text\/event-stream|application\/x-ndjson|application\/jsonl)\b/i
const encoder = new TextEncoder()

function defaultIsStreaming(res: Response): boolean {
  return res.body !== null && STREAM_TYPES.test(res.headers.get('content-type') ?? '')
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header) : null
  return match?.[1]
}

const quote = (s: string) => s.replace(/[\\"]/g, '\\$&')

function challenge(
  realm: string | undefined,
  error?: { code: string; description: string },
  status = 401,
): Response {
  const params = [
    realm !== undefined ? `realm="${quote(realm)}"` : undefined,
    error ? `error="${error.code}"` : undefined,
    error ? `error_description="${quote(error.description)}"` : undefined,
  ].filter(Boolean)
  return new Response(
    JSON.stringify(
      error
        ? { error: error.code, error_description: error.description }
        : { error: 'unauthorized', error_description: 'a bearer token is required' },
    ),
    {
      status,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'www-authenticate': params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer',
      },
    },
  )
}

const REVOKED = { code: 'invalid_token', description: 'the access token has been revoked' }

/** Passes a response body through, closing it when `signal` aborts. */
function guardBody(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  sse: boolean,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  let finished = false
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const finish = () => {
    if (finished) return false
    finished = true
    signal.removeEventListener('abort', onAbort)
    onEnd()
    return true
  }
  const onAbort = () => {
    if (!finish()) return
    try {
      if (sse)
        controller.enqueue(
          encoder.encode(
            `event: revoked\ndata: ${JSON.stringify({ error: REVOKED.code, error_description: REVOKED.description })}\n\n`,
          ),
        )
      controller.close()
    } catch {
      // already closed
    }
    reader.cancel(signal.reason).catch(() => {})
  }
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    },
    async pull(c) {
      try {
        const { done, value } = await reader.read()
        if (finished) return
        if (done) {
          finish()
          c.close()
        } else c.enqueue(value)
      } catch (error) {
        if (finish()) c.error(error)
      }
    },
    cancel(reason) {
      finish()
      return reader.cancel(reason)
    },
  })
}

/**
 * Creates the enforcement middleware.
 *
 * @example
 * ```ts
 * const app = new Hono<RevocationEnv>()
 * app.use('/api/*', revocationMiddleware({
 *   index,
 *   verifyToken: async (token) => (await jwtVerify(token, asJwks, { issuer: AS, audience: 'api' })).payload,
 * }))
 * app.get('/api/stream', (c) => streamSSE(c, async (s) => {
 *   const signal = c.get('ssfSignal')
 *   while (!signal.aborted) await s.writeSSE({ data: await nextChunk({ signal }) })
 * }))
 * ```
 */
export function revocationMiddleware(
  options: RevocationMiddlewareOptions,
): MiddlewareHandler<RevocationEnv> {
  if (
    !options ||
    typeof options.index?.check !== 'function' ||
    typeof options.index.watch !== 'function'
  )
    throw new TypeError('index: a RevocationIndex is required')
  if (typeof options.verifyToken !== 'function')
    throw new TypeError("verifyToken: the application's access-token verifier is required")
  if (
    options.failMode !== undefined &&
    options.failMode !== 'closed' &&
    options.failMode !== 'open'
  )
    throw new TypeError('failMode: "closed" or "open"')
  const { index, realm } = options
  const isStreaming = options.isStreaming ?? defaultIsStreaming
  const hook = (info: RevocationHookInfo) => {
    try {
      options.onRevoked?.(info)
    } catch {
      // Hooks never change the answer.
    }
  }
  const revocationOf = (signal: AbortSignal): RevocationRecord | undefined =>
    signal.reason instanceof TokenRevokedError ? signal.reason.revocation : undefined

  return async function enforceRevocations(c, next) {
    const token = bearerToken(c.req.header('authorization'))
    if (!token) return challenge(realm)
    let claims: TokenClaims
    try {
      claims = await options.verifyToken(token, c)
    } catch {
      return challenge(realm, {
        code: 'invalid_token',
        description: 'the access token is not valid',
      })
    }
    if (!isObject(claims))
      return challenge(realm, {
        code: 'invalid_token',
        description: 'the access token is not valid',
      })

    const watch = index.watch(claims)
    let hit: RevocationRecord | undefined
    try {
      hit = await index.check(claims)
    } catch {
      if (options.failMode !== 'open') {
        watch.release()
        return new Response(
          JSON.stringify({
            error: 'temporarily_unavailable',
            error_description: 'revocation state is unavailable',
          }),
          {
            status: 503,
            headers: {
              'content-type': 'application/json',
              'retry-after': '1',
              'cache-control': 'no-store',
            },
          },
        )
      }
    }
    hit ??= revocationOf(watch.signal)
    if (hit) {
      watch.release()
      hook({ claims, revocation: hit, phase: 'refused' })
      return challenge(realm, REVOKED)
    }

    c.set('ssfToken', claims)
    c.set('ssfSignal', watch.signal)
    const handled = next()
    let onAbort: (() => void) | undefined
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted')
      watch.signal.addEventListener('abort', onAbort, { once: true })
    })
    let outcome: 'done' | 'aborted'
    try {
      outcome = await Promise.race([handled.then(() => 'done' as const), aborted])
    } catch (error) {
      watch.release()
      throw error
    } finally {
      if (onAbort) watch.signal.removeEventListener('abort', onAbort)
    }
    if (outcome === 'aborted') {
      // The handler is told through ssfSignal. Whatever it answers, now or later, is replaced: a response
      // it already set is discarded (its body cancelled), and a later one is ignored by hono once this
      // one is in place.
      handled.catch(() => {})
      watch.release()
      const revocation = revocationOf(watch.signal)
      if (revocation) hook({ claims, revocation, phase: 'request' })
      if (c.finalized) c.res.body?.cancel().catch(() => {})
      c.res = challenge(realm, REVOKED)
      return c.res
    }

    const res = c.res
    if (res.body && isStreaming(res)) {
      const sse = /^text\/event-stream/i.test(res.headers.get('content-type') ?? '')
      const body = guardBody(res.body, watch.signal, sse, () => {
        const revocation = revocationOf(watch.signal)
        if (revocation) hook({ claims, revocation, phase: 'stream' })
        watch.release()
      })
      c.res = new Response(body, {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
      })
      return undefined
    }
    watch.release()
    return undefined
  }
}
