/**
 * Cascade policy: which events about a principal also reach the agents acting for it (directly or down a
 * delegation chain), and what each of those agents receives. One table, not rules scattered in code.
 *
 * Default table (`DEFAULT_CASCADE_POLICY`); every dependent agent receives the *same* event type, with the
 * original payload plus the delegation path as `act` (act.ts), its own `sub_id` (subjects.ts) and the
 * original `txn`:
 *
 * | Event about the principal | Only when | Each dependent agent receives |
 * |---|---|---|
 * | CAEP `session-revoked` | always | CAEP `session-revoked` |
 * | CAEP `credential-change` | `change_type` is `revoke` | CAEP `credential-change` |
 * | CAEP `token-claims-change` | always | CAEP `token-claims-change` |
 * | CAEP `assurance-level-change` | `change_direction` is `decrease` | CAEP `assurance-level-change` |
 * | RISC `account-disabled` | always | RISC `account-disabled` |
 * | RISC `account-purged` | always | RISC `account-purged` |
 * | RISC `credential-compromise` | always | RISC `credential-compromise` |
 * | RISC `sessions-revoked` | always | RISC `sessions-revoked` |
 * | agent `task-reassigned` | always | agent `task-reassigned` |
 * | agent `delegation-revoked` | always | agent `delegation-revoked` |
 * | agent `agent-credential-compromised` | always | agent `agent-credential-compromised` |
 *
 * Everything else (e.g. `session-established`, `risk-level-change`, `assurance-level-change` increase,
 * `credential-change` create/update/delete) does not cascade. Rules are tried in order; the first whose
 * type and `when` match decides.
 *
 * Override: `SSF_BROKER_CASCADE_POLICY_FILE` names a JSON file that *replaces* the table:
 *
 *     { "rules": [
 *         { "type": "caep/session-revoked" },
 *         { "type": "caep/credential-change", "when": { "change_type": ["revoke", "delete"] } },
 *         { "type": "risc/account-purged", "derive": "caep/session-revoked", "note": "agents only need the kill" }
 *     ] }
 *
 * - `type` (required) and `derive` (default: `type`): an event-type URI or alias (`caep/...`, `risc/...`,
 *   `agent/...`). The broker's own `ssf/...` types are refused.
 * - `when`: payload member → accepted value(s); every listed member must equal one of its values.
 * - `derive` to a *different* type is allowed only for types with no required payload members (e.g.
 *   `caep/session-revoked`, `risc/account-disabled`, `agent/delegation-revoked`), because the derived
 *   payload keeps only the members the target type accepts (the CAEP common claims such as
 *   `event_timestamp` and `reason_admin`) plus `act`.
 * - `note`: free text for operators. Unknown members are refused. Every problem is reported with its place
 *   in the file, e.g. `rules[2].derive: unknown event type "caep/sesion-revoked"`.
 */
import { readFileSync } from 'node:fs'
import { ConfigError } from '../config/config.js'
import { resolveEventType, type EventTypeDefinition } from '../events/catalog.js'
import type { Subject } from '../subjects/subject.js'
import { buildActChain } from './act.js'
import { AGENT_EVENT_URIS, resolveAgentEventType } from './events.js'

export const CASCADE_POLICY_FILE_VARIABLE = 'SSF_BROKER_CASCADE_POLICY_FILE'

export interface CascadeRule {
  /** Event-type URI of the event about the principal. */
  readonly type: string
  /** Payload member → accepted values; all listed members must match. */
  readonly when?: Readonly<Record<string, readonly string[]>>
  /** Event-type URI each dependent agent receives. */
  readonly derive: string
  readonly note?: string
}

export type CascadePolicy = readonly CascadeRule[]

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

const same = (
  type: string,
  extra: { when?: Record<string, string[]>; note?: string } = {},
): CascadeRule => ({ type, derive: type, ...extra })

