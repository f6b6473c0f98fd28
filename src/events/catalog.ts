/**
 * The event types the broker knows: their URIs, short aliases and payload rules.
 *
 * - CAEP 1.0 §2 (common optional claims) and §3 (the 8 event types).
 * - RISC 1.0 §2 (the 14 event types).
 * - SSF 1.0 §8.1.4.1 (verification) and §8.1.5 (stream-updated): minted by the broker itself, never ingested.
 *
 * Payloads are checked strictly: a misspelt member would otherwise reach receivers unnoticed. Only
 * collision-resistant extension names (containing ":", e.g. "https://example.com/claim") pass through
 * unchecked, since SETs may carry extra fields that receivers ignore (SSF §4).
 */
import type { Subject } from '../subjects/subject.js'

type Issue = { path: string; message: string }

export interface EventTypeDefinition {
  uri: string
  /** `caep/<name>`, `risc/<name>` or `ssf/<name>`. */
  alias: string
  family: 'caep' | 'risc' | 'ssf'
  /** False for the SSF types, which only the broker may send. */
  ingestible: boolean
  validate(payload: unknown): { ok: true; value: Record<string, unknown> } | { ok: false; issues: Issue[] }
  /** Returns a problem with the subject for this event type, or undefined if it is acceptable. */
  checkSubject?(subject: Subject): string | undefined
}

/** Returns a problem description, or undefined if the value is acceptable. */
type Check = (value: unknown) => string | undefined
type Field = { check: Check; required?: true }

const BASE = {
  caep: 'https://schemas.openid.net/secevent/caep/event-type/',
  risc: 'https://schemas.openid.net/secevent/risc/event-type/',
  ssf: 'https://schemas.openid.net/secevent/ssf/event-type/',
} as const

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A name that cannot collide with a spec-defined one, e.g. a URI. */
const isCollisionResistant = (name: string) => name.includes(':')

const text: Check = (value) => (typeof value === 'string' && value.length > 0 ? undefined : 'must be a non-empty string')

const oneOf =
  (values: readonly string[]): Check =>
  (value) =>
    typeof value === 'string' && values.includes(value) ? undefined : `must be one of ${values.map((v) => `"${v}"`).join(', ')}`

/** A listed value, or "another value agreed by both sides", which must then be collision-resistant. */
const oneOfOrAgreed =
  (values: readonly string[]): Check =>
  (value) =>
    typeof value === 'string' && (values.includes(value) || isCollisionResistant(value))
      ? undefined
      : `must be one of ${values.map((v) => `"${v}"`).join(', ')}, or an agreed collision-resistant value containing ":"`

// Seconds since the epoch. 1e11 seconds is the year 5138, while milliseconds passed 1e11 in 1973.
const MAX_SECONDS = 1e11
const timestamp: Check = (value) => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return 'must be a non-negative JSON number of seconds since the epoch'
  if (value > MAX_SECONDS) return 'looks like milliseconds; must be seconds since the epoch'
  return undefined
}

// BCP 47 shape (language, then subtags of 1-8 alphanumerics, or a private-use "x-" tag); not checked against the registry.
const LANGUAGE_TAG = /^(?:[A-Za-z]{2,8}|[Xx](?=-))(?:-[A-Za-z0-9]{1,8})*$/
const localizedText: Check = (value) => {
  if (!isObject(value) || Object.keys(value).length === 0) return 'must be an object with at least one entry keyed by language tag, e.g. {"en": "..."}'
  for (const [tag, message] of Object.entries(value)) {
    if (!LANGUAGE_TAG.test(tag)) return `${JSON.stringify(tag.slice(0, 50))} is not a BCP 47 language tag such as "en" or "en-US"`
    if (typeof message !== 'string' || message.length === 0) return `"${tag}" must be a non-empty string`
  }
  return undefined
}

const nonEmptyObject: Check = (value) => (isObject(value) && Object.keys(value).length > 0 ? undefined : 'must be an object with at least one member')

const textArray: Check = (value) =>
  Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string' && item.length > 0)
    ? undefined
    : 'must be a non-empty array of non-empty strings'

const required = (check: Check): Field => ({ check, required: true })
const optional = (check: Check): Field => ({ check })

/** CAEP §2: optional on every CAEP event. */
const CAEP_COMMON: Record<string, Field> = {
  event_timestamp: optional(timestamp),
  initiating_entity: optional(oneOf(['admin', 'user', 'policy', 'system'])),
  reason_admin: optional(localizedText),
  reason_user: optional(localizedText),
}

/** CAEP §3.3, also used by RISC §2.7. */
const CREDENTIAL_TYPES = [
  'password',
  'pin',
  'x509',
  'fido2-platform',
  'fido2-roaming',
  'fido-u2f',
  'verifiable-credential',
  'phone-voice',
  'phone-sms',
  'app',
] as const
const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH'] as const
const COMPLIANCE = ['compliant', 'not-compliant'] as const

