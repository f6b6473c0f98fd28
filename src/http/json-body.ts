/**
 * Reads a JSON request body: `Content-Type: application/json` required (415), size capped (413),
 * syntax checked (400). hono's own validator would silently validate `{}` on a wrong content type.
 */
import type { Context } from 'hono'
import { HttpError, badRequest } from './errors.js'

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const type = c.req.header('content-type') ?? ''
  const mediaType = type.split(';')[0]!.trim().toLowerCase()
  if (mediaType !== 'application/json') {
    throw new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json, got "${mediaType || '(none)'}"`)
  }
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > maxBytes) throw tooLarge(maxBytes)
  const body = c.req.raw.body
  if (!body) throw badRequest('request body is empty', 'invalid_json')
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooLarge(maxBytes)
    }
    chunks.push(value)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw badRequest('request body is empty', 'invalid_json')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`, 'invalid_json')
  }
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, 'payload_too_large', `request body exceeds ${maxBytes} bytes`)
}

/** Object-shaped body or 400: every endpoint here takes a JSON object. */
export function asObject(value: unknown, what = 'request body'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(`${what} must be a JSON object`)
  return value as Record<string, unknown>
}

/** Rejects members outside `allowed`, naming the first unknown one. */
export function rejectUnknown(obj: Record<string, unknown>, allowed: readonly string[], prefix = ''): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw badRequest(`${prefix}${key}: unknown member`)
  }
}
