/**
 * The audit trail: every step from an ingested event to each receiver's confirmation, tamper-evident
 * (ssf-spec.md §5.3 minimum audit record: agent, delegated subject, remediation events and their cause,
 * correlation id, time).
 *
 * Records form one global hash chain, whichever broker process wrote them: record n holds
 * `prev` = hash of record n-1 (64 zeros for the first) and `hash` = SHA-256 (hex) of its canonical JSON
 * (keys sorted at every level, `hash` left out, `prev` included). Changing, inserting or removing a
 * record breaks the chain at that place, which verify() reports. (Rewriting the whole tail *and* the head
 * consistently is not detectable from inside Redis; export verify()'s head hash elsewhere to anchor it.)
 *
 *   ssf:audit:head          "<seq>:<hash>" of the newest record (the chain head)
 *   ssf:audit:rec           hash id -> record JSON (id = the record's sequence number)
 *   ssf:audit:seq           zset id -> seq: chain order
 *   ssf:audit:anchor        "<seq>:<hash>" of the last record removed by retention: where the chain resumes
 *   ssf:audit:ix:<t>:<h>    zset id -> seq per query key: t = txn | sub (subject key) | agent | stream,
 *                           h = SHA-256(value)[0..32); expires after the retention when no longer written
 *
 * Appending: a process computes the next records' hashes from the head it read, then a Lua script stores
 * them only if the head is still the one it read (compare-and-set), else it re-reads and retries. Writes
 * are batched: record()/recordMany() queue entries, and one flush per process at a time appends
 * everything queued since (up to 500 records per script call), so the hot path pays one queue push;
 * `submit()` is the fire-and-forget form. Entries are sanitized first (sanitize.ts): no bearer token,
 * authorization header or key material is ever stored.
 *
 * Retention: prune() removes the oldest records (in chain order) older than `retentionSeconds` and moves
 * the anchor forward, so the remaining chain still verifies.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { subjectKey, type Subject } from '../subjects/subject.js'
import { sanitize } from './sanitize.js'

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
  | (Common & { kind: 'event.ingested'; txn: string; type: string; subject: Subject; client_id: string; remote_addr?: string; event_id?: string })
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
  | (Common & { kind: 'set.minted'; jti: string; stream_id: string; aud: string | string[]; txn: string; type: string })
  | (Common & {
      kind: 'delivery.attempt'
      jti: string
      stream_id: string
      outcome: string
      txn?: string
      attempt?: number
      status?: number
      latency_ms?: number
      error?: string
    })
  | (Common & { kind: 'poll.ack'; jti: string; stream_id: string })
  | (Common & { kind: 'poll.set_error'; jti: string; stream_id: string; err: string; description?: string })
  | (Common & { kind: 'stream.backlog_dropped'; stream_id: string; count: number; jtis: string[] })
  | (Common & { kind: 'stream.status_changed'; stream_id: string; status: string; previous_status?: string; reason?: string; changed_by?: string })
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
  | { ok: true; checked: number; head: { seq: number; hash: string }; anchor: { seq: number; hash: string } }
  | { ok: false; checked: number; brokenAt: string; reason: string }

export interface AuditLogOptions {
  retentionSeconds: number
  /** Where failures of fire-and-forget writes (submit) go. Default: ignored. */
  onError?: (err: unknown) => void
  /** Most entries queued in memory (Redis unreachable) before new ones are refused. Default 100000. */
  maxPending?: number
}

export const GENESIS = '0'.repeat(64)
const HEAD = 'ssf:audit:head'
const REC = 'ssf:audit:rec'
const SEQ = 'ssf:audit:seq'
const ANCHOR = 'ssf:audit:anchor'
const IX = 'ssf:audit:ix:'
const BATCH = 500
const MAX_PAGE = 1000

const APPEND = `
local head = redis.call('GET', KEYS[1]) or ('0:' .. ARGV[4])
if head ~= ARGV[1] then return 0 end
local i = 5
while i <= #ARGV do
  local id, seq, json, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  redis.call('HSET', KEYS[2], id, json)
  redis.call('ZADD', KEYS[3], seq, id)
  for j = 1, n do
    local ix = ARGV[i + 3 + j]
    redis.call('ZADD', ix, seq, id)
    redis.call('EXPIRE', ix, ARGV[3])
  end
  i = i + 4 + n
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`

const PRUNE = `
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)) do
  local json = redis.call('HGET', KEYS[1], id)
  if not json then break end
  local rec = cjson.decode(json)
  if tonumber(rec.at) >= tonumber(ARGV[1]) then break end
  redis.call('SET', KEYS[3], string.format('%d', rec.seq) .. ':' .. rec.hash)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  n = n + 1
end
return n
`

