/**
 * Which errors mean "Redis could not be reached or did not answer", so the request may be retried and
 * nothing it asked for was acknowledged. Classified by error class and code, the way ioredis raises them:
 *
 * - `AbortError` (and its subclasses `MaxRetriesPerRequestError`, `InterruptError`): commands aborted
 *   because the connection closed ("Command aborted due to connection close") or retries ran out.
 * - `ClusterAllFailedError`: no cluster node answered.
 * - `ReplyError` whose code is `CLUSTERDOWN`, `TRYAGAIN`, `LOADING` (a restarted server still reading its
 *   AOF), `MASTERDOWN` or `READONLY` (a failover in progress).
 * - System errors by `code`: ECONNREFUSED, ENOENT (unix socket gone), ETIMEDOUT, ECONNRESET, EPIPE.
 * - ioredis's plain `Error`s that carry no class of their own (the command timeout, "Connection is closed.",
 *   and the "isn't writeable/ready" refusals of a client without an offline queue): matched by their exact,
 *   constant message, the only thing ioredis gives them.
 *
 * The `cause` chain and `AggregateError` members are followed, since queue libraries wrap these errors.
 */
import { ReplyError } from 'ioredis'

const UNAVAILABLE_CLASSES = new Set([
  'AbortError',
  'MaxRetriesPerRequestError',
  'InterruptError',
  'ClusterAllFailedError',
])
const UNAVAILABLE_REPLY_CODES = new Set([
  'CLUSTERDOWN',
  'TRYAGAIN',
  'LOADING',
  'MASTERDOWN',
  'READONLY',
])
const UNAVAILABLE_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
])
// ioredis: Command.js, utils CONNECTION_CLOSED_ERROR_MSG, Redis.js and cluster/index.js sendCommand.
const UNCLASSED_IOREDIS_MESSAGES = new Set([
  'Command timed out',
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
])

function classOf(err: Error): string {
  // redis-errors classes report their constructor's name; walk the prototype chain for subclasses.
  for (
    let proto: object | null = Object.getPrototypeOf(err);
    proto && proto !== Error.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name
    if (name && UNAVAILABLE_CLASSES.has(name)) return name
  }
  return err.name
}

function replyCode(err: Error): string | undefined {
  if (!(err instanceof (ReplyError as new (message: string) => Error))) return undefined
  return /^[A-Z]+/.exec(err.message)?.[0]
}

/** Whether `err` (or what it wraps) means Redis was unavailable. */
export function isRedisUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>()
  const pending: unknown[] = [err]
  while (pending.length > 0) {
    const current = pending.pop()
    if (!(current instanceof Error) || seen.has(current)) continue
    seen.add(current)
    if (UNAVAILABLE_CLASSES.has(classOf(current))) return true
    const code = (current as NodeJS.ErrnoException).code
    if (typeof code === 'string' && UNAVAILABLE_SYSTEM_CODES.has(code)) return true
    const reply = replyCode(current)
    if (reply !== undefined && UNAVAILABLE_REPLY_CODES.has(reply)) return true
    if (current.constructor === Error && UNCLASSED_IOREDIS_MESSAGES.has(current.message))
      return true
    if (current instanceof AggregateError) pending.push(...current.errors)
    if (current.cause !== undefined) pending.push(current.cause)
  }
  return false
}
