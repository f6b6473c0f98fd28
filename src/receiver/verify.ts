/**
 * Strict SET verification: the SSF §4.1 SET profile over RFC 8417 §2 and RFC 7515 (JWS), checked step
 * by step, each failure with its own code:
 *
 * 1. Compact JWS with three parts (a five-part JWE is refused: `ERR_SET_ENCRYPTED`).
 * 2. `alg` from the allow-list (never `none`, never a MAC: a public key is never an HMAC secret).
 * 3. `typ` is `secevent+jwt` (RFC 8417 §2.3, SSF §4.1.1); no `crit` extensions.
 * 4. Signature with a key from the transmitter's JWKS.
 * 5. Claims: `iss` equals the issuer; `aud` contains one of the receiver's audiences; `iat` present and
 *    not in the future beyond the clock tolerance (and not older than `maxAge`, if set); `jti` present;
 *    no `sub` and no `exp` (SSF §4.1.2, §4.1.7); `events` with exactly one event (SSF §4.2.1, CAEP
 *    interop); `sub_id` present (SSF §3), or an in-event `subject` when legacy subjects are allowed.
 *
 * Replay (`jti`) is checked by the receiver after all of this, so invalid SETs never fill the store.
 *
 * @module
 */
import { compactVerify, type CryptoKey } from 'jose'
import { ReceiverError } from './errors.js'
import { isObject } from './http.js'
import type { SubjectIdentifier, VerifiedSet } from './types.js'

/** Asymmetric JWS algorithms a receiver may allow. MACs and `none` are never allowed. */
export const SUPPORTED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const
export type SetAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number]

/** The default allow-list: the algorithms SSF transmitters sign with (CAEP interop requires RS256). */
export const DEFAULT_ALGORITHMS: readonly SetAlgorithm[] = ['RS256', 'ES256', 'EdDSA']

/** Complex-subject members the SDK understands (SSF §3.2). */
export const STANDARD_SUBJECT_MEMBERS = [
  'user',
  'device',
  'session',
  'application',
  'tenant',
  'org_unit',
  'group',
] as const

export interface VerifyPolicy {
  issuer: string
  audiences: readonly string[]
  algorithms: ReadonlySet<string>
  clockToleranceSeconds: number
  maxAgeSeconds: number | undefined
  maxSetBytes: number
  allowLegacySubject: boolean
  /** Complex-subject members this receiver can process. */
  subjectMembers: ReadonlySet<string>
  /** The transmitter's `critical_subject_members` (SSF §3.6). */
  criticalSubjectMembers: readonly string[]
}

export type KeyResolver = (alg: string, kid: string | undefined) => Promise<CryptoKey[]>

const B64URL = /^[A-Za-z0-9_-]*$/
const decoder = new TextDecoder('utf-8', { fatal: true })

function fail(
  code: ConstructorParameters<typeof ReceiverError>[0],
  message: string,
  cause?: unknown,
): never {
  throw new ReceiverError(code, message, cause === undefined ? {} : { cause })
}

function decodeJson(part: string, what: string): unknown {
  if (!B64URL.test(part)) fail('ERR_SET_MALFORMED', `the ${what} is not base64url`)
  try {
    return JSON.parse(decoder.decode(Buffer.from(part, 'base64url'))) as unknown
  } catch (error) {
    fail('ERR_SET_MALFORMED', `the ${what} is not JSON`, error)
  }
}

/** `typ` compares case-insensitively and may omit the `application/` prefix (RFC 7515 §4.1.9). */
function isSetTyp(typ: string): boolean {
  const t = typ.toLowerCase()
  return t === 'secevent+jwt' || t === 'application/secevent+jwt'
}

const show = (value: unknown) => JSON.stringify(value)?.slice(0, 200) ?? String(value)

