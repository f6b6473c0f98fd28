/**
 * Appending to the audit trail. record()/recordMany() queue sanitized entries; one flush per process at a
 * time appends everything queued since, as batches of up to MAX_BATCH records, each one script call. A
 * flush starts at most every `lingerMs` (unless a full batch is waiting), so under load many callers'
 * entries share one append and a record costs a fraction of a Redis command.
 *
 * Chaining: the writer hashes the records onto the head it believes current (the one its last append
 * left, or read once); the script stores them only if the head is still that (compare-and-set), else it
 * answers the current head and the writer re-chains onto it. Several processes thus keep one chain.
 *
 * Preparing (sanitizing), chaining and indexing records is CPU work of a few µs each: it is done in the
 * flush, in slices of SLICE records with a turn of the event loop between them, so a large batch (a
 * 1,000-event request's records) never holds the event loop for long (other requests and deliveries
 * wait behind any long synchronous task). Entries are therefore read at the flush, not at enqueue: a
 * caller must not change them after handing them over.
 *
 * Index TTLs are refreshed at most once per key per TTL_REFRESH_MS (one hour) by this process, not on
 * every write: the TTL (retention + one day) outlasts the refresh interval, so a key written since stays
 * alive for at least the retention after its last write.
 */
import { chainRecords, parsePointer } from './chain.js'
import { recordTerms } from './index-terms.js'
import { sanitize } from './sanitize.js'
import type { AuditStore } from './store.js'
import {
  MAX_DROPPED_JTIS,
  type AuditEntryInput,
  type AuditRecord,
  type PreparedEntry,
} from './types.js'

/**
 * Records per append (one script call). The script files each record under a few index keys, so its time
 * in Redis grows with the batch: batches of 500 held Redis, which every request and delivery shares, for
 * up to 56 ms while a flood of 1,000-event requests was taken in; batches of 100, for up to 25 ms.
 */
export const MAX_BATCH = 100
/** Records prepared, or chained and indexed, between two turns of the event loop. */
const SLICE = 64
const TTL_SLACK_SECONDS = 86_400
const TTL_REFRESH_MS = 3_600_000
/** Most keys remembered as refreshed (each txn is a key of its own); beyond it, start over. */
const MAX_REFRESHED = 50_000
const MAX_ATTEMPTS = 200

interface Pending {
  entries: readonly AuditEntryInput[]
  /** When they were enqueued: the time of the entries that carry none. */
  at: number
  resolve(): void
  reject(err: unknown): void
}

export interface WriterOptions {
  retentionSeconds: number
  maxPending: number
  lingerMs: number
}

