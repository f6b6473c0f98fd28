/**
 * Poll delivery client (RFC 8936, SSF §6.1.2): POSTs `{maxEvents, returnImmediately, ack, setErrs}` to
 * the stream's transmitter-minted `endpoint_url` and handles the `{"sets": {jti: SET}, "moreAvailable"}`
 * answer (RFC 8936 §2.2–2.5).
 *
 * - Long polling by default (`returnImmediately: false`): the transmitter holds the request until a SET
 *   is available; the client polls again at once.
 * - Each SET is verified (`receiver.receive`) and handed to `onEvent`; its `jti` is acknowledged in the
 *   next request only after the handler succeeded. A SET that fails verification goes in `setErrs` with
 *   its RFC 8935 code (RFC 8936 §2.4.4); a handler that keeps failing after `handlerAttempts` tries puts
 *   it in `setErrs` too. A transient failure (a `ReceiverError` without `setErr`: the transmitter's keys
 *   unreachable, a replay or revocation store down) leaves the SET unacknowledged, so the transmitter
 *   hands it out again. A SET already processed (redelivered because an ack was lost) is acknowledged
 *   again without running the handler.
 * - While the transmitter is unreachable or failing (network errors, 5xx, 429, invalid answers), the
 *   client backs off exponentially with jitter, honouring `Retry-After`.
 * - `stop()` or the `AbortSignal` given to `start()` aborts the poll in flight at once; pending acks
 *   and errors are then flushed with one acknowledge-only request (`maxEvents: 0`).
 *
 * @module
 */
import { checkUrl } from './discovery.js'
import { ReceiverError } from './errors.js'
import {
  bearerHeader,
  httpRequest,
  isObject,
  parseJson,
  safeUrl,
  transmitterHttpError,
} from './http.js'
import type { Receiver, SetHandler } from './receiver.js'
import { DELIVERY_METHODS, type StreamConfiguration, type TokenSource } from './types.js'

/** Options of {@link createPollClient}. */
export interface PollClientOptions {
  receiver: Receiver
  /** The stream's poll URL (`delivery.endpoint_url`), or its configuration. */
  endpoint: string | StreamConfiguration
  /** The receiver's bearer token (or a function returning a fresh one). */
  token: TokenSource
  /** Runs for each new verified SET; the SET is acknowledged after it returns. */
  onEvent: SetHandler
  /**
   * `maxEvents` of each poll.
   * @defaultValue 100
   */
  maxEvents?: number
  /**
   * Short polling instead of long polling.
   * @defaultValue false
   */
  returnImmediately?: boolean
  /**
   * With short polling: the wait after a poll that returned nothing.
   * @defaultValue 1000
   */
  idleDelayMs?: number
  /**
   * Timeout of a poll request; longer than the transmitter holds a long poll.
   * @defaultValue 60000
   */
  requestTimeoutMs?: number
  /** Backoff while the transmitter is unreachable or failing. */
  backoff?: {
    /** @defaultValue 250 */
    initialMs?: number
    /** @defaultValue 30000 */
    maxMs?: number
  }
  /**
   * Tries of `onEvent` per SET before it is reported in `setErrs`.
   * @defaultValue 3
   */
  handlerAttempts?: number
  /**
   * Told about every failure (poll errors, refused SETs); never throws into the loop. For a failed poll,
   * `retryInMs` is the backoff before the next one.
   */
  onError?: (error: unknown, info: { retryInMs?: number }) => void
}

/** What one poll did. */
export interface PollResult {
  /** SETs in the answer. */
  received: number
  /** Processed by `onEvent` now. */
  accepted: number
  /** Already processed before (acknowledged again). */
  duplicates: number
  /** Reported in `setErrs`. */
  rejected: number
  moreAvailable: boolean
}

/** The poll client (see {@link createPollClient}). */
export interface PollClient {
  /** Polls until stopped (or `signal` aborts); resolves after the final acknowledgement. */
  start(signal?: AbortSignal): Promise<void>
  /** Stops the loop and waits for it to finish. */
  stop(): Promise<void>
  /** One poll (also sends pending acks and errors). Throws on failure. */
  pollOnce(options?: {
    signal?: AbortSignal
    returnImmediately?: boolean
    maxEvents?: number
  }): Promise<PollResult>
  readonly running: boolean
  /** Acks and errors waiting to be sent. */
  readonly pending: { ack: number; setErrs: number }
}

