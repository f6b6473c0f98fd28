/** The body of `GET /admin/overview`; a type only, so the console's front end shares it. */
export interface Overview {
  at: number
  ready: boolean
  checks: Record<string, { ok: boolean; error?: string; latency_ms?: number }>
  ingested_total: number
  minted_total: number
  delivered_total: number
  failed_total: number
  retries_total: number
  outbox_sets: number
  dead_letters: number
  streams: Record<string, number>
  /** Event acknowledged → receiver confirmed; undefined quantiles before the first delivery. */
  delivery_latency_ms: { count: number; p50?: number; p99?: number }
}
