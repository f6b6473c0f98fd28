/**
 * Reads a JSON request body: `Content-Type: application/json` required (415), size capped (413),
 * nesting depth capped (400, checked on the text before parsing, without recursion), syntax checked
 * (400), and no string or member name holding NUL or an unpaired surrogate (400). hono's own validator
 * would silently validate `{}` on a wrong content type.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { BrokerError } from '../errors.js'
import { badRequest } from './errors.js'
import { notText } from '../lib/safe-text.js'
import { NULL_MEMBER } from './schema.js'

export const DEFAULT_MAX_JSON_DEPTH = 32

const depthLimits = new WeakMap<Request, number>()

/** Sets the nesting depth readJsonBody allows for the requests of this app (SSF_BROKER_MAX_JSON_DEPTH). */
export function jsonLimits(maxDepth: number): MiddlewareHandler {
  return async function jsonDepthLimit(c, next) {
    depthLimits.set(c.req.raw, maxDepth)
    await next()
  }
}

/**
 * The deepest nesting of arrays and objects in JSON text, stopping as soon as it exceeds `limit`. A linear
 * scan that skips string contents; it does not check syntax (JSON.parse does that next).
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (inString) {
      if (ch === 0x5c)
        i++ // backslash: skip the escaped character
      else if (ch === 0x22) inString = false
      continue
    }
    if (ch === 0x22) inString = true
    else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > limit) return true
    } else if (ch === 0x7d || ch === 0x5d) depth--
  }
  return false
}

/** First string or member name in `value` that is not text (NUL, lone surrogate), with its path. */
function firstNonText(value: unknown): string | undefined {
  const pending: [unknown, string][] = [[value, '']]
  while (pending.length > 0) {
    const [current, path] = pending.pop()!
    if (typeof current === 'string') {
      const problem = notText(current)
      if (problem) return `${path || 'body'}: ${problem}`
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) pending.push([current[i], `${path}[${i}]`])
    } else if (typeof current === 'object' && current !== null) {
      for (const [key, member] of Object.entries(current)) {
        const problem = notText(key)
        if (problem) return `${path || 'body'}: a member name ${problem}`
        pending.push([member, path ? `${path}.${key.slice(0, 64)}` : key.slice(0, 64)])
      }
    }
  }
  return undefined
}

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type') ?? ''
  const mediaType = type.split(';')[0]!.trim().toLowerCase()
  if (mediaType !== 'application/json') {
    throw new BrokerError(
      'unsupported_media_type',
      `Content-Type must be application/json, got "${mediaType || '(none)'}"`,
    )
  }
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > maxBytes) throw tooLarge(maxBytes)
  const text = await readText(c, maxBytes)
  if (text.trim() === '') throw badRequest('request body is empty', 'invalid_json')
  const maxDepth = depthLimits.get(c.req.raw) ?? DEFAULT_MAX_JSON_DEPTH
  if (jsonDepthExceeds(text, maxDepth))
    throw badRequest(`request body is nested deeper than ${maxDepth} levels`, 'invalid_json')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`, 'invalid_json')
  }
  const problem = firstNonText(value)
  if (problem) throw badRequest(problem)
  return value
}

/**
 * The body as text, at most `maxBytes`. A body with a Content-Length (already checked against the cap;
 * Node's parser never delivers more than it declares) is read whole: under @hono/node-server that reads
 * Node's request stream directly, several times cheaper than the web ReadableStream on the broker's
 * busiest endpoint. A chunked body is read through the stream and cut off at the cap.
 */
async function readText(c: Context, maxBytes: number): Promise<string> {
  if (c.req.header('content-length') !== undefined) {
    try {
      return await c.req.raw.text()
    } catch {
      throw unreadable()
    }
  }
  const body = c.req.raw.body
  if (!body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>
    try {
      chunk = await reader.read()
    } catch {
      throw unreadable()
    }
    const { done, value } = chunk
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooLarge(maxBytes)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The body could not be read to its end: the client went away or broke off mid-body. Nothing is kept. */
function unreadable(): BrokerError {
  return badRequest('request body could not be read to its end (connection closed or aborted)')
}

function tooLarge(maxBytes: number): BrokerError {
  return new BrokerError('payload_too_large', `request body exceeds ${maxBytes} bytes`)
}

/** 400 for the first member whose value is `null`. */
export function rejectNullMembers(obj: Record<string, unknown>, prefix = ''): void {
  for (const [key, value] of Object.entries(obj)) {
    if (value === null) throw badRequest(`${prefix}${key.slice(0, 64)}: ${NULL_MEMBER}`)
  }
}