function define(
  family: EventTypeDefinition['family'],
  name: string,
  fields: Record<string, Field>,
  checkSubject?: EventTypeDefinition['checkSubject'],
): EventTypeDefinition {
  const validate: EventTypeDefinition['validate'] = (payload) => {
    if (payload === undefined) payload = {}
    if (!isObject(payload)) return { ok: false, issues: [{ path: 'event', message: 'must be a JSON object' }] }
    const issues: Issue[] = []
    for (const [key, value] of Object.entries(payload)) {
      const field = Object.hasOwn(fields, key) ? fields[key] : undefined
      if (field) {
        const problem = field.check(value)
        if (problem) issues.push({ path: `event.${key}`, message: problem })
      } else if (!isCollisionResistant(key)) {
        issues.push({ path: `event.${key.slice(0, 100)}`, message: 'unknown member' })
      }
    }
    for (const [key, field] of Object.entries(fields)) {
      if (field.required && payload[key] === undefined) issues.push({ path: `event.${key}`, message: 'required' })
    }
    return issues.length > 0 ? { ok: false, issues } : { ok: true, value: { ...payload } }
  }
  return {
    uri: BASE[family] + name,
    alias: `${family}/${name}`,
    family,
    ingestible: family !== 'ssf',
    validate,
    ...(checkSubject ? { checkSubject } : {}),
  }
}

const caep = (name: string, fields: Record<string, Field> = {}) => define('caep', name, { ...CAEP_COMMON, ...fields })

// RISC §2.5 and §2.6: the subject is the email address or phone number that changed hands.
const emailOrPhone = (subject: Subject) =>
  subject.format === 'email' || subject.format === 'phone_number'
    ? undefined
    : `must be an "email" or "phone_number" subject holding the old identifier, not "${subject.format}"`

const CAEP_TYPES = [
  caep('session-revoked'),
  caep('token-claims-change', { claims: required(nonEmptyObject) }),
  caep('credential-change', {
    credential_type: required(oneOfOrAgreed(CREDENTIAL_TYPES)),
    change_type: required(oneOf(['create', 'revoke', 'update', 'delete'])),
    friendly_name: optional(text),
    x509_issuer: optional(text),
    x509_serial: optional(text),
    fido2_aaguid: optional(text),
  }),
  caep('assurance-level-change', {
    namespace: required(oneOfOrAgreed(['RFC8176', 'RFC6711', 'ISO-IEC-29115', 'NIST-IAL', 'NIST-AAL', 'NIST-FAL'])),
    current_level: required(text),
    previous_level: optional(text),
    change_direction: optional(oneOf(['increase', 'decrease'])),
  }),
  caep('device-compliance-change', {
    previous_status: required(oneOf(COMPLIANCE)),
    current_status: required(oneOf(COMPLIANCE)),
  }),
  caep('session-established', {
    fp_ua: optional(text),
    acr: optional(text),
    amr: optional(textArray),
    ext_id: optional(text),
  }),
  caep('session-presented', { fp_ua: optional(text), ext_id: optional(text) }),
  caep('risk-level-change', {
    principal: required(oneOfOrAgreed(['USER', 'DEVICE', 'SESSION', 'TENANT', 'ORG_UNIT', 'GROUP'])),
    current_level: required(oneOf(RISK_LEVELS)),
    previous_level: optional(oneOf(RISK_LEVELS)),
    risk_reason: optional(text),
  }),
]

const RISC_TYPES = [
  define('risc', 'account-credential-change-required', {}),
  define('risc', 'account-purged', {}),
  define('risc', 'account-disabled', { reason: optional(oneOf(['hijacking', 'bulk-account'])) }),
  define('risc', 'account-enabled', {}),
  define('risc', 'identifier-changed', { 'new-value': optional(text) }, emailOrPhone),
  define('risc', 'identifier-recycled', {}, emailOrPhone),
  define('risc', 'credential-compromise', {
    credential_type: required(oneOfOrAgreed(CREDENTIAL_TYPES)),
    event_timestamp: optional(timestamp),
    reason_admin: optional(localizedText),
    reason_user: optional(localizedText),
  }),
  define('risc', 'opt-in', {}),
  define('risc', 'opt-out-initiated', {}),
  define('risc', 'opt-out-cancelled', {}),
  define('risc', 'opt-out-effective', {}),
  define('risc', 'recovery-activated', {}),
  define('risc', 'recovery-information-changed', {}),
  // Deprecated by RISC itself in favour of caep/session-revoked; still accepted for older receivers.
  define('risc', 'sessions-revoked', {}),
]

const SSF_TYPES = [
  define('ssf', 'verification', { state: optional(text) }),
  define('ssf', 'stream-updated', {
    status: required(oneOf(['enabled', 'paused', 'disabled'])),
    reason: optional(text),
  }),
]

export const EVENT_TYPES: readonly EventTypeDefinition[] = [...CAEP_TYPES, ...RISC_TYPES, ...SSF_TYPES]

/** Every known event-type URI: CAEP, then RISC, then SSF. */
export const SUPPORTED_EVENT_URIS: readonly string[] = EVENT_TYPES.map((type) => type.uri)

const BY_NAME = new Map<string, EventTypeDefinition>(EVENT_TYPES.flatMap((type) => [[type.uri, type], [type.alias, type]]))

/** Looks up a full event-type URI or an alias such as "caep/session-revoked" (exact match). */
export function resolveEventType(typeOrAlias: string): EventTypeDefinition | undefined {
  return BY_NAME.get(typeOrAlias)
}

export const EVENT_URIS = {
  verification: `${BASE.ssf}verification`,
  streamUpdated: `${BASE.ssf}stream-updated`,
  sessionRevoked: `${BASE.caep}session-revoked`,
} as const
