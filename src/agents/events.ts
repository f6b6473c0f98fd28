/**
 * Agent event types: the broker's own, for what no SSF/CAEP/RISC Final defines (ssf-spec.md §5: "neither
 * the SSF/CAEP/RISC Finals nor the CAEP 1.1 draft define an agent-specific event type").
 *
 * Namespace: `https://schemas.ssf-broker.dev/secevent/agent/event-type/<name>`. Custom event types are
 * allowed by agreement (SSF §5.1 "proprietary ... custom event types"); the draft Event Definition spec
 * wants an event-type URI that (a) the definer controls, so it can never collide with an OpenID-registered
 * one (hence not under `schemas.openid.net`), and (b) resolves to the type's JSON Schema, whose `$id` is
 * the URI. The path mirrors the OpenID layout (`/secevent/<family>/event-type/<name>`) so receivers that
 * route on the last path segment keep working. The schemas are in `schemas/<name>.json`; they must be
 * published at these URLs for (b) to hold.
 *
 * Each type follows the CAEP conventions: the CAEP §2 common claims (`event_timestamp`,
 * `initiating_entity`, `reason_admin`, `reason_user`) are accepted, unknown members are refused unless
 * collision-resistant (contain ":"), and `act` (the RFC 8693-style delegation chain of a cascaded SET, see
 * act.ts) is accepted. `family` is 'caep' because EventTypeDefinition's union has no 'agent' member and the
 * CAEP rules (e.g. `event_timestamp` defaulted at ingest) are the ones that apply; the alias is
 * `agent/<name>`.
 *
 * They are advertised only to streams that request them (`requestOnly`): a stream created without
 * `events_requested` must not start receiving broker-specific types. Each names the closest standard event
 * (`standardEquivalent`), so standard receivers can subscribe to that instead:
 *
 * | Agent event | Meaning | Closest standard event |
 * |---|---|---|
 * | `task-reassigned` | The agent's mandate changed: drop cached authorization for the old task. | CAEP `token-claims-change` on the agent's token (`jwt_id` subject), `claims` holding the new task/scope |
 * | `delegation-revoked` | A delegation edge was cut: the agent may no longer act for its delegator. | CAEP `session-revoked` with sub_id `{format: complex, user, agent}` |
 * | `agent-credential-compromised` | An agent's key or token leaked. | RISC `credential-compromise` (and, for workloads, the WISE draft's `credential-compromise`) |
 */
import type { EventTypeDefinition } from '../events/catalog.js'
import { parseSubject } from '../subjects/subject.js'
import {
  CAEP_COMMON,
  CREDENTIAL_TYPES,
  isObject,
  oneOfOrAgreed,
  optional,
  payloadValidator,
  required,
  text,
  type Check,
  type Field,
} from '../events/payload-fields.js'

export const AGENT_EVENT_BASE = 'https://schemas.ssf-broker.dev/secevent/agent/event-type/'

export interface AgentEventTypeDefinition extends EventTypeDefinition {
  /** Advertised (in events_supported/events_delivered) only to streams that list it in events_requested. */
  requestOnly: true
  /** The standard event a receiver that does not know this type should subscribe to instead. */
  standardEquivalent: { uri: string; note: string }
}

/** Scopes may be empty (an agent can lose every scope), unlike the CAEP string arrays. */
const scopeList: Check = (value) =>
  Array.isArray(value) && value.every((item) => typeof item === 'string' && item.length > 0)
    ? undefined
    : 'must be an array of non-empty strings'

const subject: Check = (value) => {
  const parsed = parseSubject(value)
  if (parsed.ok) return undefined
  const first = parsed.issues[0]
  if (!first) return 'must be a subject identifier'
  const inner = first.path.replace(/^subject\.?/, '')
  return inner ? `${inner}: ${first.message}` : first.message
}

/** The RFC 8693-style chain added to cascaded SETs (act.ts); accepted so emitters may pass one on. */
const actChain: Check = (value) =>
  isObject(value) && isObject(value.sub_id)
    ? undefined
    : 'must be an object with a "sub_id" subject and optionally a nested "act"'

/** CAEP §2 common claims, plus `act`. */
const COMMON: Record<string, Field> = { ...CAEP_COMMON, act: optional(actChain) }

/**
 * Agent credential types: the CAEP §3.3 values and the workload types of the WISE draft (ssf-spec.md §5.4),
 * plus bearer tokens an agent holds. Other agreed values must be collision-resistant.
 */
export const AGENT_CREDENTIAL_TYPES = [
  ...CREDENTIAL_TYPES,
  'api_key',
  'access_token',
  'refresh_token',
  'wit',
  'wic',
  'x509_svid',
  'x509_generic',
  'oauth_private_key_jwt',
  'oauth_mtls',
  'oauth_client_secret',
] as const

function define(
  name: string,
  fields: Record<string, Field>,
  standardEquivalent: AgentEventTypeDefinition['standardEquivalent'],
): AgentEventTypeDefinition {
  const all = { ...COMMON, ...fields }
  const validate = payloadValidator(all)
  return {
    uri: AGENT_EVENT_BASE + name,
    alias: `agent/${name}`,
    family: 'caep',
    ingestible: true,
    validate,
    requestOnly: true,
    standardEquivalent,
  }
}

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

/** The agent's mandate changed: receivers drop authorization cached for the old task and scopes. */
export const TASK_REASSIGNED = define(
  'task-reassigned',
  {
    current_task: required(text),
    previous_task: optional(text),
    current_scopes: optional(scopeList),
    previous_scopes: optional(scopeList),
  },
  {
    uri: `${CAEP}token-claims-change`,
    note: 'on the agent\'s token (a "jwt_id" subject), with "claims" holding the new task and scopes',
  },
)

/** A delegation edge was cut: the subject (the agent) may no longer act for `delegator`. */
export const DELEGATION_REVOKED = define(
  'delegation-revoked',
  {
    delegator: optional(subject),
    scopes: optional(scopeList),
  },
  {
    uri: `${CAEP}session-revoked`,
    note: 'with sub_id {"format": "complex", "user": <delegator>, "agent": <agent>}',
  },
)

/** An agent's key or token leaked. */
export const AGENT_CREDENTIAL_COMPROMISED = define(
  'agent-credential-compromised',
  {
    credential_type: required(oneOfOrAgreed(AGENT_CREDENTIAL_TYPES)),
    credential_id: optional(text),
    token_jti: optional(text),
  },
  {
    uri: `${RISC}credential-compromise`,
    note: 'credential_type is required there too; workloads may also use the WISE draft credential-compromise',
  },
)

export const AGENT_EVENT_TYPES: readonly AgentEventTypeDefinition[] = [
  TASK_REASSIGNED,
  DELEGATION_REVOKED,
  AGENT_CREDENTIAL_COMPROMISED,
]

export const AGENT_EVENT_URIS = {
  taskReassigned: TASK_REASSIGNED.uri,
  delegationRevoked: DELEGATION_REVOKED.uri,
  agentCredentialCompromised: AGENT_CREDENTIAL_COMPROMISED.uri,
} as const

const BY_NAME = new Map<string, AgentEventTypeDefinition>(
  AGENT_EVENT_TYPES.flatMap((t) => [
    [t.uri, t],
    [t.alias, t],
  ]),
)

/** Looks up an agent event type by URI or `agent/<name>` alias. */
export function resolveAgentEventType(typeOrAlias: string): AgentEventTypeDefinition | undefined {
  return BY_NAME.get(typeOrAlias)
}
