/**
 * The zod building blocks of the HTTP edge: the error body, the text and identifier members every route
 * shares, the subject member, and the one rendering of a failed validation as a BrokerError whose
 * description names the member at fault (`<path>: <problem>`), never zod's own dump.
 */
import { z } from '@hono/zod-openapi'
import type { $ZodIssue } from 'zod/v4/core'
import { BrokerError, type ErrorCode } from '../errors.js'
import { unsafeIdentifier, unsafeText } from '../lib/safe-text.js'
import { parseSubject, type Subject } from '../subjects/subject.js'

export { z }

export const NULL_MEMBER = 'must not be null; leave an optional member out instead'

export const ErrorBody = z
  .object({
    error: z
      .string()
      .openapi({ description: 'A code of docs/errors.md.', example: 'invalid_request' }),
    error_description: z.string().openapi({
      description: 'What was wrong, naming the member at fault.',
      example: 'colour: unknown member',
    }),
  })
  .openapi('Error', { description: 'Every error answer (OAuth 2.0 shape, RFC 6749 §5.2).' })

/** Where the members being validated come from: the JSON body, the query string, or the path. */
export type Source = 'body' | 'query' | 'path'

function pathOf(path: readonly PropertyKey[]): string {
  let out = ''
  for (const key of path)
    out +=
      typeof key === 'number'
        ? `[${key}]`
        : out === ''
          ? String(key).slice(0, 100)
          : `.${String(key).slice(0, 100)}`
  return out
}

/** `<path>: <problem>` for one issue; the one shape of every validation error of the API. */
export function issueMessage(issue: $ZodIssue, source: Source): string {
  if (issue.code === 'unrecognized_keys') {
    const at = pathOf([...issue.path, issue.keys[0]!])
    return `${at}: ${source === 'query' ? 'unknown query parameter' : 'unknown member'}`
  }
  const at = pathOf(issue.path)
  // A problem reported by a nested parser (the subject's) already names its own path.
  if (issue.code === 'custom' && issue.params?.absolute === true)
    return issue.path.length > 1
      ? `${pathOf(issue.path.slice(0, -1))}.${issue.message}`
      : issue.message
  const problem =
    issue.input === null && ['invalid_type', 'invalid_value', 'invalid_union'].includes(issue.code)
      ? NULL_MEMBER
      : issue.message
  return at === '' ? problem : `${at}: ${problem}`
}

/** The BrokerError for a failed validation: its first issue, with the issue's own code if it has one. */
export function validationError(error: z.ZodError, source: Source): BrokerError {
  const issue = error.issues[0]! as $ZodIssue
  const code =
    (issue.code === 'custom' && (issue.params?.code as ErrorCode | undefined)) || 'invalid_request'
  return new BrokerError(code, issueMessage(issue, source))
}

/** Parses `value` with `schema` or throws the BrokerError naming the first problem. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  source: Source,
): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true })
  if (!result.success) throw validationError(result.error, source)
  return result.data
}

/** A string member of at most `max` characters, refusing what `unsafeText` refuses. */
export function text(
  max: number,
  problem = `must be a string of at most ${max} characters`,
  options: { nonEmpty?: boolean } = {},
) {
  return z
    .string({ error: problem })
    .min(options.nonEmpty ? 1 : 0, problem)
    .max(max, problem)
    .superRefine((value, ctx) => {
      const unsafe = unsafeText(value)
      if (unsafe) ctx.addIssue({ code: 'custom', message: unsafe })
    })
}

/** An identifier member: non-empty, at most `max` characters, refusing what `unsafeIdentifier` refuses. */
export function identifier(
  max: number,
  problem = `must be a non-empty string of at most ${max} characters`,
) {
  return z
    .string({ error: problem })
    .min(1, problem)
    .max(max, problem)
    .superRefine((value, ctx) => {
      const unsafe = unsafeIdentifier(value)
      if (unsafe) ctx.addIssue({ code: 'custom', message: unsafe })
    })
}

export const SUBJECT_FORMATS = [
  'account',
  'email',
  'iss_sub',
  'opaque',
  'phone_number',
  'did',
  'uri',
  'aliases',
  'jwt_id',
  'saml_assertion_id',
  'ip-addresses',
  'complex',
] as const

export const SubjectDoc = z.looseObject({ format: z.enum(SUBJECT_FORMATS) }).openapi('Subject', {
  description: 'An RFC 9493 / SSF subject identifier, simple or complex.',
  example: { format: 'email', email: 'alice@example.com' },
})

/** Problems are `invalid_subject`, reported with the subject parser's own paths (`subject.user.email: ...`). */
function subjectIssue(ctx: z.RefinementCtx, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message, params: { code: 'invalid_subject', absolute: true } })
  return z.NEVER
}

/** A subject identifier member, named `subject` (RFC 9493 / SSF §3). */
export const subjectMember = z
  .unknown()
  .transform((value, ctx): Subject => {
    if (value === undefined) return subjectIssue(ctx, 'subject: required')
    const parsed = parseSubject(value)
    if (parsed.ok) return parsed.subject
    const first = parsed.issues[0]
    return subjectIssue(ctx, first ? `${first.path}: ${first.message}` : 'subject: invalid')
  })
  .openapi({ $ref: '#/components/schemas/Subject' } as { description?: string })

/** A subject given in the query string as URL-encoded JSON. */
export function subjectQuery(missing: string | undefined) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): Subject | undefined => {
      if (raw === undefined && missing === undefined) return undefined
      if (raw === undefined || (raw === '' && missing !== undefined))
        return subjectIssue(ctx, `subject: ${missing}`)
      let json: unknown
      try {
        json = JSON.parse(raw)
      } catch {
        return subjectIssue(
          ctx,
          'subject: must be a URL-encoded JSON subject identifier such as {"format":"email","email":"alice@example.com"}',
        )
      }
      const parsed = parseSubject(json)
      if (parsed.ok) return parsed.subject
      const first = parsed.issues[0]
      return subjectIssue(ctx, first ? `${first.path}: ${first.message}` : 'subject: invalid')
    })
}

/** A whole number given in the query string, from 1 to `max`. */
export function limitQuery(max: number, description: string) {
  return z
    .string()
    .regex(/^\d+$/, `must be a whole number from 1 to ${max}`)
    .refine((v) => Number(v) >= 1 && Number(v) <= max, `must be a whole number from 1 to ${max}`)
    .transform(Number)
    .optional()
    .openapi({ description, example: '100' })
}
