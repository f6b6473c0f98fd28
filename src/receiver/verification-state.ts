/**
 * Verification events (SSF §8.1.4): a receiver that triggers a verification with a `state` expects that
 * `state` echoed in the verification SET, and answers `invalid_state` (push, RFC 8935) or puts it in
 * `setErrs` (poll, RFC 8936 §2.4.4) when a `state` it did not ask for arrives. Verification SETs without
 * `state` were sent by the transmitter unprompted and are accepted.
 *
 * Expected states live in this process. A fleet where one process triggers and another receives supplies
 * its own check (`verificationState` option), e.g. backed by Redis.
 *
 * @module
 */
import { ReceiverError } from './errors.js'
import { SSF_EVENT_TYPES, type VerifiedSet } from './types.js'

/** Decides whether a received verification `state` is one this receiver asked for. */
export type VerificationStateCheck = (state: string, set: VerifiedSet) => boolean | Promise<boolean>

interface Waiter {
  resolve(set: VerifiedSet): void
  reject(error: unknown): void
}

export class VerificationTracker {
  readonly #waiters = new Map<string, Waiter>()

  constructor(private readonly custom: VerificationStateCheck | undefined) {}

  /** Resolves with the verification SET carrying `state`; rejects after `timeoutMs` or on abort. */
  expect(
    state: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<VerifiedSet> {
    if (typeof state !== 'string' || state === '')
      throw new TypeError('state: must be a non-empty string')
    if (this.#waiters.has(state)) throw new TypeError('state: already expected')
    const timeoutMs = options.timeoutMs ?? 30_000
    return new Promise<VerifiedSet>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.#waiters.delete(state)
      }
      const onAbort = () => {
        cleanup()
        reject(options.signal?.reason)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(
          new ReceiverError(
            'ERR_VERIFICATION_TIMEOUT',
            `no verification event with the expected state arrived within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      timer.unref?.()
      if (options.signal?.aborted) return onAbort()
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.set(state, {
        resolve: (set) => {
          cleanup()
          resolve(set)
        },
        reject,
      })
    })
  }

  /** Throws `ERR_SET_INVALID_STATE` for a verification SET whose `state` was not asked for. */
  async check(set: VerifiedSet): Promise<void> {
    if (set.type !== SSF_EVENT_TYPES.verification) return
    const state = set.event.state
    if (state === undefined) return
    if (typeof state !== 'string')
      throw new ReceiverError('ERR_SET_INVALID_STATE', 'state must be a string')
    if (this.#waiters.has(state)) return
    if (this.custom && (await this.custom(state, set))) return
    throw new ReceiverError(
      'ERR_SET_INVALID_STATE',
      'the verification state does not match any verification this receiver requested',
    )
  }

  /** Resolves the waiter for a verification SET once it was processed. */
  settle(set: VerifiedSet): void {
    if (set.type !== SSF_EVENT_TYPES.verification || typeof set.event.state !== 'string') return
    this.#waiters.get(set.event.state)?.resolve(set)
  }
}
