/** Messages between the benchmark and its receiver process (receiver-proc.ts). */

export interface PollStartOptions {
  /** Recorded as the stream key of every SET this poller receives. */
  key: string
  url: string
  token: string
  maxEvents: number
  /** Upper bound on the loop's life, whatever happens. */
  maxMs: number
}

export interface CollectOptions {
  /** Only SETs whose `txn` starts with this count; others (control events, earlier scenarios) are `other`. */
  txnPrefix: string
  expectKeys?: string[]
  expectTxns?: string[]
  /** Per-txn arrival summary (count, first and last arrival). */
  byTxn?: boolean
}

export interface CollectResult {
  matched: number
  distinct: number
  duplicates: number
  extraPerPair: number
  other: number
  missing: number
  missingSample: string[]
  unexpected: number
  failures: number
  failureSample: string[]
  pollErrors: number
  pollErrorSample: string[]
  first: number | null
  last: number | null
  byTxn?: Record<string, { n: number; first: number; last: number }>
}

export interface ReceiverStats {
  /** Verified SETs recorded since the last reset. */
  sets: number
  failures: number
  baseline: number
  pollErrors: number
  now: number
}

export type ReceiverCommand =
  | { cmd: 'listen'; ports: number }
  | { cmd: 'config'; issuer: string; audiences: string[]; jwksUrl: string }
  | { cmd: 'now' }
  | { cmd: 'stats' }
  | { cmd: 'reset' }
  | { cmd: 'collect'; options: CollectOptions }
  | { cmd: 'pollStart'; options: PollStartOptions }
  | { cmd: 'pollStop'; key: string }
  /** Sink `key` answers `status` (without verifying or recording) until called again with null. */
  | { cmd: 'sinkStatus'; key: string; status: number | null }
  | { cmd: 'stop' }

/** What a sink answered while told to answer a fixed status: how many requests, first and last (receiver clock). */
export interface OutageCounts {
  refused: number
  first: number | null
  last: number | null
}