type SetErrs = Record<string, { err: string; description: string }>

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000
  const date = Date.parse(v)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < min)
    throw new TypeError(`${name}: must be an integer of at least ${min}`)
  return v
}

/**
 * Creates an RFC 8936 poll client.
 *
 * @example
 * ```ts
 * const stream = await streams.ensureStream({ delivery: { method: 'urn:ietf:rfc:8936' } })
 * const poller = createPollClient({ receiver, endpoint: stream, token, onEvent: (set) => index.apply(set) })
 * const stop = new AbortController()
 * const done = poller.start(stop.signal)
 * // later
 * stop.abort(); await done
 * ```
 */
export function createPollClient(options: PollClientOptions): PollClient {
  if (!options || !options.receiver || typeof options.receiver.receive !== 'function')
    throw new TypeError('receiver: required (createReceiver)')
  if (typeof options.onEvent !== 'function') throw new TypeError('onEvent: required')
  if (typeof options.token !== 'string' && typeof options.token !== 'function')
    throw new TypeError('token: required')
  const { receiver } = options
  let url: string
  if (typeof options.endpoint === 'string') url = options.endpoint
  else if (isObject(options.endpoint) && isObject(options.endpoint.delivery)) {
    if (options.endpoint.delivery.method !== DELIVERY_METHODS.poll)
      throw new TypeError(
        `endpoint: the stream does not use poll delivery (${DELIVERY_METHODS.poll})`,
      )
    if (typeof options.endpoint.delivery.endpoint_url !== 'string')
      throw new TypeError('endpoint: the stream has no delivery.endpoint_url')
    url = options.endpoint.delivery.endpoint_url
  } else throw new TypeError('endpoint: the poll URL or the stream configuration')
  checkUrl('endpoint', url, receiver.allowInsecure)
  const maxEvents = positiveInt('maxEvents', options.maxEvents, 100)
  const requestTimeoutMs = positiveInt('requestTimeoutMs', options.requestTimeoutMs, 60_000)
  const idleDelayMs = positiveInt('idleDelayMs', options.idleDelayMs, 1000, 0)
  const initialBackoff = positiveInt('backoff.initialMs', options.backoff?.initialMs, 250)
  const maxBackoff = positiveInt('backoff.maxMs', options.backoff?.maxMs, 30_000)
  const handlerAttempts = positiveInt('handlerAttempts', options.handlerAttempts, 3)
  const shortPoll = options.returnImmediately === true

  const acks = new Set<string>()
  const errs = new Map<string, { err: string; description: string }>()
  let retryAfter: number | undefined
  let loop: Promise<void> | undefined
  let stopper: AbortController | undefined

  const report = (error: unknown, info: { retryInMs?: number } = {}) => {
    try {
      options.onError?.(error, info)
    } catch {
      // never into the loop
    }
  }

  /** Verifies and handles one SET; records the ack or error. */
  async function handle(
    jti: string,
    compact: unknown,
    signal: AbortSignal,
  ): Promise<'accepted' | 'duplicate' | 'rejected' | 'retry'> {
    if (typeof compact !== 'string') {
      errs.set(jti, { err: 'invalid_request', description: 'the SET is not a string' })
      return 'rejected'
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await receiver.receive(compact, async (set) => {
          if (set.jti !== jti)
            throw new ReceiverError(
              'ERR_SET_MALFORMED',
              'the SET\'s jti differs from its key in "sets"',
            )
          await options.onEvent(set)
        })
        acks.add(jti)
        return result.status === 'duplicate' ? 'duplicate' : 'accepted'
      } catch (error) {
        report(error)
        if (error instanceof ReceiverError && error.setErr) {
          errs.set(jti, { err: error.setErr, description: error.message })
          return 'rejected'
        }
        // Transient (keys or metadata unreachable, a store down): leave it unacknowledged for redelivery.
        if (error instanceof ReceiverError) return 'retry'
        if (attempt >= handlerAttempts || signal.aborted) {
          if (signal.aborted) return 'retry'
          const failed = new ReceiverError(
            'ERR_SET_PROCESSING_FAILED',
            'the receiver could not process the event',
            { cause: error },
          )
          errs.set(jti, { err: failed.setErr!, description: failed.message })
          return 'rejected'
        }
        await sleep(100 * 2 ** (attempt - 1), signal)
      }
    }
  }

  async function send(
    body: Record<string, unknown>,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<{ sets: Record<string, unknown>; moreAvailable: boolean }> {
    const sentAcks = [...acks]
    const sentErrs: SetErrs = Object.fromEntries(errs)
    const res = await httpRequest(
      url,
      {
        method: 'POST',
        headers: { authorization: await bearerHeader(options.token) },
        json: {
          ...body,
          ...(sentAcks.length > 0 ? { ack: sentAcks } : {}),
          ...(errs.size > 0 ? { setErrs: sentErrs } : {}),
        },
        signal,
        timeoutMs,
      },
      receiver.http,
    )
    if (res.status !== 200) {
      retryAfter = retryAfterMs(res.headers['retry-after'])
      if (res.status === 400) {
        // The transmitter refused our request; do not resend the same acks and errors forever (the
        // SETs are redelivered and acknowledged again).
        for (const jti of sentAcks) acks.delete(jti)
        for (const jti of Object.keys(sentErrs)) errs.delete(jti)
      }
      throw transmitterHttpError(`poll ${safeUrl(url)}`, res)
    }
    const parsed = parseJson(res.text)
    if (
      !isObject(parsed) ||
      !isObject(parsed.sets) ||
      (parsed.moreAvailable !== undefined && typeof parsed.moreAvailable !== 'boolean')
    ) {
      throw new ReceiverError(
        'ERR_TRANSMITTER_RESPONSE_INVALID',
        `poll ${safeUrl(url)}: the answer is not {"sets": {...}}`,
      )
    }
    for (const jti of sentAcks) acks.delete(jti)
    for (const jti of Object.keys(sentErrs)) errs.delete(jti)
    return { sets: parsed.sets, moreAvailable: parsed.moreAvailable === true }
  }

  async function pollOnce(
    opts: { signal?: AbortSignal; returnImmediately?: boolean; maxEvents?: number } = {},
  ): Promise<PollResult> {
    const signal = opts.signal ?? new AbortController().signal
    const immediate = opts.returnImmediately ?? shortPoll
    const { sets, moreAvailable } = await send(
      { maxEvents: opts.maxEvents ?? maxEvents, returnImmediately: immediate },
      signal,
      requestTimeoutMs,
    )
    const result: PollResult = {
      received: 0,
      accepted: 0,
      duplicates: 0,
      rejected: 0,
      moreAvailable,
    }
    // In the order the transmitter gave them: SETs about one subject stay in order.
    for (const [jti, compact] of Object.entries(sets)) {
      result.received++
      const outcome = await handle(jti, compact, signal)
      if (outcome === 'accepted') result.accepted++
      else if (outcome === 'duplicate') result.duplicates++
      else if (outcome === 'rejected') result.rejected++
    }
    return result
  }

  async function flush(): Promise<void> {
    if (acks.size === 0 && errs.size === 0) return
    try {
      await send(
        { maxEvents: 0, returnImmediately: true },
        undefined,
        Math.min(5000, requestTimeoutMs),
      )
    } catch (error) {
      report(error)
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      try {
        const result = await pollOnce({ signal })
        failures = 0
        if (shortPoll && result.received === 0 && !result.moreAvailable)
          await sleep(idleDelayMs, signal)
      } catch (error) {
        if (signal.aborted) break
        failures++
        const exp = Math.min(maxBackoff, initialBackoff * 2 ** Math.min(failures - 1, 20))
        const jittered = Math.round(exp * (0.8 + Math.random() * 0.4))
        // Retry-After is honoured, up to five minutes (or the backoff maximum, if larger).
        const wait = Math.min(Math.max(jittered, retryAfter ?? 0), Math.max(maxBackoff, 300_000))
        retryAfter = undefined
        report(error, { retryInMs: wait })
        await sleep(wait, signal)
      }
    }
    await flush()
  }

  const client: PollClient = {
    get running() {
      return loop !== undefined
    },
    get pending() {
      return { ack: acks.size, setErrs: errs.size }
    },
    start(signal) {
      if (loop) throw new TypeError('the poll client is already running')
      const controller = new AbortController()
      stopper = controller
      if (signal) {
        if (signal.aborted) controller.abort(signal.reason)
        else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true })
      }
      loop = run(controller.signal).finally(() => {
        loop = undefined
        stopper = undefined
      })
      return loop
    },
    async stop() {
      const running = loop
      stopper?.abort()
      await running
    },
    pollOnce,
  }
  return client
}
