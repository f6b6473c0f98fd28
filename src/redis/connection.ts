/**
 * Redis connections. Commands are queued across a reconnect (`maxRetriesPerRequest: null`) but bounded by
 * a command timeout.
 */
import { Redis, type RedisOptions } from 'ioredis'

export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith('unix://')) return { path: url.slice('unix://'.length) }
  const u = new URL(url)
  const opts: RedisOptions = { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 6379 }
  if (u.username) opts.username = decodeURIComponent(u.username)
  if (u.password) opts.password = decodeURIComponent(u.password)
  const db = u.pathname.replace('/', '')
  if (db) opts.db = Number(db)
  if (u.protocol === 'rediss:') opts.tls = {}
  return opts
}

/**
 * A command Redis has not answered within this time fails (also while disconnected), so an HTTP request
 * gets a 503 instead of hanging while Redis is unreachable; background loops log and retry.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5000

export function connectRedis(url: string, name: string): Redis {
  // Auto-pipelining: commands issued in the same tick share one socket write. The hot paths issue many
  // small independent commands; one write per command was a fifth of the broker's CPU time.
  const client = new Redis({ ...redisOptionsFromUrl(url), maxRetriesPerRequest: null, enableAutoPipelining: true, commandTimeout: REDIS_COMMAND_TIMEOUT_MS, connectionName: `ssf-broker:${name}` })
  client.on('error', () => {}) // reconnects on its own; callers see failures on their commands
  return client
}

/** Whether an error means Redis could not be reached or did not answer (the request may be retried). */
export { isRedisUnavailable } from './errors.js'
