/**
 * Structured logs: pino JSON lines on stderr, one per event, `{"level":"info","time":"…","msg":…,…}`.
 * Callers pass identifiers, never secrets or key material; as a second line of defence, fields named
 * like credentials are redacted (REDACT_PATHS). An Error in any field is written as an object with its
 * `type`, `message` and `stack`, never as free multi-line text.
 */
import { pino, stdSerializers, type DestinationStream } from 'pino'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  /** A logger that adds these fields to every line (e.g. a request id). */
  child?(bindings: Record<string, unknown>): Logger
}

const SECRET_NAMES = [
  'authorization',
  'Authorization',
  'token',
  'access_token',
  'refresh_token',
  'admin_token',
  'secret',
  'client_secret',
  'password',
  'authorization_header',
  'cookie',
]

/** Credential-like fields, at the top level and up to two levels down (e.g. `headers.authorization`). */
export const REDACT_PATHS: string[] = SECRET_NAMES.flatMap((name) => [
  name,
  `*.${name}`,
  `*.*.${name}`,
])

export const REDACTED = '[redacted]'

function serialise(
  fields: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (!fields) return undefined
  let out: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      out ??= { ...fields }
      out[key] = stdSerializers.err(value)
    }
  }
  return out ?? fields
}

/** `destination` defaults to stderr, written synchronously so nothing is lost at process.exit. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const base = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        err: stdSerializers.err,
        error: (v: unknown) => (v instanceof Error ? stdSerializers.err(v) : v),
      },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  )
  return wrap(base)
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields) => p.debug(serialise(fields) ?? {}, msg),
    info: (msg, fields) => p.info(serialise(fields) ?? {}, msg),
    warn: (msg, fields) => p.warn(serialise(fields) ?? {}, msg),
    error: (msg, fields) => p.error(serialise(fields) ?? {}, msg),
    child: (bindings) => wrap(p.child(bindings)),
  }
}

/** `log.child(bindings)` when the logger supports it, else the logger itself. */
export function childLogger(log: Logger, bindings: Record<string, unknown>): Logger {
  return log.child ? log.child(bindings) : log
}
