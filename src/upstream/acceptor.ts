/**
 * How upstream SETs enter the broker's ingest path: the same path `POST /events` uses, so an upstream
 * event is fanned out, cascaded, prioritised and delivered exactly like a posted one.
 */
import type { ValidEvent } from '../ingest/validate.js'

export interface EventAcceptor {
  /** Makes the events durable (resolves only then) and starts their fan-out; returns them with txn. Throws on Redis unavailability. */
  accept(events: readonly ValidEvent[], clientId: string): Promise<{ txn: string }[]>
}
