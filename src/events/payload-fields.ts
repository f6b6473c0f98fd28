/**
 * Building blocks for event payload validation (CAEP 1.0 §2–3, RISC 1.0 §2, and the broker's own agent
 * events): one check per member kind, and the validator every event type uses. Unknown members are refused
 * unless their name is collision-resistant (contains ":"), so typos are caught and extensions still pass.
 */
type Issue = { path: string; message: string }

/** Returns a problem description, or undefined if the value is acceptable. */
export type Check = (value: unknown) => string | undefined
export type Field = { check: Check; required?: true }

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A name that cannot collide with a spec-defined one, e.g. a URI. */
export const isCollisionResistant = (name: string) => name.includes(':')

export const text: Check = (value) =>
  typeof value === 'string' && value.length > 0 ? undefined : 'must be a non-empty string'

export const oneOf =
  (values: readonly string[]): Check =>
  (value) =>
    typeof value === 'string' && values.includes(value)
      ? undefined
      : `must be one of ${values.map((v) => `"${v}"`).join(', ')}`

/** A listed value, or "another value agreed by both sides", which must then be collision-resistant. */
export const oneOfOrAgreed =
  (values: readonly string[]): Check =>
  (value) =>
    typeof value === 'string' && (values.includes(value) || isCollisionResistant(value))
      ? undefined
      : `must be one of ${values.map((v) => `"${v}"`).join(', ')}, or an agreed collision-resistant value containing ":"`

// Seconds since the epoch. 1e11 seconds is the year 5138, while milliseconds passed 1e11 in 1973.
const MAX_SECONDS = 1e11
export const timestamp: Check = (value) => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    return 'must be a non-negative JSON number of seconds since the epoch'
  if (value > MAX_SECONDS) return 'looks like milliseconds; must be seconds since the epoch'
  return undefined
}

// BCP 47 shape (language, then subtags of 1-8 alphanumerics, or a private-use "x-" tag); not checked against the registry.
const LANGUAGE_TAG = /^(?:[A-Za-z]{2,8}|[Xx](?=-))(?:-[A-Za-z0-9]{1,8})*$/
export const localizedText: Check = (value) => {
  if (!isObject(value) || Object.keys(value).length === 0)
    return 'must be an object with at least one entry keyed by language tag, e.g. {"en": "..."}'
  for (const [tag, message] of Object.entries(value)) {
    if (!LANGUAGE_TAG.test(tag))
      return `${JSON.stringify(tag.slice(0, 50))} is not a BCP 47 language tag such as "en" or "en-US"`
    if (typeof message !== 'string' || message.length === 0)
      return `"${tag}" must be a non-empty string`
  }
  return undefined
}

export const nonEmptyObject: Check = (value) =>
  isObject(value) && Object.keys(value).length > 0
    ? undefined
    : 'must be an object with at least one member'

export const textArray: Check = (value) =>
  Array.isArray(value) &&
  value.length > 0 &&
  value.every((item) => typeof item === 'string' && item.length > 0)
    ? undefined
    : 'must be a non-empty array of non-empty strings'

export const required = (check: Check): Field => ({ check, required: true })
export const optional = (check: Check): Field => ({ check })

/** The validate() of an event type with these payload members. */
export function payloadValidator(
  fields: Record<string, Field>,
): (
  payload: unknown,
) => { ok: true; value: Record<string, unknown> } | { ok: false; issues: Issue[] } {
  return (payload) => {
    if (payload === undefined) payload = {}
    if (!isObject(payload))
      return { ok: false, issues: [{ path: 'event', message: 'must be a JSON object' }] }
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
      if (field.required && payload[key] === undefined)
        issues.push({ path: `event.${key}`, message: 'required' })
    }
    return issues.length > 0 ? { ok: false, issues } : { ok: true, value: { ...payload } }
  }
}

/** CAEP §2: optional on every CAEP event. */
export const CAEP_COMMON: Record<string, Field> = {
  event_timestamp: optional(timestamp),
  initiating_entity: optional(oneOf(['admin', 'user', 'policy', 'system'])),
  reason_admin: optional(localizedText),
  reason_user: optional(localizedText),
}

/** CAEP §3.3, also used by RISC §2.7. */
export const CREDENTIAL_TYPES = [
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
