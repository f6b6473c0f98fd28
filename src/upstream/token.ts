/**
 * The access token the broker presents to an upstream: a fixed bearer token, or one obtained with the
 * OAuth 2.0 client-credentials grant (RFC 6749 §4.4, client authenticated with HTTP Basic, §2.3.1) and
 * fetched again before it expires. Concurrent callers share one token request.
 */
import { request, type Dispatcher } from 'undici'

/** Refetch this long before `expires_in` runs out. */
const REFRESH_MARGIN_MS = 30_000
/** A token without `expires_in` is refetched after this long. */
const DEFAULT_LIFETIME_MS = 300_000
const MAX_TOKEN_RESPONSE = 64 * 1024

export type TokenConfig =
  | { type: 'bearer'; token: string }
  | {
      type: 'client_credentials'
      token_endpoint: string
      client_id: string
      client_secret: string
      scope?: string | undefined
    }

export class TokenError extends Error {
  override name = 'TokenError'
}

export interface TokenProvider {
  /** The current token (fetching or refreshing it when needed). */
  get(): Promise<string>
  /** Drops the cached token, e.g. after the upstream answered 401. */
  invalidate(): void
}

export function createTokenProvider(
  source: TokenConfig,
  http: { dispatcher: Dispatcher; timeoutMs: number },
  now: () => number = Date.now,
): TokenProvider {
  if (source.type === 'bearer') return { get: async () => source.token, invalidate: () => {} }
  const config = source
  let cached: { token: string; refreshAt: number } | undefined
  let inflight: Promise<string> | undefined

  async function fetchToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' })
    if (config.scope) form.set('scope', config.scope)
    const basic = Buffer.from(
      `${encodeURIComponent(config.client_id)}:${encodeURIComponent(config.client_secret)}`,
    ).toString('base64')
    let res: Dispatcher.ResponseData
    try {
      res = await request(config.token_endpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
        dispatcher: http.dispatcher,
        headersTimeout: http.timeoutMs,
        bodyTimeout: http.timeoutMs,
      })
    } catch (error) {
      throw new TokenError(
        `token request failed: ${(error as { code?: string }).code ?? (error as Error).name}`,
      )
    }
    const text = await readCapped(res)
    let body: Record<string, unknown> | undefined
    try {
      const parsed = JSON.parse(text) as unknown
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        body = parsed as Record<string, unknown>
    } catch {
      body = undefined
    }
    if (res.statusCode !== 200) {
      const code = typeof body?.error === 'string' ? `: ${body.error.slice(0, 100)}` : ''
      throw new TokenError(`token endpoint answered HTTP ${res.statusCode}${code}`)
    }
    if (!body || typeof body.access_token !== 'string' || body.access_token === '')
      throw new TokenError('token endpoint answer has no access_token')
    if (typeof body.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer')
      throw new TokenError(`token type "${body.token_type.slice(0, 40)}" is not bearer`)
    const lifetimeMs =
      typeof body.expires_in === 'number' && body.expires_in > 0
        ? body.expires_in * 1000
        : DEFAULT_LIFETIME_MS
    // Refresh before expiry; a very short-lived token is refreshed after half its lifetime.
    cached = {
      token: body.access_token,
      refreshAt: now() + Math.max(lifetimeMs - REFRESH_MARGIN_MS, lifetimeMs / 2),
    }
    return body.access_token
  }

  return {
    async get() {
      if (cached && now() < cached.refreshAt) return cached.token
      inflight ??= fetchToken().finally(() => {
        inflight = undefined
      })
      return inflight
    },
    invalidate() {
      cached = undefined
    },
  }
}

async function readCapped(res: Dispatcher.ResponseData): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length
    if (size > MAX_TOKEN_RESPONSE) {
      res.body.destroy()
      throw new TokenError('token endpoint answer too large')
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
