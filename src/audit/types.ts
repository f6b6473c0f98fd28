/**
 * What the audit trail holds: the kinds of entry, what callers pass in, and the stored record
 * (ssf-spec.md §5.3 minimum audit record: agent, delegated subject, remediation events and their cause,
 * correlation id, time).
 */
import type { Subject } from '../subjects/subject.js'

export const AUDIT_KINDS = [
  'event.ingested',
  'event.derived',
  'set.minted',
  'delivery.attempt',
  'poll.ack',
  'poll.set_error',
  'stream.status_changed',
  'stream.backlog_dropped',
  'agent.registered',
  'agent.retired',
] as const
export type AuditKind = (typeof AUDIT_KINDS)[number]

/** At most this many jtis are listed in a `stream.backlog_dropped` record (`count` has the total). */
export const MAX_DROPPED_JTIS = 100

interface Common {
  /** When it happened (ms since the epoch); default: when record() was called. */
  at?: number
  txn?: string
  subject?: Subject
  agent_id?: string
  stream_id?: string
  /** Anything else worth keeping (sanitized like the rest). */
  details?: Record<string, unknown>
}

export type AuditEntryInput =
  | (Common & {
      kind: 'event.ingested'
      txn: string
      type: string
      subject: Subject
      client_id: string
      remote_addr?: string
      event_id?: string
    })
  | (Common & {
      kind: 'event.derived'
      /** The cause's txn, shared by the derived SETs. */
      txn: string
      /** Derived event type, and the type of the event it was derived from. */
      type: string
      source_type: string
      agent_id: string
      /** The derived SETs' sub_id. */
      subject: Subject
      principal: Subject
      path: Subject[]
      cause_event_id?: string
    })
  /** Written by earlier versions, one per SET minted; today a SET's outcome record says when it was queued. */
  | (Common & {
      kind: 'set.minted'
      jti: string
      stream_id: string
      aud: string | string[]
      txn: string
      type: string
    })
  | (Common & {
      kind: 'delivery.attempt'
      jti: string
      stream_id: string
      outcome: string
      txn?: string
      /** The SET's event type, and when it was queued for the stream (ms). */
      type?: string
      queued_at?: number
      attempt?: number
      status?: number
      latency_ms?: number
      error?: string
    })
  | (Common & { kind: 'poll.ack'; jti: string; stream_id: string })
  | (Common & {
      kind: 'poll.set_error'
      jti: string
      stream_id: string
      err: string
      description?: string
    })
  | (Common & {
      kind: 'stream.status_changed'
      stream_id: string
      status: string
      previous_status?: string
      reason?: string
      changed_by?: string
    })
  | (Common & {
      kind: 'stream.backlog_dropped'
      /** The stream whose backlog exceeded its bound. */
      stream_id: string
      /** How many SETs were dropped (oldest first). */
      count: number
      /** The first MAX_DROPPED_JTIS of the dropped SETs' jtis (longer lists are cut). */
      jtis: string[]
    })
  | (Common & {
      kind: 'agent.registered'
      agent_id: string
      subject: Subject
      delegator: Subject
      delegator_agent_id?: string
      registered_by: string
      expires_at: number
      created: boolean
      task?: string
      scopes?: string[]
    })
  | (Common & { kind: 'agent.retired'; agent_id: string; subject: Subject; reason: string })

export type AuditRecord = {
  id: string
  seq: number
  at: number
  kind: AuditKind
  /** Paths of members the sanitizer dropped or redacted. */
  redacted?: string[]
  prev: string
  hash: string
} & Record<string, unknown>

export interface AuditFilter {
  txn?: string
  subject?: Subject
  agent_id?: string
  stream_id?: string
  kind?: AuditKind | readonly AuditKind[]
  /** Page size (1 to 1000) for query(); total cap for exportJsonl() (default: everything). */
  limit?: number
  /** next_cursor of the previous page. */
  cursor?: string
}

export type VerifyResult =
  | {
      ok: true
      checked: number
      head: { seq: number; hash: string }
      anchor: { seq: number; hash: string }
    }
  | { ok: false; checked: number; brokenAt: string; reason: string }

/** A sanitized entry waiting to be chained: everything but id, seq, prev and hash. */
export type PreparedEntry = Record<string, unknown> & { kind: AuditKind; at: number }
