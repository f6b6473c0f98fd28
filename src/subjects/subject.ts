/**
 * Subject identifiers: the `sub_id` of every SET (SSF 1.0 §3, RFC 9493 "Subject Identifiers for Security
 * Event Tokens").
 *
 * - Simple subjects: the RFC 9493 formats (`account`, `email`, `iss_sub`, `opaque`, `phone_number`, `did`,
 *   `uri`, `aliases`) plus the SSF §3.5 additions (`jwt_id`, `saml_assertion_id`, `ip-addresses`).
 * - Complex subjects (SSF §3.2): `{"format": "complex", <member>: <simple subject>, ...}`, where all members
 *   describe the same principal.
 *
 * Every format is strict: unknown members are rejected rather than silently dropped, because a dropped
 * member would change which principal the event is about.
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { unsafeIdentifier } from '../lib/safe-text.js'

const text = () =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'required' : 'must be a string') })
    .min(1, { error: 'must not be empty', abort: true })
    .superRefine((value, ctx) => {
      const problem = unsafeIdentifier(value)
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value, abort: true })
    })

const matching = (pattern: RegExp, message: string) => text().regex(pattern, { error: message })

// RFC 7565: acct:userpart@host, where "@" inside the userpart must be percent-encoded.
const ACCT_URI = /^acct:[^\s@]+@[^\s@]+$/i
// A plausible addr-spec: exactly one "@", no whitespace, no empty domain labels.
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)*$/
// E.164: "+" and at most 15 digits.
const E164 = /^\+[0-9]{1,15}$/
// DID syntax: did:<method>:<method-specific-id>, optionally followed by a path, query or fragment.
const DID_URL = /^did:[a-z0-9]+:\S+$/
// RFC 3986 absolute URI: a scheme, ":", then something.
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/

export const accountSubjectSchema = z.strictObject({
  format: z.literal('account'),
  uri: matching(ACCT_URI, 'must be an "acct:" URI such as "acct:user@example.com" (RFC 7565)'),
})
export const emailSubjectSchema = z.strictObject({
  format: z.literal('email'),
  email: matching(
    EMAIL,
    'must be an email address with exactly one "@", such as "user@example.com"',
  ),
})
export const issSubSubjectSchema = z.strictObject({
  format: z.literal('iss_sub'),
  iss: text(),
  sub: text(),
})
export const opaqueSubjectSchema = z.strictObject({ format: z.literal('opaque'), id: text() })
export const phoneNumberSubjectSchema = z.strictObject({
  format: z.literal('phone_number'),
  phone_number: matching(
    E164,
    'must be an E.164 number: "+" then 1 to 15 digits, such as "+12065550123"',
  ),
})
export const didSubjectSchema = z.strictObject({
  format: z.literal('did'),
  url: matching(DID_URL, 'must be a DID URL such as "did:example:123"'),
})
export const uriSubjectSchema = z.strictObject({
  format: z.literal('uri'),
  uri: matching(
    ABSOLUTE_URI,
    'must be an absolute URI with a scheme, such as "spiffe://example.org/agent"',
  ),
})
export const jwtIdSubjectSchema = z.strictObject({
  format: z.literal('jwt_id'),
  iss: text(),
  jti: text(),
})
export const samlAssertionIdSubjectSchema = z.strictObject({
  format: z.literal('saml_assertion_id'),
  issuer: text(),
  assertion_id: text(),
})
export const ipAddressesSubjectSchema = z.strictObject({
  format: z.literal('ip-addresses'),
  'ip-addresses': z
    .array(
      text().refine((value) => isIP(value) !== 0, { error: 'must be an IPv4 or IPv6 address' }),
      {
        error: (issue) =>
          issue.input === undefined ? 'required' : 'must be an array of IP address strings',
      },
    )
    .min(1, { error: 'must hold at least one address' }),
})

/** Every simple format except `aliases`, i.e. what an `aliases` identifier may contain. */
const LEAF_SCHEMAS = [
  accountSubjectSchema,
  emailSubjectSchema,
  issSubSubjectSchema,
  opaqueSubjectSchema,
  phoneNumberSubjectSchema,
  didSubjectSchema,
  uriSubjectSchema,
  jwtIdSubjectSchema,
  samlAssertionIdSubjectSchema,
  ipAddressesSubjectSchema,
] as const
const LEAF_BY_FORMAT: ReadonlyMap<string, z.ZodType<LeafSubject>> = new Map(
  LEAF_SCHEMAS.map((schema) => [schema.shape.format.value, schema]),
)

export const aliasesSubjectSchema = z.strictObject({
  format: z.literal('aliases'),
  identifiers: z.array(z.discriminatedUnion('format', LEAF_SCHEMAS)).min(1),
})

