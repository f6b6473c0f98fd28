/**
 * What subscribers are told when an agent registration ends (expiry, or DELETE /agents/{id}): a CAEP
 * `session-revoked` (CAEP §3.1) about the agent, with the reason, posted through the normal ingest path
 * so it is durable, reaches every stream subscribed to the agent, and cascades to the agents it delegated
 * to (cascade-policy.ts: session-revoked cascades).
 *
 * - Subject: as for a cascaded SET (subjects.ts): `{format: complex, user: <delegator>, agent: <agent>}`
 *   when the delegator is a user and both are simple subjects, else the agent's own subject. A stream
 *   that added the agent's subject matches either form.
 * - Payload: `initiating_entity` `policy` for an expiry (the configured lifetime ended it), `system`
 *   otherwise; `reason_admin` (CAEP interop requires it) names the reason; `event_timestamp` is the
 *   retirement time.
 * - `txn`: derived from the agent and the retirement time, so a repeated notification of the same
 *   retirement carries the same `txn`.
 */
import { EVENT_URIS } from '../events/catalog.js'
import type { Subject } from '../subjects/subject.js'
import type { AgentRecord } from './registry.js'
import { dependentSubId } from './subjects.js'

export interface RetirementEvent {
  type: string
  subject: Subject
  event: Record<string, unknown>
  txn: string
}

export function retirementEvent(record: AgentRecord, reason: string): RetirementEvent {
  const at = record.retired_at ?? Math.floor(Date.now() / 1000)
  const expired = reason === 'expired'
  return {
    type: EVENT_URIS.sessionRevoked,
    subject: dependentSubId(record.delegator, record.agent, {
      principalIsAgent: record.delegator_agent_id !== undefined,
    }),
    event: {
      event_timestamp: at,
      initiating_entity: expired ? 'policy' : 'system',
      reason_admin: {
        en: expired
          ? `Agent registration expired (task: ${record.task.slice(0, 200)})`
          : `Agent registration ended: ${reason.slice(0, 200)}`,
      },
    },
    txn: `agent-retired:${record.agent_id}:${at}`,
  }
}