export const DEFAULT_CASCADE_POLICY: CascadePolicy = Object.freeze(
  [
    same(`${CAEP}session-revoked`, {
      note: "the principal's session ended: so do the sessions of agents acting for it",
    }),
    same(`${CAEP}credential-change`, {
      when: { change_type: ['revoke'] },
      note: 'a revoked credential voids what was delegated with it',
    }),
    same(`${CAEP}token-claims-change`, {
      note: "agents re-evaluate what they cached from the principal's claims",
    }),
    same(`${CAEP}assurance-level-change`, {
      when: { change_direction: ['decrease'] },
      note: 'a downgrade limits what agents may still do',
    }),
    same(`${RISC}account-disabled`),
    same(`${RISC}account-purged`),
    same(`${RISC}credential-compromise`),
    same(`${RISC}sessions-revoked`),
    same(AGENT_EVENT_URIS.taskReassigned, {
      note: 'sub-agents working on the old task lose it too',
    }),
    same(AGENT_EVENT_URIS.delegationRevoked, {
      note: 'cutting an edge voids everything delegated below it',
    }),
    same(AGENT_EVENT_URIS.agentCredentialCompromised, {
      note: 'anything the leaked credential authorized below it is suspect',
    }),
  ].map((rule) => Object.freeze(rule)),
)

function matches(rule: CascadeRule, event: Record<string, unknown>): boolean {
  if (!rule.when) return true
  for (const [member, values] of Object.entries(rule.when)) {
    const value = event[member]
    if (typeof value !== 'string' || !values.includes(value)) return false
  }
  return true
}

/** What a dependent agent receives for an event of `typeUri` about its principal, or undefined: no cascade. */
export function cascadeFor(
  typeUri: string,
  event: Record<string, unknown>,
  policy: CascadePolicy = DEFAULT_CASCADE_POLICY,
): { type: string; rule: CascadeRule } | undefined {
  for (const rule of policy) {
    if (rule.type === typeUri && matches(rule, event)) return { type: rule.derive, rule }
  }
  return undefined
}

/** Catalog or agent event type, by URI or alias. */
export function resolveAnyEventType(typeOrAlias: string): EventTypeDefinition | undefined {
  return resolveEventType(typeOrAlias) ?? resolveAgentEventType(typeOrAlias)
}

/**
 * The payload of a dependent agent's SET: the original payload (same type) or the members of it the
 * derived type accepts (another type), plus `act`, the delegation path (`path` = [principal, ..., agent]).
 */
export function cascadePayload(
  sourceType: string,
  event: Record<string, unknown>,
  derivedType: string,
  path: readonly Subject[],
): Record<string, unknown> {
  const act = buildActChain(path)
  if (sourceType === derivedType) return { ...event, act }
  const target = resolveAnyEventType(derivedType)
  const out: Record<string, unknown> = {}
  if (target) {
    for (const [member, value] of Object.entries(event)) {
      if (member !== 'act' && target.validate({ [member]: value }).ok) out[member] = value
    }
  }
  out.act = act
  return out
}

export class CascadePolicyError extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`${where}: ${message}`)
    this.name = 'CascadePolicyError'
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function resolveType(value: unknown, where: string): EventTypeDefinition {
  if (typeof value !== 'string' || value === '')
    throw new CascadePolicyError(
      where,
      'must be an event-type URI or alias such as "caep/session-revoked"',
    )
  const def = resolveAnyEventType(value)
  if (!def)
    throw new CascadePolicyError(where, `unknown event type ${JSON.stringify(value.slice(0, 200))}`)
  if (!def.ingestible)
    throw new CascadePolicyError(
      where,
      `"${def.alias}" is sent by the broker itself about streams and cannot cascade`,
    )
  return def
}