function checkSubject(value: unknown, path: string, depth = 0): SubjectIdentifier {
  if (!isObject(value) || typeof value.format !== 'string' || value.format === '')
    fail('ERR_SET_SUBJECT_INVALID', `${path}: must be a subject identifier with a "format"`)
  if (depth > 2) fail('ERR_SET_SUBJECT_INVALID', `${path}: nested too deeply`)
  if (value.format === 'complex') {
    for (const [member, inner] of Object.entries(value)) {
      if (member === 'format') continue
      if (!isObject(inner) || inner.format === 'complex')
        fail('ERR_SET_SUBJECT_INVALID', `${path}.${member}: must be a simple subject identifier`)
      checkSubject(inner, `${path}.${member}`, depth + 1)
    }
  } else if (value.format === 'aliases') {
    if (!Array.isArray(value.identifiers) || value.identifiers.length === 0)
      fail('ERR_SET_SUBJECT_INVALID', `${path}.identifiers: must be a non-empty array`)
    value.identifiers.forEach((id, i) => {
      if (isObject(id) && id.format === 'aliases')
        fail('ERR_SET_SUBJECT_INVALID', `${path}.identifiers[${i}]: aliases must not nest`)
      checkSubject(id, `${path}.identifiers[${i}]`, depth + 1)
    })
  }
  return value as SubjectIdentifier
}

/** The JWS header checks (steps 1–3). Returns the parsed header. */
export function checkHeader(
  compact: unknown,
  policy: VerifyPolicy,
): { header: Record<string, unknown>; alg: string; kid: string | undefined } {
  if (typeof compact !== 'string' || compact.length === 0)
    fail('ERR_SET_MALFORMED', 'the SET must be a compact JWS string')
  if (compact.length > policy.maxSetBytes)
    fail('ERR_SET_MALFORMED', `the SET is larger than ${policy.maxSetBytes} bytes`)
  const parts = compact.trim().split('.')
  if (parts.length === 5)
    fail('ERR_SET_ENCRYPTED', 'encrypted SETs (JWE) are not accepted by this receiver')
  if (parts.length !== 3)
    fail('ERR_SET_MALFORMED', 'the SET is not a compact JWS (three dot-separated parts)')
  const header = decodeJson(parts[0]!, 'JWS header')
  if (!isObject(header)) fail('ERR_SET_MALFORMED', 'the JWS header is not a JSON object')
  const alg = header.alg
  if (alg === undefined) fail('ERR_SET_MALFORMED', 'the JWS header has no "alg"')
  if (typeof alg === 'string' && alg.toLowerCase() === 'none')
    fail('ERR_SET_UNSECURED', 'unsecured SETs (alg "none") are refused')
  if (typeof alg !== 'string' || !policy.algorithms.has(alg))
    fail(
      'ERR_SET_ALG_NOT_ALLOWED',
      `alg ${show(alg)} is not allowed; allowed: ${[...policy.algorithms].join(', ')}`,
    )
  if (header.typ === undefined)
    fail('ERR_SET_TYP_MISSING', 'the JWS header has no "typ"; SETs must be typed "secevent+jwt"')
  if (typeof header.typ !== 'string' || !isSetTyp(header.typ))
    fail('ERR_SET_TYP_INVALID', `typ ${show(header.typ)} is not "secevent+jwt"`)
  if (header.crit !== undefined)
    fail(
      'ERR_SET_CRIT_UNSUPPORTED',
      'the JWS header has "crit" extensions this receiver does not process',
    )
  if (header.kid !== undefined && typeof header.kid !== 'string')
    fail('ERR_SET_MALFORMED', 'kid must be a string')
  return { header, alg, kid: header.kid as string | undefined }
}

