/**
 * What a record is found by: its txn, its agents (agent_id, delegator_agent_id), its stream, and every
 * subject it names (subject, principal, delegator, each delegation path step). Writes file a batch under
 * each of its records' terms; queries compare a record's terms with the filter's.
 */
import { subjectKey, type Subject } from '../subjects/subject.js'
import type { AuditFilter } from './types.js'

export type TermType = 'txn' | 'sub' | 'agent' | 'stream'
export type Term = readonly [TermType, string]

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function subjectOf(value: unknown): Subject | undefined {
  return isObject(value) && typeof value.format === 'string'
    ? (value as unknown as Subject)
    : undefined
}

function safeSubjectKey(subject: Subject): string | undefined {
  try {
    return subjectKey(subject)
  } catch {
    return undefined
  }
}

const termId = ([type, value]: Term) => `${type}\u0000${value}`

/** The terms of one (sanitized) record, without repeats. */
export function recordTerms(record: Record<string, unknown>): Term[] {
  const terms = new Map<string, Term>()
  const add = (term: Term) => terms.set(termId(term), term)
  if (typeof record.txn === 'string') add(['txn', record.txn])
  for (const member of ['agent_id', 'delegator_agent_id']) {
    const value = record[member]
    if (typeof value === 'string') add(['agent', value])
  }
  if (typeof record.stream_id === 'string') add(['stream', record.stream_id])
  const subjects: unknown[] = [
    record.subject,
    record.principal,
    record.delegator,
    ...(Array.isArray(record.path) ? record.path : []),
  ]
  for (const value of subjects) {
    const subject = subjectOf(value)
    const key = subject && safeSubjectKey(subject)
    if (key) add(['sub', key])
  }
  return [...terms.values()]
}

/** The terms a filter asks for (all must match). Throws on a subject that cannot be keyed. */
export function filterTerms(filter: AuditFilter): Term[] {
  const wanted: Term[] = []
  if (filter.txn !== undefined) wanted.push(['txn', filter.txn])
  if (filter.agent_id !== undefined) wanted.push(['agent', filter.agent_id])
  if (filter.stream_id !== undefined) wanted.push(['stream', filter.stream_id])
  if (filter.subject !== undefined) wanted.push(['sub', subjectKey(filter.subject)])
  return wanted
}

/** A predicate: does a record carry every wanted term? */
export function hasTerms(wanted: readonly Term[]): (record: Record<string, unknown>) => boolean {
  if (wanted.length === 0) return () => true
  const ids = wanted.map(termId)
  return (record) => {
    const have = new Set(recordTerms(record).map(termId))
    return ids.every((id) => have.has(id))
  }
}
