/**
 * The receiver's one outbound HTTP path (to the transmitter: discovery, JWKS, stream management, poll).
 * undici `request` with explicit header and body timeouts, a capped response body, and no redirects
 * (undici's `request` never follows them), so a hostile or hung transmitter cannot hold a receiver.
 *
 * @module
 */
import { request, type Dispatcher } from 'undici'
import { ReceiverError } from './errors.js'

/** HTTP settings shared by everything that talks to the transmitter. */
export interface HttpSettings {
  /** Timeout for the response headers, and again for the body. */
  timeoutMs: number
  /** Largest response body read, in bytes. */
  maxResponseBytes: number
  /** An undici dispatcher (proxy, custom TLS, test agent). Default: undici's global dispatcher. */
  dispatcher?: Dispatcher | undefined
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
  headers?: Record<string, string>
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown
  signal?: AbortSignal | undefined
  /** Overrides `settings.timeoutMs` (long polls wait longer than other calls). */
  timeoutMs?: number
}

export interface HttpResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/**
 * One HTTP exchange. Transport failures throw `ERR_TRANSMITTER_UNREACHABLE`; an abort through `signal`
 * rethrows the signal's reason unchanged, so callers can tell a stop from a failure.
 */
export async function httpRequest(
  url: string,
  req: HttpRequest,
  settings: HttpSettings,
): Promise<HttpResponse> {
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers }
  let body: string | undefined
  if (req.json !== undefined) {
    body = JSON.stringify(req.json)
    headers['content-type'] = 'application/json'
  }
  const timeout = req.timeoutMs ?? settings.timeoutMs
  if (req.signal?.aborted) throw abortReason(req.signal)
  let res: Dispatcher.ResponseData
  try {
    res = await request(url, {
      method: req.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(req.signal ? { signal: req.signal } : {}),
      ...(settings.dispatcher ? { dispatcher: settings.dispatcher } : {}),
    })
  } catch (error) {
    if (req.signal?.aborted) throw abortReason(req.signal)
    throw new ReceiverError(
      'ERR_TRANSMITTER_UNREACHABLE',
      `${req.method} ${safeUrl(url)} failed: ${describe(error)}`,
      { cause: error },
    )
  }
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > settings.maxResponseBytes) {
    res.body.destroy()
    throw new ReceiverError(
      'ERR_TRANSMITTER_RESPONSE_INVALID',
      `${req.method} ${safeUrl(url)}: response larger than ${settings.maxResponseBytes} bytes`,
      { status: res.statusCode },
    )
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body) {
      const buf = chunk as Buffer
      size += buf.length
      if (size > settings.maxResponseBytes) {
        res.body.destroy()
        throw new ReceiverError(
          'ERR_TRANSMITTER_RESPONSE_INVALID',
          `${req.method} ${safeUrl(url)}: response larger than ${settings.maxResponseBytes} bytes`,
          { status: res.statusCode },
        )
      }
      chunks.push(buf)
    }
  } catch (error) {
    if (error instanceof ReceiverError) throw error
    if (req.signal?.aborted) throw abortReason(req.signal)
    throw new ReceiverError(
      'ERR_TRANSMITTER_UNREACHABLE',
      `${req.method} ${safeUrl(url)}: reading the response failed: ${describe(error)}`,
      { cause: error },
    )
  }
  return {
    status: res.statusCode,
    headers: res.headers,
    text: Buffer.concat(chunks).toString('utf8'),
  }
}

/** Parses a JSON body, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A URL without query or credentials, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return '(invalid URL)'
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? `${code}` : error.name
  }
  return 'unknown error'
}

/** Throws a coded error for a non-2xx answer from the transmitter, with its JSON error code if any. */
export function transmitterHttpError(what: string, res: HttpResponse): ReceiverError {
  const body = parseJson(res.text)
  const code = isObject(body)
    ? typeof body.error === 'string'
      ? body.error
      : typeof body.err === 'string'
        ? body.err
        : undefined
    : undefined
  const description = isObject(body)
    ? typeof body.error_description === 'string'
      ? body.error_description
      : typeof body.description === 'string'
        ? body.description
        : undefined
    : undefined
  const detail = [code, description].filter(Boolean).join(': ').slice(0, 300)
  return new ReceiverError(
    'ERR_TRANSMITTER_HTTP',
    `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`,
    {
      status: res.status,
      ...(code !== undefined ? { transmitterError: code } : {}),
    },
  )
}

/** Resolves a {@link TokenSource}-like value to an `Authorization` header value. */
export async function bearerHeader(
  token: string | (() => string | Promise<string>),
): Promise<string> {
  const value = typeof token === 'function' ? await token() : token
  return `Bearer ${value}`
}
