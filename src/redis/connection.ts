/**
 * Redis connections: one Redis (URL) or a Redis Cluster (seed nodes). Commands are queued across a
 * reconnect (`maxRetriesPerRequest: null`) but bounded by a command timeout.
 *
 * A Cluster client is typed as `Redis`: the broker uses only commands both share, and every multi-key
 * script or transaction touches one hash slot (src/redis/keyspace.ts), which is what Cluster requires.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../lib/log.js'

/** Where the broker's Redis is: a URL, or a cluster's seed nodes. */
export type RedisTarget = { url: string } | { clusterNodes: { host: string; port: number }[] }

export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith('unix://')) return { path: url.slice('unix://'.length) }
  const u = new URL(url)
  const opts: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
  }
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

export function connectRedis(target: RedisTarget | string, name: string): Redis {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target
  // Auto-pipelining: commands issued in the same tick share one socket write (per node on a cluster).
  const common = {
    maxRetriesPerRequest: null,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectionName: `ssf-broker:${name}`,
  }
  let client: Redis
  if ('url' in t) {
    client = new Redis({ ...redisOptionsFromUrl(t.url), ...common, enableAutoPipelining: true })
  } else {
    client = new Cluster(t.clusterNodes, {
      enableAutoPipelining: true,
      redisOptions: common,
      slotsRefreshTimeout: 2000,
    }) as unknown as Redis
  }
  client.on('error', () => {}) // reconnects on its own; callers see failures on their commands
  return client
}

/** Whether a client is a Redis Cluster client. */
export const isCluster = (redis: Redis): boolean => (redis as unknown) instanceof Cluster

export { isRedisUnavailable } from './errors.js'

/** Logs one line when the connection to Redis is lost and one when it is back: not one per command. */
export function logConnectionOutages(redis: Redis, log: Pick<Logger, 'warn' | 'info'>): void {
  let downSince: number | undefined
  redis.on('error', (err: Error) => {
    if (downSince !== undefined) return
    downSince = Date.now()
    log.warn('Redis connection lost; retrying', { error: err })
  })
  redis.on('ready', () => {
    if (downSince === undefined) return
    log.info('Redis connection restored', { down_ms: Date.now() - downSince })
    downSince = undefined
  })
}
