/**
 * Audit entries built from the records that cause them, so every call site records the same members.
 */
import type { AgentRecord } from '../agents/registry.js'
import { MAX_DROPPED_JTIS, type AuditEntryInput } from './types.js'

/** `agent.registered`, for POST /agents (created or idempotent repeat). */
export function agentRegisteredEntry(record: AgentRecord, created: boolean): AuditEntryInput {
  return {
    kind: 'agent.registered',
    agent_id: record.agent_id,
    subject: record.agent,
    delegator: record.delegator,
    ...(record.delegator_agent_id !== undefined
      ? { delegator_agent_id: record.delegator_agent_id }
      : {}),
    registered_by: record.registered_by,
    expires_at: record.expires_at,
    created,
    task: record.task,
    scopes: record.scopes,
  }
}

/** `agent.retired`, with the `txn` of the session-revoked event that tells subscribers (retirement.ts). */
export function agentRetiredEntry(
  record: AgentRecord,
  reason: string,
  txn?: string,
): AuditEntryInput {
  return {
    kind: 'agent.retired',
    agent_id: record.agent_id,
    subject: record.agent,
    reason,
    ...(txn !== undefined ? { txn } : {}),
  }
}

/** `stream.backlog_dropped`: SETs dropped (oldest first) because a stream's backlog exceeded its bound. */
export function backlogDroppedEntry(
  streamId: string,
  jtis: readonly string[],
  count: number = jtis.length,
  txn?: string,
): AuditEntryInput {
  return {
    kind: 'stream.backlog_dropped',
    stream_id: streamId,
    count,
    jtis: jtis.slice(0, MAX_DROPPED_JTIS),
    ...(txn !== undefined ? { txn } : {}),
  }
}
