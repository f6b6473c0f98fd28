/**
 * Push delivery endpoint (RFC 8935 §2, SSF §6.1.1): the transmitter POSTs one compact SET with
 * `Content-Type: application/secevent+jwt`. The answer is `202 Accepted` once the SET is verified and
 * handled (an empty body), or `400` with `{"err", "description"}` using the RFC 8935 §2.4 codes (and SSF's
 * `invalid_state`). The configured `Authorization` value (SSF `authorization_header`) is compared in
 * constant time; a wrong or missing one is `authentication_failed`.
 *
 * Other answers: `405` for a method other than POST, `413` for a body over the limit, `503` with
 * `Retry-After` when the transmitter's keys cannot be fetched or a store is down (a `ReceiverError`
 * without `setErr`), and also when the application's handler failed otherwise: transmitters retry a 503
 * (not every one retries a 500), and the `jti` is forgotten so the retry is processed. A SET seen before
 * is answered `202` without running the handler again: RFC 8935 §4 transmitters retry when a response
 * is lost, and receivers de-duplicate by `jti`.
 *
 * One core, three adapters: fetch-style `(Request) => Response` ({@link createPushHandler}), hono
 * ({@link createHonoPushHandler}) and plain Node `(req, res)` ({@link createNodePushHandler}).
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Handler } from 'hono'
import { ReceiverError } from './errors.js'
import type { Receiver, ReceiveResult, SetHandler } from './receiver.js'

/** How the push endpoint authenticates the transmitter's `Authorization` header. */
export type PushAuthorization =
  string | readonly string[] | ((value: string | undefined) => boolean | Promise<boolean>) | false

/** Options of the push handlers. */
export interface PushHandlerOptions {
  receiver: Receiver
  /** Runs for each new verified SET; throw to refuse it (a `ReceiverError` with a `setErr` answers 400). */
  onEvent: SetHandler
  /**
   * The expected `Authorization` header value(s) (the stream's `authorization_header`), a function
   * deciding, or `false` to rely on the SET signature alone.
   */
  authorization: PushAuthorization
  /**
   * Largest request body, in bytes.
   * @defaultValue 65536
   */
  maxBodyBytes?: number
  /** Told about every refused or failed push (for logs and metrics); never throws into the response. */
  onError?: (error: unknown) => void
  /** Told about every push answered 202. */
  onAccepted?: (result: ReceiveResult) => void
}

interface PushInput {
  method: string
  contentType: string | undefined
  contentLength: string | undefined
  authorization: string | undefined
  readBody(maxBytes: number): Promise<string | undefined>
}

interface PushOutput {
  status: number
  headers: Record<string, string>
  body: string | null
}

/** `Retry-After` of a 503: soon, since the causes are short outages. */
const RETRY_AFTER_SECONDS = 2

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()

function authorizer(auth: PushAuthorization): (value: string | undefined) => Promise<boolean> {
  if (auth === false) return async () => true
  if (typeof auth === 'function') return async (value) => (await auth(value)) === true
  const expected = (typeof auth === 'string' ? [auth] : [...auth]).map((v) => {
    if (typeof v !== 'string' || v === '')
      throw new TypeError('authorization: expected non-empty string values')
    return digest(v)
  })
  if (expected.length === 0) throw new TypeError('authorization: at least one value, or false')
  return async (value) => {
    if (value === undefined) return false
    const presented = digest(value)
    let ok = false
    for (const e of expected) ok = timingSafeEqual(presented, e) || ok
    return ok
  }
}

function errorBody(
  status: number,
  err: string,
  description: string,
  headers: Record<string, string> = {},
): PushOutput {
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'content-language': 'en',
      'cache-control': 'no-store',
      ...headers,
    },
    body: JSON.stringify({ err, description }),
  }
}

function isSetMediaType(contentType: string | undefined): boolean {
  return (
    contentType !== undefined &&
    contentType.split(';')[0]!.trim().toLowerCase() === 'application/secevent+jwt'
  )
}

