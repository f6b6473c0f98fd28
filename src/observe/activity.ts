/**
 * What this broker process is doing, as typed in-process events: the delivery path reports here and
 * observers (metrics, logs, the admin live feed) listen. Emitting costs nothing when nobody listens, and
 * a listener that throws never disturbs delivery. Events carry identifiers only, never a SET or a token.
 */
export interface ActivityEvents {
  /** Events acknowledged to an emitter (durable). */
  ingested: { txn: string; type: string; event_id: string; at: number }
  /** A `POST /events` request was refused while the broker was at capacity (ingest/admission.ts). */
  shed: { events: number; at: number }
  /** A SET was signed and queued for a stream. */
  minted: {
    txn: string
    stream_id: string
    jti: string
    type: string
    at: number
    priority: boolean
  }
  /** A push receiver answered 2xx, or a poll receiver acknowledged. `latency_ms`: from the ingest acknowledgement. */
  delivered: {
    txn: string
    stream_id: string
    jti: string
    at: number
    latency_ms: number
    method: 'push' | 'poll'
    status?: number
    push_ms?: number
  }
  /** A push attempt failed: `outcome` retry (will be tried again), failed or dead_letter (given up). */
  failed: {
    txn: string
    stream_id: string
    jti: string
    at: number
    outcome: 'retry' | 'failed' | 'dead_letter'
    status?: number
    error: string
    push_ms?: number
  }
  /** SETs dropped because a stream's backlog exceeded SSF_BROKER_STREAM_BACKLOG_MAX. */
  dropped: { stream_id: string; count: number; at: number }
  /** An event received from an upstream transmitter was ingested. */
  upstream: { upstream_id: string; at: number }
}

export type ActivityName = keyof ActivityEvents
type Listener<K extends ActivityName> = (event: ActivityEvents[K]) => void

export class Activity {
  #listeners: { [K in ActivityName]?: Set<Listener<K>> } = {}

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends ActivityName>(name: K, listener: Listener<K>): () => void {
    let set = this.#listeners[name] as Set<Listener<K>> | undefined
    if (!set) (this.#listeners as Record<string, unknown>)[name] = set = new Set()
    set.add(listener)
    return () => void set!.delete(listener)
  }

  /** Whether anyone listens (lets callers skip building events). */
  has(name: ActivityName): boolean {
    return (this.#listeners[name]?.size ?? 0) > 0
  }

  emit<K extends ActivityName>(name: K, event: ActivityEvents[K]): void {
    const set = this.#listeners[name] as Set<Listener<K>> | undefined
    if (!set) return
    for (const listener of set) {
      try {
        listener(event)
      } catch {
        // an observer's bug must not break delivery
      }
    }
  }
}
