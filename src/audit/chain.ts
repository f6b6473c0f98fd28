/**
 * The global hash chain: record n holds `prev` = hash of record n-1 (64 zeros for the first) and
 * `hash` = SHA-256 (hex) of its canonical JSON (keys sorted at every level, `hash` left out, `prev`
 * included). Changing, inserting or removing a record breaks the chain at that place.
 */
import { createHash } from 'node:crypto'
import type { AuditRecord, PreparedEntry } from './types.js'

export const GENESIS = '0'.repeat(64)

/** A place in the chain: the chain head, or the retention anchor. */
export interface ChainPointer {
  seq: number
  hash: string
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

/** Parses "<seq>:<hash>"; missing means the chain start. */
export function parsePointer(raw: string | null | undefined): ChainPointer {
  if (!raw) return { seq: 0, hash: GENESIS }
  const at = raw.indexOf(':')
  return { seq: Number(raw.slice(0, at)), hash: raw.slice(at + 1) }
}

export const formatPointer = (p: ChainPointer): string => `${p.seq}:${p.hash}`

/** The stored JSON line of records chained here: the hashed canonical text with `hash` appended (no second serialisation). */
const storedLines = new WeakMap<AuditRecord, string>()

/** The JSON text a record is stored as. */
export const storedLine = (record: AuditRecord): string =>
  storedLines.get(record) ?? JSON.stringify(record)

/** Chains `entries` onto `head`: the records, in order, each linked to the one before. */
export function chainRecords(head: ChainPointer, entries: readonly PreparedEntry[]): AuditRecord[] {
  let prev = head.hash
  let seq = head.seq
  return entries.map((entry) => {
    seq++
    const { at, kind, ...fields } = entry
    const base: Record<string, unknown> = { id: String(seq), seq, at, kind, ...fields, prev }
    const text = canonicalJson(base)
    const hash = createHash('sha256').update(text).digest('hex')
    prev = hash
    const record = { ...base, hash } as AuditRecord
    storedLines.set(record, `${text.slice(0, -1)},"hash":"${hash}"}`)
    return record
  })
}
