/**
 * An agent registration as the API returns it, and as it is stored: one hash per agent (keyspace.ts
 * `agents.record`) with the immutable registration JSON and the fields that change (status, expiry,
 * parent node, delegator agent, retirement).
 *
 * A node of the delegation graph is a subject: node id = base64url(SHA-256("ssf-agent\0" + subjectKey))
 * cut to 27 characters, stable for every spelling of one subject (subjects/subject.ts canonical form). An
 * agent's `agent_id` is the node id of its subject, so registering it again finds the same record.
 */
import { createHash } from 'node:crypto'
import { subjectKey, type Subject } from '../subjects/subject.js'

export interface AgentRecord {
  agent_id: string
  agent: Subject
  delegator: Subject
  /** Set when the delegator was a live registered agent at registration. */
  delegator_agent_id?: string
  task: string
  scopes: string[]
  sid?: string
  token_jti?: string
  /** client_id of the emitter that registered it. */
  registered_by: string
  /** Seconds since the epoch. */
  created_at: number
  expires_at: number
  status: 'active' | 'retired'
  retired_at?: number
  retired_reason?: string
}

export interface Dependent {
  agent_id: string
  record: AgentRecord
  /** From the principal the question was asked about to this agent: [principal, ..., record.agent]. */
  path: Subject[]
  /** True when the principal is itself a registered agent, or a token (`jwt_id`) held by one. */
  principalIsAgent: boolean
}

export interface RegisterResult {
  record: AgentRecord
  created: boolean
  /** An expired registration of the same agent that this one replaced before the sweeper retired it: tell its subscribers. */
  replaced?: AgentRecord
}

export const AGENT_ID = /^[A-Za-z0-9_-]{27}$/

/** The node id of a subject in the delegation graph; for an agent, its agent_id. */
export function nodeId(subject: Subject): string {
  return createHash('sha256')
    .update(`ssf-agent\u0000${subjectKey(subject)}`)
    .digest('base64url')
    .slice(0, 27)
}

/** A stored record with the fields the graph needs. */
export interface Stored {
  record: AgentRecord
  parent: string
  exp: number
}

/** Liveness is `status = active` and `exp > now`: an expired agent not yet swept is no longer live. */
export const isLive = (stored: Stored, now: number): boolean =>
  stored.record.status === 'active' && stored.exp > now

/** A flat [field, value, ...] reply as an object. */
export function pairs(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!Array.isArray(flat)) return out
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

export function fromHash(id: string, h: Record<string, string>): Stored | undefined {
  if (!h.record || !h.status || !h.exp || h.parent === undefined) return undefined
  const base = JSON.parse(h.record) as Omit<
    AgentRecord,
    'status' | 'delegator_agent_id' | 'retired_at' | 'retired_reason'
  >
  const record: AgentRecord = {
    agent_id: id,
    agent: base.agent,
    delegator: base.delegator,
    ...(h.dagent ? { delegator_agent_id: h.dagent } : {}),
    task: base.task,
    scopes: base.scopes,
    ...(base.sid !== undefined ? { sid: base.sid } : {}),
    ...(base.token_jti !== undefined ? { token_jti: base.token_jti } : {}),
    registered_by: base.registered_by,
    created_at: base.created_at,
    expires_at: base.expires_at,
    status: h.status === 'active' ? 'active' : 'retired',
    ...(h.retired_at ? { retired_at: Number(h.retired_at) } : {}),
    ...(h.retired_reason !== undefined ? { retired_reason: h.retired_reason } : {}),
  }
  return { record, parent: h.parent, exp: Number(h.exp) }
}
