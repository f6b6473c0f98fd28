/**
 * Verification: walks the whole chain from the retention anchor to the head (as of the start of the
 * walk), batch by batch in chain order, and reports the first broken link: a record whose content no
 * longer matches its hash, whose `prev` is not its predecessor's hash, a missing or moved record, a
 * batch whose records are gone, or a head that does not match the last record. (Rewriting the whole
 * tail *and* the head consistently is not detectable from inside Redis; keep the head hash elsewhere to
 * anchor it.)
 */
import { parsePointer } from './chain.js'
import { recordHash } from './chain.js'
import type { AuditStore } from './store.js'
import type { VerifyResult } from './types.js'

const BATCHES_PER_READ = 8

interface Outcome {
  result: VerifyResult
  anchorSeq: number
}

export async function verifyTrail(store: AuditStore): Promise<VerifyResult> {
  // A prune running meanwhile removes records from under the walk: start again from its new anchor.
  for (let attempt = 0; ; attempt++) {
    const outcome = await verifyOnce(store)
    if (outcome.result.ok || attempt >= 3) return outcome.result
    const anchor = parsePointer(await store.anchorRaw())
    if (anchor.seq === outcome.anchorSeq) return outcome.result
  }
}

async function verifyOnce(store: AuditStore): Promise<Outcome> {
  const pointers = await store.pointers()
  const head = parsePointer(pointers.head)
  const anchor = parsePointer(pointers.anchor)
  let prevHash = anchor.hash
  let expected = anchor.seq + 1
  let checked = 0
  const broken = (brokenAt: string | number, reason: string): Outcome => ({
    result: { ok: false, checked, brokenAt: String(brokenAt), reason },
    anchorSeq: anchor.seq,
  })
  let after: number | undefined
  walk: while (expected <= head.seq) {
    const ids = await store.batchIdsInOrder(after, head.seq, BATCHES_PER_READ)
    if (ids.length === 0) break
    for (const batch of await store.readBatches(ids)) {
      after = batch.score
      if (!batch.lines)
        return broken(
          Math.max(batch.score, expected),
          `record ${Math.max(batch.score, expected)} was deleted (its place in the chain is still listed)`,
        )
      for (const line of batch.lines) {
        let record: Record<string, unknown>
        try {
          record = JSON.parse(line) as Record<string, unknown>
        } catch {
          return broken(expected, `record ${expected} is not valid JSON`)
        }
        const seq = record.seq
        if (
          typeof seq !== 'number' ||
          record.id !== String(seq) ||
          seq < expected ||
          seq < batch.score
        ) {
          return broken(
            expected,
            `record ${expected} is not where the chain expects it (found id ${String(record.id)}, seq ${String(seq)}): it was moved or altered`,
          )
        }
        if (seq > head.seq) break walk // appended after the walk began
        if (seq !== expected)
          return broken(
            expected,
            `record ${expected} is missing: the chain jumps from ${expected - 1} to ${seq}`,
          )
        if (record.prev !== prevHash) {
          return broken(
            seq,
            `record ${seq}'s prev does not match the hash of ${expected - 1 > anchor.seq ? `record ${expected - 1}` : 'the chain start'}: a record before it was altered or replaced`,
          )
        }
        if (recordHash(record) !== record.hash)
          return broken(seq, `record ${seq} was altered: its content no longer matches its hash`)
        prevHash = record.hash as string
        expected++
        checked++
      }
    }
  }
  if (expected - 1 !== head.seq)
    return broken(
      expected,
      `the head names record ${head.seq} but the chain ends at ${expected - 1}: records were removed`,
    )
  if (prevHash !== head.hash)
    return broken(
      head.seq,
      `the head hash does not match record ${head.seq}: the head or the last record was altered`,
    )
  return { result: { ok: true, checked, head, anchor }, anchorSeq: anchor.seq }
}
