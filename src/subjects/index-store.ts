/**
 * Per-stream subjects (SSF §8.1.3) and the index that routes an event to the streams whose subjects
 * match it without scanning them.
 *
 *   ssf:subj:<sid>                 hash subjectKey -> subject JSON (the stream's entries)
 *   ssf:subidx:<member>\0<key>     set of "<sid> <subjectKey>": entries with that member value
 *                                  (member "_" for simple subjects)
 *
 * An entry means "included" on a stream whose default_subjects is NONE, and "excluded" on an ALL stream.
 *
 * Matching (SSF §8.1.3.1): simple subjects match when identical (canonical form); an `aliases` subject
 * matches through any of its identifiers. Complex subjects match when every member present on both sides
 * is identical and an absent member is a wildcard. [judgement] Two complex subjects must share at least
 * one member to match (otherwise {user} would match every {device}); and a simple subject a receiver
 * added also matches a complex event subject that has it as a member (a receiver that added
 * alice@example.com wants alice's session events too).
 *
 * Lookup cost is a few set reads per event whatever the number of subjects, plus one hash read per
 * complex candidate.
 */
import type { Redis } from 'ioredis'
import { canonicalSubject, subjectKey, type Subject } from './subject.js'

const entriesKey = (sid: string) => `ssf:subj:${sid}`
const termKey = (term: string) => `ssf:subidx:${term}`
const SIMPLE = '_'

type Simple = Exclude<Subject, { format: 'complex' }>

function simpleKeys(subject: Simple): string[] {
  if (subject.format === 'aliases') return (subject as { identifiers: Subject[] }).identifiers.map((s) => subjectKey(s))
  return [subjectKey(subject)]
}

function complexMembers(subject: Subject): [string, string][] {
  return Object.entries(subject)
    .filter(([name]) => name !== 'format')
    .map(([name, value]) => [name, subjectKey(value as Subject)])
}

/** Index terms under which an added subject is stored. */
function storeTerms(subject: Subject): string[] {
  if (subject.format === 'complex') return complexMembers(subject).map(([m, k]) => `${m}\0${k}`)
  return simpleKeys(subject as Simple).map((k) => `${SIMPLE}\0${k}`)
}

/** Index terms looked up for an event subject. */
function lookupTerms(subject: Subject): string[] {
  if (subject.format !== 'complex') return simpleKeys(subject as Simple).map((k) => `${SIMPLE}\0${k}`)
  return complexMembers(subject).flatMap(([m, k]) => [`${m}\0${k}`, `${SIMPLE}\0${k}`])
}

/** SSF §8.1.3.1 for two complex subjects: members on both sides equal, at least one shared. */
export function complexMatch(added: Subject, event: Subject): boolean {
  const eventMembers = new Map(complexMembers(event))
  let shared = 0
  for (const [name, key] of complexMembers(added)) {
    const other = eventMembers.get(name)
    if (other === undefined) continue
    if (other !== key) return false
    shared++
  }
  return shared > 0
}

export class SubjectIndex {
  constructor(private readonly redis: Redis) {}

  async add(sid: string, subject: Subject): Promise<void> {
    const canonical = canonicalSubject(subject)
    const key = subjectKey(canonical)
    const multi = this.redis.multi().hset(entriesKey(sid), key, JSON.stringify(canonical))
    for (const term of storeTerms(canonical)) multi.sadd(termKey(term), `${sid} ${key}`)
    await multi.exec()
  }

  /** Returns whether the stream had that entry. */
  async remove(sid: string, subject: Subject): Promise<boolean> {
    const canonical = canonicalSubject(subject)
    const key = subjectKey(canonical)
    const multi = this.redis.multi().hdel(entriesKey(sid), key)
    for (const term of storeTerms(canonical)) multi.srem(termKey(term), `${sid} ${key}`)
    const results = (await multi.exec()) ?? []
    return results[0]?.[1] === 1
  }

  count(sid: string): Promise<number> {
    return this.redis.hlen(entriesKey(sid))
  }

  /** Streams with an entry matching the event subject. */
  async matches(subject: Subject): Promise<Set<string>> {
    const canonical = canonicalSubject(subject)
    const terms = lookupTerms(canonical)
    const pipeline = this.redis.pipeline()
    for (const term of terms) pipeline.smembers(termKey(term))
    const results = (await pipeline.exec()) ?? []
    const matched = new Set<string>()
    const complexCandidates = new Map<string, Set<string>>() // sid -> entry keys to check
    results.forEach(([, members], i) => {
      const simpleTerm = terms[i]!.startsWith(`${SIMPLE}\0`)
      for (const member of (members as string[]) ?? []) {
        const space = member.indexOf(' ')
        const sid = member.slice(0, space)
        if (simpleTerm) matched.add(sid)
        else {
          let keys = complexCandidates.get(sid)
          if (!keys) complexCandidates.set(sid, (keys = new Set()))
          keys.add(member.slice(space + 1))
        }
      }
    })
    const toCheck = [...complexCandidates].filter(([sid]) => !matched.has(sid))
    if (toCheck.length > 0) {
      const check = this.redis.pipeline()
      for (const [sid, keys] of toCheck) check.hmget(entriesKey(sid), ...keys)
      const entries = (await check.exec()) ?? []
      toCheck.forEach(([sid], i) => {
        const raws = (entries[i]?.[1] as (string | null)[]) ?? []
        if (raws.some((raw) => raw !== null && complexMatch(JSON.parse(raw) as Subject, canonical))) matched.add(sid)
      })
    }
    return matched
  }

  /** Deletes all of a stream's entries and their index terms, in bounded chunks. */
  async purge(sid: string): Promise<void> {
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.hscan(entriesKey(sid), cursor, 'COUNT', 1000)
      cursor = next
      const multi = this.redis.multi()
      for (let i = 0; i < flat.length; i += 2) {
        for (const term of storeTerms(JSON.parse(flat[i + 1]!) as Subject)) multi.srem(termKey(term), `${sid} ${flat[i]}`)
      }
      await multi.exec()
    } while (cursor !== '0')
    await this.redis.del(entriesKey(sid))
  }
}
