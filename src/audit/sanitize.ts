/**
 * What may enter the audit trail: never bearer tokens, authorization headers, passwords or key material,
 * whoever the caller is and whatever it passes (the trail is kept for a long time and exported to SIEMs).
 *
 * - Members are dropped by name: a name whose words (split at `_`, `-`, `.`, spaces and camelCase)
 *   include token, authorization, bearer, secret, password, cookie, key, jwk, ... is dropped, unless
 *   its last word says it is only an identifier or a description of one (`token_jti`, `key_id`, `kid`,
 *   `token_type`, `credential_type`, `*_hash`).
 * - String values that look like credentials are redacted wherever they appear: `Bearer`/`Basic`/`DPoP`
 *   credentials, the broker's own client and admin tokens, compact JWS/JWT (access tokens and SETs
 *   alike), and PEM private keys. An object shaped like a private JWK (`kty` with `d`) is dropped whole.
 * - Strings are capped at 4096 characters and nesting at 12 levels.
 *
 * The result lists the paths it dropped or redacted, so an operator can see that something was removed
 * (never what).
 */
const SECRET_WORDS = new Set([
  'token',
  'tokens',
  'authorization',
  'authorisation',
  'auth',
  'bearer',
  'secret',
  'secrets',
  'password',
  'passwords',
  'passwd',
  'pwd',
  'passphrase',
  'cookie',
  'cookies',
  'key',
  'keys',
  'apikey',
  'privatekey',
  'jwk',
  'jwks',
  'pem',
  'otp',
  'signature',
  'credentials',
])

/** A last word that makes the member an identifier or a description, not the secret itself. */
const IDENTIFIER_WORDS = new Set([
  'jti',
  'id',
  'ids',
  'kid',
  'type',
  'types',
  'hash',
  'fingerprint',
  'thumbprint',
  'alg',
  'count',
  'format',
  'hint',
  'at',
  'exp',
  'expires',
  'name',
  'names',
  'url',
  'uri',
  'endpoint',
])

const MAX_STRING = 4096
const MAX_DEPTH = 12
export const REDACTED = '[redacted]'

function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean)
}

function judgeName(name: string): boolean {
  const w = words(name)
  if (!w.some((word) => SECRET_WORDS.has(word))) return false
  return !IDENTIFIER_WORDS.has(w[w.length - 1]!)
}

/** Member names seen, judged once each (records use a few dozen names; bounded for arbitrary input). */
const judged = new Map<string, boolean>()
const MAX_JUDGED = 10_000

/** True for member names that hold (or may hold) a secret. */
export function isSecretName(name: string): boolean {
  let secret = judged.get(name)
  if (secret === undefined) {
    secret = judgeName(name)
    if (judged.size >= MAX_JUDGED) judged.clear()
    judged.set(name, secret)
  }
  return secret
}

const CREDENTIAL_PATTERNS: RegExp[] = [
  /\b(?:bearer|basic|dpop)\s+[A-Za-z0-9._~+/=-]{16,}/gi,
  /\bssf_admin_[A-Za-z0-9_-]{16,}/g,
  /\bssf_[A-Za-z0-9_-]{16,64}\.[A-Za-z0-9_-]{16,}/g,
  /\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g,
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
]

/** What every credential pattern needs somewhere in the string: most strings (ids, times) have none. */
const MAY_HOLD_CREDENTIAL = /bearer|basic|dpop|ssf_|eyJ|-----BEGIN/i

function scrubString(value: string): { value: string; changed: boolean } {
  let out = value
  if (MAY_HOLD_CREDENTIAL.test(value))
    for (const pattern of CREDENTIAL_PATTERNS) out = out.replace(pattern, REDACTED)
  const changed = out !== value
  if (out.length > MAX_STRING) out = `${out.slice(0, MAX_STRING)}…`
  return { value: out, changed }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function walk(value: unknown, path: string, depth: number, redacted: string[]): unknown {
  if (typeof value === 'string') {
    const { value: out, changed } = scrubString(value)
    if (changed) redacted.push(path)
    return out
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'boolean' || value === null) return value
  if (depth >= MAX_DEPTH) {
    redacted.push(path)
    return null
  }
  if (Array.isArray(value))
    return value.map((item, i) => walk(item, `${path}[${i}]`, depth + 1, redacted))
  if (isObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, member] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key
      if (
        member === undefined ||
        typeof member === 'function' ||
        typeof member === 'symbol' ||
        typeof member === 'bigint'
      )
        continue
      if (
        isSecretName(key) ||
        (isObject(member) && typeof member.kty === 'string' && 'd' in member)
      ) {
        redacted.push(at)
        continue
      }
      out[key] = walk(member, at, depth + 1, redacted)
    }
    return out
  }
  return undefined
}

/** A copy of `input` safe to store, and the paths that were dropped or redacted. */
export function sanitize(input: Record<string, unknown>): {
  value: Record<string, unknown>
  redacted: string[]
} {
  const redacted: string[] = []
  const value = walk(input, '', 0, redacted) as Record<string, unknown>
  return { value, redacted }
}
