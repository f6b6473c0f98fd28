/**
 * Reading the audit trail: records matching every filter key, newest first, in pages. The index of one
 * key (the smallest, when several are given; chain order when none) names the batches to read; each
 * batch's records are then filtered by every key, the kinds and the cursor. `next_cursor` is a record
 * seq: the next page holds records below it.
 */
import { filterTerms, hasTerms } from './index-terms.js'
import type { AuditStore } from './store.js'
import type { AuditFilter, AuditRecord } from './types.js'

export const MAX_PAGE = 1000
/** Batches fetched per HMGET while paging. */
const BATCHES_PER_READ = 8
/** Records looked at per page before answering with what was found and a cursor. */
const SCAN_BUDGET = 20_000

export async function queryTrail(
  store: AuditStore,
  filter: AuditFilter,
): Promise<{ records: AuditRecord[]; next_cursor?: string }> {
  const limit = Math.min(Math.max(Math.floor(filter.limit ?? 100), 1), MAX_PAGE)
  if (filter.cursor !== undefined && !/^\d+$/.test(filter.cursor))
    throw new TypeError('cursor: must be a next_cursor from a previous page')
  const wanted = filterTerms(filter)
  const matches = hasTerms(wanted)
  const kinds =
    filter.kind === undefined
      ? undefined
      : new Set<string>(typeof filter.kind === 'string' ? [filter.kind] : filter.kind)
  let primary = store.keys.order
  if (wanted.length > 0) {
    const keys = wanted.map(([type, value]) => store.indexKey(type, value))
    const sizes = keys.length > 1 ? await store.sizes(keys) : [0]
    primary = keys[sizes.indexOf(Math.min(...sizes))]!
  }
  const cursor = filter.cursor !== undefined ? Number(filter.cursor) : undefined
  const records: AuditRecord[] = []
  let below = cursor
  let scanned = 0
  for (;;) {
    const ids = await store.newestBatchIds(primary, below, BATCHES_PER_READ)
    if (ids.length === 0) return { records }
    for (const batch of await store.readBatches(ids)) {
      below = batch.score
      if (!batch.lines) continue // removed by retention
      // Newest first: a batch's records are stored oldest first.
      for (let i = batch.lines.length - 1; i >= 0; i--) {
        scanned++
        let record: AuditRecord
        try {
          record = JSON.parse(batch.lines[i]!) as AuditRecord
        } catch {
          continue // damaged; verify() reports it
        }
        if (cursor !== undefined && !(record.seq < cursor)) continue
        if (kinds && !kinds.has(record.kind)) continue
        if (!matches(record)) continue
        if (records.length === limit) return { records, next_cursor: String(records.at(-1)!.seq) }
        records.push(record)
      }
      if (records.length === limit) {
        // Full: older records may exist while the index lists older batches.
        const more = await store.newestBatchIds(primary, batch.score, 1)
        return more.length > 0 ? { records, next_cursor: String(records.at(-1)!.seq) } : { records }
      }
      if (scanned >= SCAN_BUDGET) return { records, next_cursor: String(batch.score) }
    }
    if (ids.length < BATCHES_PER_READ) return { records }
  }
}

/** Every matching record (newest first) as JSON Lines: one JSON object per line, each ending in "\n". */
export async function* exportTrail(store: AuditStore, filter: AuditFilter): AsyncIterable<string> {
  let remaining = filter.limit ?? Number.POSITIVE_INFINITY
  let cursor = filter.cursor
  while (remaining > 0) {
    const page = await queryTrail(store, {
      ...filter,
      limit: Math.min(MAX_PAGE, remaining),
      ...(cursor !== undefined ? { cursor } : {}),
    })
    for (const record of page.records) yield `${JSON.stringify(record)}\n`
    remaining -= page.records.length
    if (page.next_cursor === undefined) return
    cursor = page.next_cursor
  }
}