export type AccountSubject = z.infer<typeof accountSubjectSchema>
export type EmailSubject = z.infer<typeof emailSubjectSchema>
export type IssSubSubject = z.infer<typeof issSubSubjectSchema>
export type OpaqueSubject = z.infer<typeof opaqueSubjectSchema>
export type PhoneNumberSubject = z.infer<typeof phoneNumberSubjectSchema>
export type DidSubject = z.infer<typeof didSubjectSchema>
export type UriSubject = z.infer<typeof uriSubjectSchema>
export type JwtIdSubject = z.infer<typeof jwtIdSubjectSchema>
export type SamlAssertionIdSubject = z.infer<typeof samlAssertionIdSubjectSchema>
export type IpAddressesSubject = z.infer<typeof ipAddressesSubjectSchema>
export type AliasesSubject = z.infer<typeof aliasesSubjectSchema>
type LeafSubject = z.infer<(typeof LEAF_SCHEMAS)[number]>
export type SimpleSubject = LeafSubject | AliasesSubject

/** The member names SSF §3.2 defines; others are allowed if they match COMPLEX_MEMBER_NAME. */
export const STANDARD_COMPLEX_MEMBERS = [
  'user',
  'device',
  'session',
  'application',
  'tenant',
  'org_unit',
  'group',
] as const
export const COMPLEX_MEMBER_NAME = /^[a-z][a-z0-9_-]{0,63}$/

export interface ComplexSubject {
  format: 'complex'
  user?: SimpleSubject
  device?: SimpleSubject
  session?: SimpleSubject
  application?: SimpleSubject
  tenant?: SimpleSubject
  org_unit?: SimpleSubject
  group?: SimpleSubject
  /** Any other agreed member, e.g. `agent`. */
  [member: string]: SimpleSubject | 'complex' | undefined
}

export type Subject = SimpleSubject | ComplexSubject

type Path = (string | number)[]
type Issue = { path: Path; message: string }

/** Any subject, simple or complex; same rules and messages as parseSubject. */
export const subjectSchema: z.ZodType<Subject> = z.unknown().transform((input, ctx) => {
  const issues: Issue[] = []
  const subject = parseAny(input, [], issues)
  if (subject && issues.length === 0) return subject
  for (const issue of issues)
    ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message })
  return z.NEVER
})

export type ParseSubjectResult =
  { ok: true; subject: Subject } | { ok: false; issues: { path: string; message: string }[] }

/** Validates a subject; issue paths start at `subject`, e.g. `subject.user.email: required`. */
export function parseSubject(input: unknown): ParseSubjectResult {
  const issues: Issue[] = []
  const subject = parseAny(input, [], issues)
  if (subject && issues.length === 0) return { ok: true, subject }
  return {
    ok: false,
    issues: issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  }
}