/** The stored form of an entry: sanitized, with its time; no chain members yet. */
export function prepareEntry(entry: AuditEntryInput, now: number): PreparedEntry {
  const { kind, at, details, ...rest } = entry
  if (kind === 'stream.backlog_dropped' && Array.isArray((rest as { jtis?: unknown }).jtis)) {
    const r = rest as { jtis: unknown[] }
    if (r.jtis.length > MAX_DROPPED_JTIS) r.jtis = r.jtis.slice(0, MAX_DROPPED_JTIS)
  }
  const { value, redacted } = sanitize({ ...rest, ...(details ? { details } : {}) })
  return {
    at: typeof at === 'number' && Number.isFinite(at) ? at : now,
    kind,
    ...value,
    ...(redacted.length > 0 ? { redacted } : {}),
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

export class AuditWriter {
  #queue: Pending[] = []
  #queued = 0
  #flushing: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #immediate = false
  #lastFlushAt = 0
  /** The head this process last saw; undefined: read it before the next append. */
  #head: string | undefined
  #refreshed = new Set<string>()
  #refreshedSince = Date.now()

  constructor(
    private readonly store: AuditStore,
    private readonly options: WriterOptions,
  ) {}

  enqueue(entries: readonly AuditEntryInput[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve()
    if (this.#queued + entries.length > this.options.maxPending) {
      return Promise.reject(
        new Error(
          `audit queue full (${this.#queued} entries waiting for Redis); ${entries.length} entries not recorded`,
        ),
      )
    }
    const at = Date.now()
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ entries, at, resolve, reject })
      this.#queued += entries.length
      this.#kick(false)
    })
  }

  /** Resolves when everything queued so far has been written (or failed); does not wait for the linger. */
  async flush(): Promise<void> {
    while (this.#flushing || this.#timer || this.#immediate || this.#queue.length > 0) {
      if (this.#flushing) await this.#flushing.catch(() => {})
      else if (this.#timer || this.#queue.length > 0) this.#kick(true)
      if (this.#immediate) await new Promise((r) => setImmediate(r))
    }
  }

  #kick(now: boolean): void {
    if (this.#flushing || this.#immediate) return
    const wait =
      now || this.#queued >= MAX_BATCH ? 0 : this.#lastFlushAt + this.options.lingerMs - Date.now()
    if (wait > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined
        this.#kick(true)
      }, wait)
      return
    }
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#immediate = true
    // Let the rest of this tick's entries join the batch.
    setImmediate(() => {
      this.#immediate = false
      this.#lastFlushAt = Date.now()
      this.#flushing = this.#drain().finally(() => {
        this.#flushing = undefined
        if (this.#queue.length > 0) this.#kick(false)
      })
    })
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const groups: Pending[] = []
      let count = 0
      while (
        this.#queue.length > 0 &&
        (count === 0 || count + this.#queue[0]!.entries.length <= MAX_BATCH)
      ) {
        const group = this.#queue.shift()!
        groups.push(group)
        count += group.entries.length
      }
      this.#queued -= count
      try {
        const items: PreparedEntry[] = []
        for (const g of groups)
          for (const entry of g.entries) {
            if (items.length > 0 && items.length % SLICE === 0) await nextTurn()
            items.push(prepareEntry(entry, g.at))
          }
        for (let i = 0; i < items.length; i += MAX_BATCH)
          await this.#append(items.slice(i, i + MAX_BATCH))
        for (const g of groups) g.resolve()
      } catch (err) {
        this.#head = undefined
        for (const g of groups) g.reject(err)
      }
    }
  }

  async #append(items: readonly PreparedEntry[]): Promise<AuditRecord[]> {
    let head = this.#head ?? (await this.store.headRaw())
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const records: AuditRecord[] = []
      const indexKeys = new Set<string>()
      for (let i = 0; i < items.length; i += SLICE) {
        // A retry (another process appended meanwhile) chains at once: the window for the next is short.
        if (i > 0 && attempt === 0) await nextTurn()
        const last = records.at(-1)
        const slice = chainRecords(last ?? parsePointer(head), items.slice(i, i + SLICE))
        for (const record of slice) {
          records.push(record)
          for (const [type, value] of recordTerms(record))
            indexKeys.add(this.store.indexKey(type, value))
        }
      }
      const keys = [...indexKeys]
      const refresh = this.#dueForRefresh(keys)
      const current = await this.store.append(
        head,
        records,
        keys,
        refresh,
        this.options.retentionSeconds + TTL_SLACK_SECONDS,
      )
      if (current === null) {
        for (const key of refresh) this.#refreshed.add(key)
        const last = records.at(-1)!
        this.#head = `${last.seq}:${last.hash}`
        return records
      }
      // Another process appended first: build on its head. Back off a little under heavy contention.
      head = current
      if (attempt >= 10)
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)))
    }
    throw new Error(
      `audit append: the chain head kept changing (${MAX_ATTEMPTS} attempts); entries not recorded`,
    )
  }

  #dueForRefresh(keys: readonly string[]): string[] {
    if (
      Date.now() - this.#refreshedSince > TTL_REFRESH_MS ||
      this.#refreshed.size > MAX_REFRESHED
    ) {
      this.#refreshed.clear()
      this.#refreshedSince = Date.now()
    }
    return keys.filter((key) => !this.#refreshed.has(key))
  }
}
