/**
 * The one outbound HTTP path to upstream transmitters (discovery, JWKS, stream management, polls, token
 * requests). It carries the push delivery's SSRF guard: the URL check (scheme, credentials, IP literals)
 * before every request, and the guarded DNS lookup at connect time, so neither an issuer nor the
 * endpoints its metadata names can reach loopback, private or link-local addresses unless
 * SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH is on.
 */
import { Agent, type Dispatcher } from 'undici'
import { checkPushUrl, guardedLookup } from '../delivery/address-guard.js'

export interface OutboundOptions {
  allowPrivate: boolean
  connectTimeoutMs: number
}

export interface Outbound {
  dispatcher: Dispatcher
  /** What is wrong with a URL the broker is about to call, or undefined when it may be called. */
  check(url: string): string | undefined
  close(): Promise<void>
}

export class AddressNotAllowedError extends Error {
  readonly code = 'ERR_SSRF_BLOCKED'
}

export function createOutbound(options: OutboundOptions): Outbound {
  const agent = new Agent({
    connections: 16,
    connect: { timeout: options.connectTimeoutMs, lookup: guardedLookup(options.allowPrivate) },
  })
  const check = (url: string) => checkPushUrl(url, options.allowPrivate)
  const guard: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
    const origin = typeof opts.origin === 'string' ? opts.origin : (opts.origin?.toString() ?? '')
    const problem = check(origin + (opts.path ?? '/'))
    if (problem) throw new AddressNotAllowedError(`address not allowed: ${problem}`)
    return dispatch(opts, handler)
  }
  return { dispatcher: agent.compose(guard), check, close: () => agent.close() }
}