function formatPath(path: Path): string {
  return path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${key}`),
    'subject',
  )
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function parseAny(input: unknown, path: Path, issues: Issue[]): Subject | undefined {
  if (isObject(input) && input.format === 'complex') return parseComplex(input, path, issues)
  return parseSimple(input, path, issues, 'subject')
}

/** `where` says what contains the identifier, which decides whether `aliases` and `complex` are allowed. */
function parseSimple(
  input: unknown,
  path: Path,
  issues: Issue[],
  where: 'subject' | 'alias' | 'member',
): SimpleSubject | undefined {
  if (!isObject(input)) {
    issues.push({ path, message: 'must be a JSON object with a "format" member' })
    return undefined
  }
  const format = input.format
  if (format === undefined) {
    // Google's RISC transmitter still sends the deprecated `subject_type`.
    const hint =
      'subject_type' in input ? ' ("subject_type" is the deprecated RISC name; use "format")' : ''
    issues.push({ path: [...path, 'format'], message: `required${hint}` })
    return undefined
  }
  if (typeof format !== 'string') {
    issues.push({ path: [...path, 'format'], message: 'must be a string' })
    return undefined
  }
  if (format === 'complex' && where !== 'subject') {
    const container = where === 'alias' ? 'an aliases identifier' : 'a complex subject member'
    issues.push({
      path: [...path, 'format'],
      message: `${container} must be a simple subject identifier, not "complex"`,
    })
    return undefined
  }
  if (format === 'aliases') {
    if (where === 'alias') {
      issues.push({
        path: [...path, 'format'],
        message: 'an aliases identifier cannot contain another aliases identifier',
      })
      return undefined
    }
    return parseAliases(input, path, issues)
  }
  const schema = LEAF_BY_FORMAT.get(format)
  if (!schema && unsafeIdentifier(format)) {
    issues.push({
      path: [...path, 'format'],
      message: `unknown subject format (${unsafeIdentifier(format)})`,
    })
    return undefined
  }
  if (!schema) {
    issues.push({
      path: [...path, 'format'],
      message: `unknown subject format ${JSON.stringify(format.slice(0, 100))}`,
    })
    return undefined
  }
  const result = schema.safeParse(input)
  if (result.success) return result.data
  issues.push(...fromZod(result.error, path))
  return undefined
}

// Hand-written so that each identifier gets the precise messages of parseSimple.
function parseAliases(
  input: Record<string, unknown>,
  path: Path,
  issues: Issue[],
): AliasesSubject | undefined {
  const before = issues.length
  for (const key of Object.keys(input)) {
    if (key !== 'format' && key !== 'identifiers')
      issues.push({ path: [...path, key], message: 'unknown member' })
  }
  const list = input.identifiers
  if (list === undefined) {
    issues.push({ path: [...path, 'identifiers'], message: 'required' })
    return undefined
  }
  if (!Array.isArray(list) || list.length === 0) {
    issues.push({
      path: [...path, 'identifiers'],
      message: 'must be a non-empty array of subject identifiers',
    })
    return undefined
  }
  const identifiers = list.map((item, i) =>
    parseSimple(item, [...path, 'identifiers', i], issues, 'alias'),
  )
  if (issues.length > before) return undefined
  // parseSimple with 'alias' never yields an aliases identifier, and no issue means none is undefined.
  return { format: 'aliases', identifiers: identifiers as LeafSubject[] }
}

function parseComplex(
  input: Record<string, unknown>,
  path: Path,
  issues: Issue[],
): ComplexSubject | undefined {
  const before = issues.length
  const subject: ComplexSubject = { format: 'complex' }
  let members = 0
  for (const [name, value] of Object.entries(input)) {
    if (name === 'format') continue
    members++
    if (!COMPLEX_MEMBER_NAME.test(name)) {
      issues.push({
        path: [...path, name.slice(0, 100)],
        message:
          'invalid member name: lower-case letters, digits, "_" or "-", starting with a letter, at most 64 characters',
      })
      continue
    }
    const member = parseSimple(value, [...path, name], issues, 'member')
    if (member) subject[name] = member
  }
  if (members === 0) {
    issues.push({
      path,
      message: 'a complex subject needs at least one member, such as "user" or "session"',
    })
  }
  return issues.length > before ? undefined : subject
}

function fromZod(error: z.ZodError, path: Path): Issue[] {
  const relative = (keys: PropertyKey[]): Path =>
    keys.map((key) => (typeof key === 'number' ? key : String(key)))
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({
          path: [...path, ...relative(issue.path), key],
          message: 'unknown member',
        }))
      : [{ path: [...path, ...relative(issue.path)], message: issue.message }],
  )
}

/**
 * The form used to compare subjects (SSF §8.1.3.1 matches identical subjects only), so spelling variants
 * of one principal compare equal. The input is not modified.
 */
export function canonicalSubject(subject: Subject): Subject {
  if (subject.format !== 'complex') return canonicalSimple(subject)
  const out: ComplexSubject = { format: 'complex' }
  for (const [name, member] of complexMembers(subject)) out[name] = canonicalSimple(member)
  return out
}

function canonicalSimple(subject: SimpleSubject): SimpleSubject {
  return subject.format === 'aliases'
    ? { ...subject, identifiers: subject.identifiers.map(canonicalLeaf) }
    : canonicalLeaf(subject)
}

function canonicalLeaf(subject: LeafSubject): LeafSubject {
  switch (subject.format) {
    // RFC 9493 only warns that email matching has canonicalisation pitfalls ([verify] in the spec notes).
    // The local part is case-sensitive in theory (RFC 5321) but not at any real provider, so the whole
    // address is lower-cased. Provider-specific rules (dots, "+tags") are not applied: they differ by provider.
    case 'email':
      return { ...subject, email: subject.email.toLowerCase() }
    // The scheme and host of a URI are case-insensitive (RFC 3986 §6.2.2.1); the userpart is not.
    case 'account': {
      const at = subject.uri.lastIndexOf('@')
      return {
        ...subject,
        uri: `acct:${subject.uri.slice(5, at)}@${subject.uri.slice(at + 1).toLowerCase()}`,
      }
    }
    case 'ip-addresses':
      return { ...subject, 'ip-addresses': subject['ip-addresses'].map(canonicalIp) }
    default:
      return subject
  }
}

/** IPv6 in RFC 5952 form (lower-case, longest zero run compressed); IPv4 is already unique once valid. */
function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address
  // The WHATWG URL parser serialises IPv6 hosts canonically; it rejects zone IDs, so those are set aside.
  const zoneAt = address.indexOf('%')
  const host = zoneAt === -1 ? address : address.slice(0, zoneAt)
  const zone = zoneAt === -1 ? '' : address.slice(zoneAt)
  return new URL(`http://[${host}]/`).hostname.slice(1, -1) + zone
}

function complexMembers(subject: ComplexSubject): [string, SimpleSubject][] {
  return Object.entries(subject).flatMap(([name, member]) =>
    typeof member === 'object' ? [[name, member]] : [],
  )
}

/** A stable string for a subject: equal subjects (after canonicalisation) give equal keys. */
export function subjectKey(subject: Subject): string {
  return stableJson(canonicalSubject(subject))
}

// JSON with object keys sorted at every level, so member order in the input does not matter.
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (isObject(value)) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableJson(value[key])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}
