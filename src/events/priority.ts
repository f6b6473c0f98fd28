/**
 * Priority lane: event types handled ahead of all others, in fan-out and in each stream's queue
 * (SSF_BROKER_PRIORITY_EVENT_TYPES). By default the events that end access: a revocation must not wait
 * behind a flood of informational events. Never ahead of an earlier SET about the same subject.
 */
import { resolveEventType } from './catalog.js'
import { AGENT_EVENT_TYPES, resolveAgentEventType } from '../agents/events.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

export const DEFAULT_PRIORITY_EVENT_TYPES: readonly string[] = [
  `${CAEP}session-revoked`,
  `${CAEP}credential-change`,
  `${CAEP}token-claims-change`,
  `${RISC}account-disabled`,
  `${RISC}account-purged`,
  `${RISC}credential-compromise`,
  `${RISC}sessions-revoked`,
  `${RISC}account-credential-change-required`,
  ...AGENT_EVENT_TYPES.map((t) => t.uri),
]

/** The URI of a full event-type URI or alias the broker knows (CAEP, RISC, SSF, agent events). */
export function resolveEventTypeUri(typeOrAlias: string): string | undefined {
  return resolveEventType(typeOrAlias)?.uri ?? resolveAgentEventType(typeOrAlias)?.uri
}