type Scripted = Redis & {
  ssfAuditAppend(...args: (string | number)[]): Promise<number>
  ssfAuditPrune(...args: (string | number)[]): Promise<number>
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** JSON with object keys sorted at every level: the form that is hashed. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((key) => value[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

/** The hash a record must carry: SHA-256 over its canonical JSON without `hash`. */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record
  return createHash('sha256').update(canonicalJson(rest)).digest('hex')
}

const h = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 32)
const ixKey = (type: 'txn' | 'sub' | 'agent' | 'stream', value: string) => `${IX}${type}:${h(value)}`

function subjectOf(value: unknown): Subject | undefined {
  return isObject(value) && typeof value.format === 'string' ? (value as unknown as Subject) : undefined
}

function safeSubjectKey(subject: Subject): string | undefined {
  try {
    return subjectKey(subject)
  } catch {
    return undefined
  }
}

/** The query keys a (sanitized) record is filed under. */
function indexKeys(record: Record<string, unknown>): string[] {
  const keys = new Set<string>()
  if (typeof record.txn === 'string') keys.add(ixKey('txn', record.txn))
  for (const member of ['agent_id', 'delegator_agent_id']) {
    const value = record[member]
    if (typeof value === 'string') keys.add(ixKey('agent', value))
  }
  if (typeof record.stream_id === 'string') keys.add(ixKey('stream', record.stream_id))
  const subjects: unknown[] = [record.subject, record.principal, record.delegator, ...(Array.isArray(record.path) ? record.path : [])]
  for (const value of subjects) {
    const subject = subjectOf(value)
    const key = subject && safeSubjectKey(subject)
    if (key) keys.add(ixKey('sub', key))
  }
  return [...keys]
}

function parsePointer(raw: string | null): { seq: number; hash: string } {
  if (!raw) return { seq: 0, hash: GENESIS }
  const at = raw.indexOf(':')
  return { seq: Number(raw.slice(0, at)), hash: raw.slice(at + 1) }
}

type Prepared = Record<string, unknown> & { kind: AuditKind; at: number }

interface Pending {
  items: Prepared[]
  resolve(): void
  reject(err: unknown): void
}

export class AuditLog {
  private readonly redis: Scripted
  private readonly retentionSeconds: number
  private readonly onError: (err: unknown) => void
  private readonly maxPending: number
  #queue: Pending[] = []
  #queued = 0
  #flushing: Promise<void> | undefined
  #scheduled = false

  constructor(redis: Redis, options: AuditLogOptions) {
    if (!Number.isInteger(options.retentionSeconds) || options.retentionSeconds < 1) throw new TypeError('AuditLog: retentionSeconds must be a positive whole number')
    this.retentionSeconds = options.retentionSeconds
    this.onError = options.onError ?? (() => {})
    this.maxPending = options.maxPending ?? 100_000
    if (!('ssfAuditAppend' in redis)) redis.defineCommand('ssfAuditAppend', { numberOfKeys: 3, lua: APPEND })
    if (!('ssfAuditPrune' in redis)) redis.defineCommand('ssfAuditPrune', { numberOfKeys: 3, lua: PRUNE })
    this.redis = redis as Scripted
  }

  /** Appends one entry; resolves once it is in Redis. */
  record(entry: AuditEntryInput): Promise<void> {
    return this.recordMany([entry])
  }

  /** Appends entries, in order, as part of the next batch; resolves once they are in Redis. */
  recordMany(entries: readonly AuditEntryInput[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve()
    const now = Date.now()
    const items = entries.map((entry) => this.prepare(entry, now))
    if (this.#queued + items.length > this.maxPending) {
      return Promise.reject(new Error(`audit queue full (${this.#queued} entries waiting for Redis); ${items.length} entries not recorded`))
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ items, resolve, reject })
      this.#queued += items.length
      this.#kick()
    })
  }

  /** Fire and forget: failures go to options.onError. */
  submit(entries: AuditEntryInput | readonly AuditEntryInput[]): void {
    this.recordMany(Array.isArray(entries) ? entries : [entries as AuditEntryInput]).catch(this.onError)
  }

  /** Resolves when everything queued so far has been written (or failed). */
  async flush(): Promise<void> {
    while (this.#flushing || this.#scheduled || this.#queue.length > 0) {
      if (this.#flushing) await this.#flushing.catch(() => {})
      else await new Promise((r) => setImmediate(r))
    }
  }

  private prepare(entry: AuditEntryInput, now: number): Prepared {
    const { kind, at, details, ...rest } = entry
    const { value, redacted } = sanitize({ ...rest, ...(details ? { details } : {}) })
    return { at: typeof at === 'number' && Number.isFinite(at) ? at : now, kind, ...value, ...(redacted.length > 0 ? { redacted } : {}) }
  }

  #kick(): void {
    if (this.#flushing || this.#scheduled) return
    this.#scheduled = true
    // Let the rest of this tick's entries join the batch.
    setImmediate(() => {
      this.#scheduled = false
      this.#flushing = this.#drain().finally(() => {
        this.#flushing = undefined
        if (this.#queue.length > 0) this.#kick()
      })
    })
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const groups: Pending[] = []
      let count = 0
      while (this.#queue.length > 0 && (count === 0 || count + this.#queue[0]!.items.length <= BATCH)) {
        const group = this.#queue.shift()!
        groups.push(group)
        count += group.items.length
      }
      this.#queued -= count
      try {
        const items = groups.flatMap((g) => g.items)
        for (let i = 0; i < items.length; i += BATCH) await this.#append(items.slice(i, i + BATCH))
        for (const g of groups) g.resolve()
      } catch (err) {
        for (const g of groups) g.reject(err)
      }
    }
  }

  async #append(items: readonly Prepared[]): Promise<AuditRecord[]> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const raw = await this.redis.get(HEAD)
      const head = parsePointer(raw)
      const expected = raw ?? `0:${GENESIS}`
      let prev = head.hash
      let seq = head.seq
      const records: AuditRecord[] = []
      const args: (string | number)[] = []
      for (const item of items) {
        seq++
        const { at, kind, ...fields } = item
        const base: Record<string, unknown> = { id: String(seq), seq, at, kind, ...fields, prev }
        const hash = recordHash(base)
        const record = { ...base, hash } as AuditRecord
        records.push(record)
        const ix = indexKeys(record)
        args.push(record.id, seq, JSON.stringify(record), ix.length, ...ix)
        prev = hash
      }
      const ok = await this.redis.ssfAuditAppend(HEAD, REC, SEQ, expected, `${seq}:${prev}`, this.retentionSeconds + 86_400, GENESIS, ...args)
      if (ok === 1) return records
      // Another process appended first: build on its head. Back off a little under heavy contention.
      if (attempt >= 10) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)))
    }
    throw new Error('audit append: the chain head kept changing (200 attempts); entries not recorded')
  }

  /**
   * Records matching every given key, newest first, `limit` per page (default 100, at most 1000).
   * `next_cursor` is set while older records may exist; pass it as `cursor` for the next page.
   */
  async query(filter: AuditFilter): Promise<{ records: AuditRecord[]; next_cursor?: string }> {
    const limit = Math.min(Math.max(Math.floor(filter.limit ?? 100), 1), MAX_PAGE)
    if (filter.cursor !== undefined && !/^\d+$/.test(filter.cursor)) throw new TypeError('cursor: must be a next_cursor from a previous page')
    const wanted: string[] = []
    if (filter.txn !== undefined) wanted.push(ixKey('txn', filter.txn))
    if (filter.agent_id !== undefined) wanted.push(ixKey('agent', filter.agent_id))
    if (filter.stream_id !== undefined) wanted.push(ixKey('stream', filter.stream_id))
    if (filter.subject !== undefined) wanted.push(ixKey('sub', subjectKey(filter.subject)))
    const kinds = filter.kind === undefined ? undefined : new Set<string>(typeof filter.kind === 'string' ? [filter.kind] : filter.kind)
    const primary = wanted[0] ?? SEQ
    const others = wanted.slice(1)
    const needsCheck = others.length > 0 || kinds !== undefined
    const records: AuditRecord[] = []
    let max = filter.cursor !== undefined ? `(${filter.cursor}` : '+inf'
    // With extra keys, records are filtered after reading: scan a bounded number per page.
    let budget = needsCheck ? Math.max(limit * 20, 5000) : Number.POSITIVE_INFINITY
    for (;;) {
      const want = needsCheck ? Math.min(MAX_PAGE, Math.max(limit - records.length, 100)) : limit - records.length
      const page = await this.redis.zrevrangebyscore(primary, max, '-inf', 'WITHSCORES', 'LIMIT', 0, want)
      if (page.length === 0) return { records }
      const ids: string[] = []
      const scores: string[] = []
      for (let i = 0; i < page.length; i += 2) {
        ids.push(page[i]!)
        scores.push(page[i + 1]!)
      }
      const jsons = await this.redis.hmget(REC, ...ids)
      for (const [i, json] of jsons.entries()) {
        max = `(${scores[i]!}`
        budget--
        if (!json) continue // removed by retention
        const record = JSON.parse(json) as AuditRecord
        if (kinds && !kinds.has(record.kind)) continue
        if (others.length > 0) {
          const keys = new Set(indexKeys(record))
          if (!others.every((k) => keys.has(k))) continue
        }
        records.push(record)
        if (records.length === limit) {
          const more = await this.redis.zrevrangebyscore(primary, `(${scores[i]!}`, '-inf', 'LIMIT', 0, 1)
          return more.length > 0 ? { records, next_cursor: scores[i]! } : { records }
        }
      }
      if (budget <= 0) return { records, next_cursor: max.slice(1) }
      if (ids.length < want) return { records }
    }
  }

  /** Every matching record (newest first) as JSON Lines: one JSON object per line, each ending in "\n". */
  async *exportJsonl(filter: AuditFilter): AsyncIterable<string> {
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY
    let cursor = filter.cursor
    while (remaining > 0) {
      const page = await this.query({ ...filter, limit: Math.min(MAX_PAGE, remaining), ...(cursor !== undefined ? { cursor } : {}) })
      for (const record of page.records) yield `${JSON.stringify(record)}\n`
      remaining -= page.records.length
      if (page.next_cursor === undefined) return
      cursor = page.next_cursor
    }
  }

  /**
   * Walks the whole chain from the retention anchor to the head (as of the start of the walk) and
   * reports the first broken link: a record whose content no longer matches its hash, whose `prev` is
   * not its predecessor's hash, a missing record, or a head that does not match the last record.
   */
  async verify(): Promise<VerifyResult> {
    // A prune running meanwhile removes records from under the walk: start again from its new anchor.
    for (let attempt = 0; ; attempt++) {
      const result = await this.#verifyOnce()
      if (result.ok || attempt >= 3) return result.result
      const anchor = parsePointer(await this.redis.get(ANCHOR))
      if (anchor.seq === result.anchorSeq) return result.result
    }
  }

  async #verifyOnce(): Promise<{ ok: boolean; result: VerifyResult; anchorSeq: number }> {
    const [rawHead, rawAnchor] = await this.redis.mget(HEAD, ANCHOR)
    const head = parsePointer(rawHead ?? null)
    const anchor = parsePointer(rawAnchor ?? null)
    let prevHash = anchor.hash
    let expected = anchor.seq + 1
    let checked = 0
    const broken = (brokenAt: string, reason: string) => ({ ok: false, result: { ok: false as const, checked, brokenAt, reason }, anchorSeq: anchor.seq })
    while (expected <= head.seq) {
      const page = await this.redis.zrangebyscore(SEQ, expected, head.seq, 'WITHSCORES', 'LIMIT', 0, MAX_PAGE)
      if (page.length === 0) break
      const ids: string[] = []
      const scores: number[] = []
      for (let i = 0; i < page.length; i += 2) {
        ids.push(page[i]!)
        scores.push(Number(page[i + 1]))
      }
      const jsons = await this.redis.hmget(REC, ...ids)
      for (const [i, id] of ids.entries()) {
        const seq = scores[i]!
        if (seq !== expected) return broken(String(expected), `record ${expected} is missing: the chain jumps from ${expected - 1} to ${seq}`)
        const json = jsons[i]
        if (!json) return broken(id, `record ${id} was deleted (its place in the chain is still listed)`)
        let record: Record<string, unknown>
        try {
          record = JSON.parse(json) as Record<string, unknown>
        } catch {
          return broken(id, `record ${id} is not valid JSON`)
        }
        if (record.id !== id || record.seq !== seq) return broken(id, `record ${id} claims to be record ${String(record.id)} (seq ${String(record.seq)}): it was moved or altered`)
        if (record.prev !== prevHash) {
          return broken(id, `record ${id}'s prev does not match the hash of ${expected - 1 > anchor.seq ? `record ${expected - 1}` : 'the chain start'}: a record before it was altered or replaced`)
        }
        if (recordHash(record) !== record.hash) return broken(id, `record ${id} was altered: its content no longer matches its hash`)
        prevHash = record.hash as string
        expected++
        checked++
      }
    }
    if (expected - 1 !== head.seq) return broken(String(expected), `the head names record ${head.seq} but the chain ends at ${expected - 1}: records were removed`)
    if (prevHash !== head.hash) return broken(String(head.seq), `the head hash does not match record ${head.seq}: the head or the last record was altered`)
    return { ok: true, result: { ok: true, checked, head, anchor }, anchorSeq: anchor.seq }
  }

  /**
   * Retention: removes, oldest first in chain order, the records older than retentionSeconds at `now`
   * (ms). Stops at the first newer record (so the chain stays contiguous). Returns how many it removed.
   */
  async prune(now: number = Date.now()): Promise<number> {
    const cutoff = now - this.retentionSeconds * 1000
    let total = 0
    for (;;) {
      const n = await this.redis.ssfAuditPrune(REC, SEQ, ANCHOR, cutoff, 1000)
      total += n
      if (n < 1000) return total
    }
  }

  /** Runs prune() every `intervalMs` until the returned function is called. */
  startPruning(intervalMs = 60_000): () => void {
    const timer = setInterval(() => void this.prune().catch(this.onError), intervalMs)
    timer.unref()
    return () => clearInterval(timer)
  }
}
