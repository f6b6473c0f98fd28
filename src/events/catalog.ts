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
import {
  CAEP_COMMON,
  CREDENTIAL_TYPES,
  nonEmptyObject,
  oneOf,
  oneOfOrAgreed,
  optional,
  required,
  text,
  textArray,
  timestamp,
  localizedText,
  payloadValidator,
  type Field,
} from './payload-fields.js'

type Issue = { path: string; message: string }

export interface EventTypeDefinition {
  uri: string
  /** `caep/<name>`, `risc/<name>` or `ssf/<name>`. */
  alias: string
  family: 'caep' | 'risc' | 'ssf'
  /** False for the SSF types, which only the broker may send. */
  ingestible: boolean
  validate(
    payload: unknown,
  ): { ok: true; value: Record<string, unknown> } | { ok: false; issues: Issue[] }
  /** Returns a problem with the subject for this event type, or undefined if it is acceptable. */
  checkSubject?(subject: Subject): string | undefined
}

const BASE = {
  caep: 'https://schemas.openid.net/secevent/caep/event-type/',
  risc: 'https://schemas.openid.net/secevent/risc/event-type/',
  ssf: 'https://schemas.openid.net/secevent/ssf/event-type/',
} as const

const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH'] as const
const COMPLIANCE = ['compliant', 'not-compliant'] as const

function define(
  family: EventTypeDefinition['family'],
  name: string,
  fields: Record<string, Field>,
  checkSubject?: EventTypeDefinition['checkSubject'],
): EventTypeDefinition {
  const validate = payloadValidator(fields)
  return {
    uri: BASE[family] + name,
    alias: `${family}/${name}`,
    family,
    ingestible: family !== 'ssf',
    validate,
    ...(checkSubject ? { checkSubject } : {}),
  }
}

const caep = (name: string, fields: Record<string, Field> = {}) =>
  define('caep', name, { ...CAEP_COMMON, ...fields })

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
    namespace: required(
      oneOfOrAgreed(['RFC8176', 'RFC6711', 'ISO-IEC-29115', 'NIST-IAL', 'NIST-AAL', 'NIST-FAL']),
    ),
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
    principal: required(
      oneOfOrAgreed(['USER', 'DEVICE', 'SESSION', 'TENANT', 'ORG_UNIT', 'GROUP']),
    ),
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

export const EVENT_TYPES: readonly EventTypeDefinition[] = [
  ...CAEP_TYPES,
  ...RISC_TYPES,
  ...SSF_TYPES,
]

/** Every known event-type URI: CAEP, then RISC, then SSF. */
export const SUPPORTED_EVENT_URIS: readonly string[] = EVENT_TYPES.map((type) => type.uri)

const BY_NAME = new Map<string, EventTypeDefinition>(
  EVENT_TYPES.flatMap((type) => [
    [type.uri, type],
    [type.alias, type],
  ]),
)

/** Looks up a full event-type URI or an alias such as "caep/session-revoked" (exact match). */
export function resolveEventType(typeOrAlias: string): EventTypeDefinition | undefined {
  return BY_NAME.get(typeOrAlias)
}

export const EVENT_URIS = {
  verification: `${BASE.ssf}verification`,
  streamUpdated: `${BASE.ssf}stream-updated`,
  sessionRevoked: `${BASE.caep}session-revoked`,
} as const
