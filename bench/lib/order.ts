/**
 * Per-subject order at a receiver: for every pair of SETs about one subject where the first event's ingest
 * request had been answered before the second's was sent (so the broker knew their order), the first must
 * have arrived first. Events posted concurrently have no order to keep and are not compared.
 */
export interface Sent {
  txn: string
  subject: string
  sentAt: number
  ackedAt: number
}

export function orderViolations(
  sent: readonly Sent[],
  arrivals: Record<string, { first: number }>,
): { compared: number; violations: number; sample: string[] } {
  const bySubject = new Map<string, Sent[]>()
  for (const s of sent) {
    if (!arrivals[s.txn]) continue
    const list = bySubject.get(s.subject)
    if (list) list.push(s)
    else bySubject.set(s.subject, [s])
  }
  let compared = 0
  let violations = 0
  const sample: string[] = []
  for (const list of bySubject.values()) {
    for (const a of list) {
      for (const b of list) {
        if (a === b || a.ackedAt >= b.sentAt) continue
        compared++
        if (arrivals[b.txn]!.first < arrivals[a.txn]!.first) {
          violations++
          if (sample.length < 5) sample.push(`${b.txn} arrived before ${a.txn} (${a.subject})`)
        }
      }
    }
  }
  return { compared, violations, sample }
}