/** The transport-neutral core shared by the adapters. */
function pushCore(options: PushHandlerOptions): (input: PushInput) => Promise<PushOutput> {
  if (!options || typeof options !== 'object')
    throw new TypeError('push handler: options are required')
  if (!options.receiver || typeof options.receiver.receive !== 'function')
    throw new TypeError('receiver: required (createReceiver)')
  if (typeof options.onEvent !== 'function') throw new TypeError('onEvent: required')
  if (options.authorization === undefined)
    throw new TypeError(
      "authorization: required (the stream's authorization_header value, or false to rely on SET signatures alone)",
    )
  const authorized = authorizer(options.authorization)
  const maxBytes = options.maxBodyBytes ?? 65_536
  if (!Number.isInteger(maxBytes) || maxBytes < 1)
    throw new TypeError('maxBodyBytes: must be a positive integer')
  const report = (error: unknown) => {
    try {
      options.onError?.(error)
    } catch {
      // Observability hooks never change the answer.
    }
  }

  return async (input) => {
    if (input.method !== 'POST') return { status: 405, headers: { allow: 'POST' }, body: null }
    if (!(await authorized(input.authorization))) {
      const error = new ReceiverError(
        'ERR_PUSH_AUTHENTICATION_FAILED',
        'the Authorization header is missing or not the one configured for this stream',
      )
      report(error)
      return errorBody(400, 'authentication_failed', error.message)
    }
    if (!isSetMediaType(input.contentType)) {
      const error = new ReceiverError(
        'ERR_PUSH_MEDIA_TYPE',
        'Content-Type must be application/secevent+jwt',
      )
      report(error)
      return errorBody(400, 'invalid_request', error.message)
    }
    const declared = input.contentLength === undefined ? undefined : Number(input.contentLength)
    const body =
      declared !== undefined && declared > maxBytes ? undefined : await input.readBody(maxBytes)
    if (body === undefined) {
      report(new ReceiverError('ERR_PUSH_BODY_TOO_LARGE', `body larger than ${maxBytes} bytes`))
      return errorBody(413, 'invalid_request', `the SET is larger than ${maxBytes} bytes`)
    }
    try {
      const result = await options.receiver.receive(body.trim(), options.onEvent)
      try {
        options.onAccepted?.(result)
      } catch {
        // ignored, as for onError
      }
      return { status: 202, headers: {}, body: null }
    } catch (error) {
      report(error)
      if (error instanceof ReceiverError && error.setErr)
        return errorBody(400, error.setErr, error.message)
      // Transient: the transmitter's metadata or keys unreachable, a store down, or the application's
      // handler failed. A retry can succeed; the handler's own message stays private.
      const description =
        error instanceof ReceiverError
          ? 'the receiver cannot process SETs right now'
          : 'the receiver failed to process the SET'
      return errorBody(503, 'temporarily_unavailable', description, {
        'retry-after': String(RETRY_AFTER_SECONDS),
      })
    }
  }
}

async function readWebBody(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<string | undefined> {
  if (!body) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function toResponse(out: PushOutput): Response {
  return new Response(out.body, { status: out.status, headers: out.headers })
}

/**
 * A fetch-style push endpoint: `(Request) => Promise<Response>`.
 *
 * @example
 * ```ts
 * const handle = createPushHandler({ receiver, authorization: 'Bearer s3cret', onEvent: (set) => index.apply(set) })
 * Deno.serve(handle) // or Bun.serve({ fetch: handle }), or any fetch-style server
 * ```
 */
export function createPushHandler(
  options: PushHandlerOptions,
): (request: Request) => Promise<Response> {
  const core = pushCore(options)
  return async (request) =>
    toResponse(
      await core({
        method: request.method,
        contentType: request.headers.get('content-type') ?? undefined,
        contentLength: request.headers.get('content-length') ?? undefined,
        authorization: request.headers.get('authorization') ?? undefined,
        readBody: (max) => readWebBody(request.body, max),
      }),
    )
}

/**
 * A hono handler for the push endpoint.
 *
 * @example
 * ```ts
 * app.post('/ssf/events', createHonoPushHandler({ receiver, authorization: `Bearer ${secret}`, onEvent: (set) => index.apply(set) }))
 * ```
 */
export function createHonoPushHandler(options: PushHandlerOptions): Handler {
  const handle = createPushHandler(options)
  return (c) => handle(c.req.raw)
}

/**
 * A plain Node `(req, res)` push endpoint (for `node:http`, Express, Fastify's raw mode, ...).
 *
 * @example
 * ```ts
 * const push = createNodePushHandler({ receiver, authorization: `Bearer ${secret}`, onEvent })
 * http.createServer((req, res) => (req.url === '/ssf/events' ? push(req, res) : res.writeHead(404).end())).listen(9000)
 * ```
 */
export function createNodePushHandler(
  options: PushHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const core = pushCore(options)
  return (req, res) => {
    const header = (name: string) => {
      const v = req.headers[name]
      return Array.isArray(v) ? v.join(', ') : v
    }
    const readBody = (max: number) =>
      new Promise<string | undefined>((resolve, reject) => {
        const chunks: Buffer[] = []
        let size = 0
        let over = false
        req.on('data', (chunk: Buffer) => {
          if (over) return
          size += chunk.length
          if (size > max) {
            over = true
            resolve(undefined)
            return
          }
          chunks.push(chunk)
        })
        req.on('end', () => {
          if (!over) resolve(Buffer.concat(chunks).toString('utf8'))
        })
        req.on('error', reject)
      })
    core({
      method: req.method ?? 'GET',
      contentType: header('content-type'),
      contentLength: header('content-length'),
      authorization: header('authorization'),
      readBody,
    }).then(
      (out) => {
        // Do not keep reading a body we refused.
        if (out.status === 413) out.headers.connection = 'close'
        res.writeHead(out.status, out.headers).end(out.body ?? undefined)
        if (!req.complete) req.resume()
      },
      () => {
        if (!res.headersSent) res.writeHead(500).end()
      },
    )
  }
}
