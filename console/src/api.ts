/**
 * Calls to the broker's API with the signed-in token. The token lives in this tab's sessionStorage (never
 * a URL or a cookie); any 401 signs the console out, so a revoked or rotated token brings sign-in back.
 */
const meta = (name: string) =>
  document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? ''

/** The issuer, and the path the API is mounted at (the issuer's path, "" at the root). */
export const ISSUER = meta('ssf-issuer')
export const BASE = meta('ssf-base')

const KEY = 'ssf-console-token'
let token: string | null = sessionStorage.getItem(KEY)
let signedOut: (reason: string) => void = () => {}

export const currentToken = () => token
export function onSignedOut(handler: (reason: string) => void): void {
  signedOut = handler
}
export function signIn(value: string): void {
  token = value
  sessionStorage.setItem(KEY, value)
}
export function signOut(reason = ''): void {
  token = null
  sessionStorage.removeItem(KEY)
  signedOut(reason)
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export function authHeaders(override?: string): Record<string, string> {
  const value = override ?? token
  return value ? { authorization: `Bearer ${value}` } : {}
}

/** JSON in, JSON out; a non-2xx answer throws ApiError with the API's error_description. */
export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string } = {},
): Promise<T> {
  const res = await fetch(BASE + path, {
    method,
    headers: {
      ...authHeaders(options.token),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    cache: 'no-store',
  })
  const text = await res.text()
  let json: any
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  // Only the signed-in token's failure signs out: a wrong emitter token on Emit is that form's error.
  if (res.status === 401 && options.token === undefined)
    signOut('The token stopped working (401). Sign in again.')
  if (!res.ok)
    throw new ApiError(
      res.status,
      json?.error ?? 'error',
      json?.error_description ?? `HTTP ${res.status}`,
    )
  return json as T
}

export const query = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}

export const errorText = (err: unknown) =>
  err instanceof ApiError
    ? `${err.message} (${err.code}, HTTP ${err.status})`
    : String((err as Error)?.message ?? err)
