/**
 * Per-stream subjects (SSF §8.1.3) and the index that routes an event to the streams whose subjects
 * match it without scanning them.
 *
 *   stream(sid).subjects           hash subjectKey -> subject JSON (the stream's entries)
 *   subjectTerm(<member>\0<key>)   set of "<sid> <subjectKey>": entries with that member value
 *                                  (member "_" for simple subjects); one key per term, each in its own
 *                                  Cluster slot, touched only by single-key commands (an entry is
 *                                  written to its terms first and removed from them last, so a crash
 *                                  in between leaves a term pointing at no entry, which lookups skip)
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
import type { Keyspace } from '../redis/keyspace.js'
import { canonicalSubject, subjectKey, type Subject } from './subject.js'

const SIMPLE = '_'

type Simple = Exclude<Subject, { format: 'complex' }>

function simpleKeys(subject: Simple): string[] {
  if (subject.format === 'aliases')
    return (subject as { identifiers: Subject[] }).identifiers.map((s) => subjectKey(s))
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
  if (subject.format !== 'complex')
    return simpleKeys(subject as Simple).map((k) => `${SIMPLE}\0${k}`)
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
  /** `exists`: whether a stream still exists, checked after each entry is written (see `add`). */
  constructor(
    private readonly redis: Redis,
    private readonly ks: Keyspace,
    private readonly exists?: (sid: string) => Promise<boolean>,
  ) {}

  #entries(sid: string): string {
    return this.ks.stream(sid).subjects
  }

  async add(sid: string, subject: Subject): Promise<void> {
    const canonical = canonicalSubject(subject)
    const key = subjectKey(canonical)
    await Promise.all(
      storeTerms(canonical).map((term) =>
        this.redis.sadd(this.ks.subjectTerm(term), `${sid} ${key}`),
      ),
    )
    await this.redis.hset(this.#entries(sid), key, JSON.stringify(canonical))
    // A deletion removes the record, then the entries: if it came in between, this entry goes too.
    if (this.exists && !(await this.exists(sid))) await this.purge(sid)
  }

  /** Returns whether the stream had that entry. */
  async remove(sid: string, subject: Subject): Promise<boolean> {
    const canonical = canonicalSubject(subject)
    const key = subjectKey(canonical)
    const removed = await this.redis.hdel(this.#entries(sid), key)
    await Promise.all(
      storeTerms(canonical).map((term) =>
        this.redis.srem(this.ks.subjectTerm(term), `${sid} ${key}`),
      ),
    )
    return removed === 1
  }

  count(sid: string): Promise<number> {
    return this.redis.hlen(this.#entries(sid))
  }

  /** Streams with an entry matching the event subject. */
  async matches(subject: Subject): Promise<Set<string>> {
    return (await this.matchAll([subject]))[0]!
  }

  /**
   * matches() for many event subjects at once: a term shared by several of them (the user of a cascade's
   * agent subjects, a user with many events in a batch) is read once.
   */
  matchAll(subjects: readonly Subject[]): Promise<Set<string>[]> {
    const reads = new Map<string, Promise<string[]>>()
    // Separate commands, not a pipeline: on a cluster each term lives on its own node (auto-pipelined per node).
    const read = (term: string) => {
      let found = reads.get(term)
      if (!found) reads.set(term, (found = this.redis.smembers(this.ks.subjectTerm(term))))
      return found
    }
    return Promise.all(subjects.map((subject) => this.#match(subject, read)))
  }

  async #match(subject: Subject, read: (term: string) => Promise<string[]>): Promise<Set<string>> {
    const canonical = canonicalSubject(subject)
    const terms = lookupTerms(canonical)
    const results = await Promise.all(terms.map(read))
    const matched = new Set<string>()
    const complexCandidates = new Map<string, Set<string>>() // sid -> entry keys to check
    results.forEach((members, i) => {
      const simpleTerm = terms[i]!.startsWith(`${SIMPLE}\0`)
      for (const member of members) {
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
      const entries = await Promise.all(
        toCheck.map(([sid, keys]) =>
          this.redis.hmget(this.#entries(sid), ...keys).then((r) => [null, r] as const),
        ),
      )
      toCheck.forEach(([sid], i) => {
        const raws = (entries[i]?.[1] as (string | null)[]) ?? []
        if (raws.some((raw) => raw !== null && complexMatch(JSON.parse(raw) as Subject, canonical)))
          matched.add(sid)
      })
    }
    return matched
  }

  /** Deletes all of a stream's entries and their index terms, in bounded chunks. */
  async purge(sid: string): Promise<void> {
    let cursor = '0'
    do {
      const [next, flat] = await this.redis.hscan(this.#entries(sid), cursor, 'COUNT', 1000)
      cursor = next
      const removals: Promise<unknown>[] = []
      for (let i = 0; i < flat.length; i += 2) {
        for (const term of storeTerms(JSON.parse(flat[i + 1]!) as Subject))
          removals.push(this.redis.srem(this.ks.subjectTerm(term), `${sid} ${flat[i]}`))
      }
      await Promise.all(removals)
    } while (cursor !== '0')
    await this.redis.del(this.#entries(sid))
  }
}
