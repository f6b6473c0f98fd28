/**
 * Admission control of `POST /events`: while this process's event loop lags by more than
 * SSF_BROKER_ADMISSION_LAG_MS (smoothed, lib/loop-lag.ts), a request that holds no priority event type is
 * refused with 503 `overloaded` and `Retry-After`, before its events are validated or stored (a malformed
 * envelope is still a 400). The emitter keeps its events until the broker can take them, instead of the
 * broker accepting work it will deliver seconds later while every other stream, and every revocation,
 * waits behind it in the same loop.
 *
 * Only work the broker is already far behind on is refused: a request whose events route to streams with
 * seconds of work waiting here, in the fan-out or in a push stream's queue (FanOut.busy). An event for a
 * stream that keeps up is taken even then, so a flood for some streams does not shut out the others. A
 * request with at least one priority event is always taken: revocations must get through a flood. Nothing
 * of a refused request is acknowledged or stored, so a retry is safe.
 */
import { BrokerError } from '../errors.js'
import { resolveEventTypeUri } from '../events/priority.js'
import type { LoopLag } from '../lib/loop-lag.js'

/** Long enough for a backlog to clear a little, short enough that an emitter is not held up for long. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1

export interface AdmissionOptions {
  lag: Pick<LoopLag, 'ms'>
  /** Smoothed lag (ms) beyond which normal-priority requests are refused; 0: never refuse. */
  limitMs: number
  priorityTypes: ReadonlySet<string>
  /** Whether events of these types (URIs) add to work this process is behind on (FanOut.busy). */
  busy: (types: string[]) => boolean
  /** Called with the number of events of each refused request (metrics). */
  onShed?: (events: number) => void
}

export class Admission {
  constructor(private readonly o: AdmissionOptions) {}

  /**
   * Throws `overloaded` when the request must wait; `events` are its events as posted (validate.ts
   * postedEvents: the envelope checked, each event not yet).
   */
  check(events: readonly unknown[]): void {
    if (this.o.limitMs === 0) return
    const lag = this.o.lag.ms
    if (lag <= this.o.limitMs) return
    const types: string[] = []
    for (const e of events) {
      const uri = typeUri(e)
      if (uri === undefined) continue
      if (this.o.priorityTypes.has(uri)) return
      types.push(uri)
    }
    if (!this.o.busy(types)) return
    this.o.onShed?.(events.length)
    throw new BrokerError(
      'overloaded',
      `the broker is at capacity (event loop ${Math.round(lag)} ms behind); the events were not acknowledged, retry after ${OVERLOADED_RETRY_AFTER_SECONDS} s`,
      { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS },
    )
  }
}

/** The event-type URI of an event as posted, if it names a known type (validation reports the rest). */
function typeUri(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return undefined
  const type = (event as { type?: unknown }).type
  return typeof type === 'string' ? resolveEventTypeUri(type) : undefined
}