/** Steps 4–5. `nowSeconds` is injectable for tests. */
export async function verifySetJws(
  compact: string,
  policy: VerifyPolicy,
  keys: KeyResolver,
  nowSeconds = Date.now() / 1000,
): Promise<VerifiedSet> {
  const { header, alg, kid } = checkHeader(compact, policy)
  const candidates = await keys(alg, kid)
  let payload: Uint8Array | undefined
  let lastError: unknown
  for (const key of candidates) {
    try {
      payload = (await compactVerify(compact.trim(), key, { algorithms: [alg] })).payload
      break
    } catch (error) {
      lastError = error
    }
  }
  if (!payload) fail('ERR_SET_SIGNATURE_INVALID', 'the SET signature does not verify', lastError)

  let claims: unknown
  try {
    claims = JSON.parse(decoder.decode(payload)) as unknown
  } catch (error) {
    fail('ERR_SET_MALFORMED', 'the SET payload is not JSON', error)
  }
  if (!isObject(claims)) fail('ERR_SET_MALFORMED', 'the SET payload is not a JSON object')

  if (claims.iss !== policy.issuer)
    fail(
      'ERR_SET_ISSUER_INVALID',
      claims.iss === undefined
        ? 'the SET has no "iss"'
        : `iss ${show(claims.iss)} is not the expected issuer`,
    )

  const aud = claims.aud
  const auds =
    typeof aud === 'string'
      ? [aud]
      : Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string')
        ? (aud as string[])
        : undefined
  if (!auds)
    fail(
      'ERR_SET_AUDIENCE_INVALID',
      aud === undefined
        ? 'the SET has no "aud"'
        : 'aud must be a string or a non-empty array of strings',
    )
  if (!auds.some((a) => policy.audiences.includes(a)))
    fail('ERR_SET_AUDIENCE_INVALID', `aud ${show(aud)} does not name this receiver`)

  const iat = claims.iat
  if (typeof iat !== 'number' || !Number.isFinite(iat) || iat < 0)
    fail(
      'ERR_SET_IAT_INVALID',
      iat === undefined ? 'the SET has no "iat"' : 'iat must be a NumericDate',
    )
  if (iat > nowSeconds + policy.clockToleranceSeconds)
    fail('ERR_SET_IAT_IN_FUTURE', `iat is ${Math.round(iat - nowSeconds)} s in the future`)
  if (
    policy.maxAgeSeconds !== undefined &&
    iat < nowSeconds - policy.maxAgeSeconds - policy.clockToleranceSeconds
  ) {
    fail(
      'ERR_SET_TOO_OLD',
      `the SET was issued ${Math.round(nowSeconds - iat)} s ago; the limit is ${policy.maxAgeSeconds} s`,
    )
  }

  if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256)
    fail(
      'ERR_SET_JTI_INVALID',
      claims.jti === undefined
        ? 'the SET has no "jti"'
        : 'jti must be a non-empty string of at most 256 characters',
    )
  if (claims.sub !== undefined)
    fail(
      'ERR_SET_SUB_PRESENT',
      'SETs must not contain "sub" (SSF §4.1.2); the subject goes in "sub_id"',
    )
  if (claims.exp !== undefined)
    fail('ERR_SET_EXP_PRESENT', 'SETs must not contain "exp" (SSF §4.1.7)')
  if (claims.txn !== undefined && typeof claims.txn !== 'string')
    fail('ERR_SET_CLAIM_INVALID', 'txn must be a string')
  if (claims.toe !== undefined && (typeof claims.toe !== 'number' || !Number.isFinite(claims.toe)))
    fail('ERR_SET_CLAIM_INVALID', 'toe must be a NumericDate')

  const events = claims.events
  if (!isObject(events))
    fail(
      'ERR_SET_EVENTS_INVALID',
      events === undefined ? 'the SET has no "events"' : 'events must be a JSON object',
    )
  const types = Object.keys(events)
  if (types.length === 0) fail('ERR_SET_EVENTS_INVALID', 'events is empty')
  if (types.length > 1)
    fail(
      'ERR_SET_MULTIPLE_EVENTS',
      `the SET carries ${types.length} events; exactly one is accepted`,
    )
  const type = types[0]!
  const event = events[type]
  if (!isObject(event)) fail('ERR_SET_EVENTS_INVALID', 'the event must be a JSON object')
  if (
    event.event_timestamp !== undefined &&
    (typeof event.event_timestamp !== 'number' || !Number.isFinite(event.event_timestamp))
  ) {
    fail('ERR_SET_CLAIM_INVALID', 'event_timestamp must be a number of seconds')
  }

  let subject: SubjectIdentifier
  if (claims.sub_id !== undefined) subject = checkSubject(claims.sub_id, 'sub_id')
  else if (policy.allowLegacySubject && event.subject !== undefined)
    subject = checkSubject(event.subject, 'subject')
  else fail('ERR_SET_SUBJECT_INVALID', 'the SET has no "sub_id" (SSF §3)')
  if (subject.format === 'complex') {
    for (const member of Object.keys(subject)) {
      if (
        member !== 'format' &&
        policy.criticalSubjectMembers.includes(member) &&
        !policy.subjectMembers.has(member)
      ) {
        fail(
          'ERR_SET_SUBJECT_UNSUPPORTED',
          `the subject has the critical member "${member.slice(0, 100)}", which this receiver does not process (SSF §3.6)`,
        )
      }
    }
  }

  return {
    jti: claims.jti,
    iss: claims.iss,
    aud: aud as string | string[],
    iat,
    txn: claims.txn as string | undefined,
    type,
    subject,
    event,
    header,
    claims,
  }
}
