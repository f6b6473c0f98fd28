/**
 * Events the transmitter sends about a stream itself: verification (SSF §8.1.4.1) and stream-updated
 * (SSF §8.1.5). Their subject is the stream's implicit self-subject `{"format":"opaque","id":<stream_id>}`.
 * They go in the control lane of the outbox: ahead of any backlog, and delivered even while paused
 * (and while a push stream backs off: the notifier ends the backoff).
 */
import { randomUUID } from 'node:crypto'
import type { KeyStore } from '../keys/keystore.js'
import { signSet } from '../keys/sign-set.js'
import type { Outbox } from '../delivery/outbox.js'
import { randomId } from '../lib/ids.js'
import { subjectKey } from '../subjects/subject.js'
import { EVENT_URIS } from '../events/catalog.js'
import type { StreamRecord, StreamStatus } from './model.js'

/** The subject every stream implicitly contains (SSF §8.1.3). */
const selfSubject = (stream: StreamRecord) => ({ format: 'opaque' as const, id: stream.stream_id })

export class ControlEvents {
  constructor(
    private readonly issuer: string,
    private readonly keys: KeyStore,
    private readonly outbox: Outbox,
    /** Tells delivery that the stream has something new (push dispatcher or waiting polls). */
    private readonly notify: (stream: StreamRecord) => Promise<void>,
  ) {}

  /** Signs one control SET for the stream (not queued). */
  async sign(
    stream: StreamRecord,
    type: string,
    event: Record<string, unknown>,
    jti = randomId(16),
    txn: string = randomUUID(),
  ): Promise<string> {
    await this.keys.refresh()
    return signSet(this.keys, stream.signing_alg, {
      iss: this.issuer,
      aud: stream.aud,
      jti,
      txn,
      sub_id: selfSubject(stream),
      eventType: type,
      event,
    })
  }

  /** Signs and queues one control SET for the stream; returns its jti. */
  async send(stream: StreamRecord, type: string, event: Record<string, unknown>): Promise<string> {
    const subject = selfSubject(stream)
    const jti = randomId(16)
    const txn = randomUUID()
    const set = await this.sign(stream, type, event, jti, txn)
    await this.outbox.append(stream.stream_id, [
      { jti, set, sk: subjectKey(subject as never), txn, type, lane: 'c', at: Date.now() },
    ])
    await this.notify(stream)
    return jti
  }

  /** Verification event; `state` only when the receiver asked with one (never on unprompted ones). */
  verification(stream: StreamRecord, state: string | undefined): Promise<string> {
    return this.send(stream, EVENT_URIS.verification, state === undefined ? {} : { state })
  }

  streamUpdated(stream: StreamRecord, status: StreamStatus, reason: string): Promise<string> {
    return this.send(stream, EVENT_URIS.streamUpdated, { status, reason })
  }
}
