/**
 * A verified upstream SET becomes an ingest event through the same validation `POST /events` applies:
 * the event type must be one the broker ingests, the subject and the payload must pass the catalog's
 * checks. The upstream's `txn` is kept, so the re-signed SETs correlate with the upstream's own.
 */
import { ReceiverError } from '../receiver/errors.js'
import type { VerifiedSet } from '../receiver/types.js'
import { BrokerError } from '../errors.js'
import { validateEventsBody, type ValidEvent } from '../ingest/validate.js'

export function eventFromSet(set: VerifiedSet): ValidEvent {
  try {
    const { events } = validateEventsBody({
      type: set.type,
      subject: set.subject,
      event: set.event,
      ...(set.txn !== undefined ? { txn: set.txn } : {}),
    })
    return events[0]!
  } catch (error) {
    if (error instanceof BrokerError)
      throw new ReceiverError(
        'ERR_SET_CLAIM_INVALID',
        `the event is not accepted by this broker: ${error.message}`,
      )
    throw error
  }
}