/** Validates a policy document (`{"rules": [...]}`), resolving aliases to URIs. Throws CascadePolicyError naming the place. */
export function parseCascadePolicy(doc: unknown): CascadePolicy {
  if (!isObject(doc))
    throw new CascadePolicyError('policy', 'must be a JSON object {"rules": [...]}')
  for (const key of Object.keys(doc))
    if (key !== 'rules')
      throw new CascadePolicyError(
        key.slice(0, 100),
        'unknown member (the policy holds only "rules")',
      )
  if (!Array.isArray(doc.rules))
    throw new CascadePolicyError('rules', 'required, an array of rules')
  const rules: CascadeRule[] = []
  for (const [i, raw] of doc.rules.entries()) {
    const at = `rules[${i}]`
    if (!isObject(raw)) throw new CascadePolicyError(at, 'must be an object')
    for (const key of Object.keys(raw)) {
      if (!['type', 'when', 'derive', 'note'].includes(key))
        throw new CascadePolicyError(
          `${at}.${key.slice(0, 100)}`,
          'unknown member (a rule has type, when, derive, note)',
        )
    }
    const type = resolveType(raw.type, `${at}.type`)
    const derive = raw.derive === undefined ? type : resolveType(raw.derive, `${at}.derive`)
    if (derive.uri !== type.uri && !derive.validate({}).ok) {
      throw new CascadePolicyError(
        `${at}.derive`,
        `"${derive.alias}" has required payload members that cannot be derived from "${type.alias}"; derive only to the same type or to a type without required members (e.g. caep/session-revoked)`,
      )
    }
    let when: Record<string, string[]> | undefined
    if (raw.when !== undefined) {
      if (!isObject(raw.when) || Object.keys(raw.when).length === 0)
        throw new CascadePolicyError(
          `${at}.when`,
          'must be an object of payload member → value or array of values',
        )
      when = {}
      for (const [member, value] of Object.entries(raw.when)) {
        const values = typeof value === 'string' ? [value] : value
        if (
          !Array.isArray(values) ||
          values.length === 0 ||
          values.some((v) => typeof v !== 'string')
        ) {
          throw new CascadePolicyError(
            `${at}.when.${member.slice(0, 100)}`,
            'must be a string or a non-empty array of strings',
          )
        }
        when[member] = values as string[]
      }
    }
    if (raw.note !== undefined && typeof raw.note !== 'string')
      throw new CascadePolicyError(`${at}.note`, 'must be a string')
    rules.push(
      Object.freeze({
        type: type.uri,
        derive: derive.uri,
        ...(when ? { when } : {}),
        ...(typeof raw.note === 'string' ? { note: raw.note } : {}),
      }),
    )
  }
  return Object.freeze(rules)
}

/** Reads and validates a policy file; problems are ConfigErrors naming SSF_BROKER_CASCADE_POLICY_FILE, the file and the place. */
export function loadCascadePolicyFile(path: string): CascadePolicy {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(
      CASCADE_POLICY_FILE_VARIABLE,
      `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(
      CASCADE_POLICY_FILE_VARIABLE,
      `"${path}" is not valid JSON: ${(err as Error).message}`,
    )
  }
  try {
    return parseCascadePolicy(doc)
  } catch (err) {
    if (err instanceof CascadePolicyError)
      throw new ConfigError(CASCADE_POLICY_FILE_VARIABLE, `"${path}": ${err.message}`)
    throw err
  }
}

/** The policy in force: the file named by SSF_BROKER_CASCADE_POLICY_FILE, else the default table. */
export function cascadePolicyFromEnv(
  env: Record<string, string | undefined> = process.env,
): CascadePolicy {
  const path = env[CASCADE_POLICY_FILE_VARIABLE]
  return path === undefined || path === '' ? DEFAULT_CASCADE_POLICY : loadCascadePolicyFile(path)
}

/** The policy as a Markdown table (for docs or an admin endpoint). */
export function renderCascadePolicy(policy: CascadePolicy = DEFAULT_CASCADE_POLICY): string {
  const name = (uri: string) => resolveAnyEventType(uri)?.alias ?? uri
  const rows = policy.map((rule) => {
    const when = rule.when
      ? Object.entries(rule.when)
          .map(([m, v]) => `\`${m}\` is ${v.map((x) => `\`${x}\``).join(' or ')}`)
          .join('; ')
      : 'always'
    return `| \`${name(rule.type)}\` | ${when} | \`${name(rule.derive)}\` |`
  })
  return [
    '| Event about the principal | Only when | Each dependent agent receives |',
    '|---|---|---|',
    ...rows,
  ].join('\n')
}
