#!/usr/bin/env node
/**
 * Audit chain verification: `node dist/audit/verify-cli.js`
 *
 * Reads SSF_BROKER_REDIS_URL or SSF_BROKER_REDIS_CLUSTER_NODES (neither: the embedded Redis socket under SSF_BROKER_DATA_DIR, default
 * ./.ssf-broker, as the broker uses it) and SSF_BROKER_REDIS_PREFIX (default `ssf`). Prints
 * `ok: N records` (exit 0), or the first broken link (exit 1: the trail was tampered with). Exit 2: Redis
 * could not be reached.
 */
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import { redisOptionsFromUrl } from '../redis/connection.js'
import { createKeyspace } from '../redis/keyspace.js'
import { AuditLog } from './log.js'

export async function runVerify(
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const url =
    env.SSF_BROKER_REDIS_URL ||
    `unix://${join(resolve(env.SSF_BROKER_DATA_DIR || './.ssf-broker'), 'redis.sock')}`
  const clusterNodes = env.SSF_BROKER_REDIS_CLUSTER_NODES?.split(',').map((n) => ({
    host: n.slice(0, n.lastIndexOf(':')),
    port: Number(n.slice(n.lastIndexOf(':') + 1)),
  }))
  let options
  try {
    options = redisOptionsFromUrl(url)
  } catch {
    out(`error: SSF_BROKER_REDIS_URL is not a Redis URL`)
    return 2
  }
  const redis = clusterNodes
    ? (new Cluster(clusterNodes, {
        lazyConnect: true,
        redisOptions: { maxRetriesPerRequest: 1, connectionName: 'ssf-broker:audit-verify' },
        clusterRetryStrategy: () => null,
      }) as unknown as Redis)
    : new Redis({
        ...options,
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
        connectionName: 'ssf-broker:audit-verify',
      })
  redis.on('error', () => {})
  try {
    try {
      await redis.connect()
    } catch (err) {
      out(
        `error: cannot reach Redis (${env.SSF_BROKER_REDIS_URL ? 'SSF_BROKER_REDIS_URL' : 'embedded socket'}): ${(err as Error).message}`,
      )
      return 2
    }
    // Retention is irrelevant to verification; prune() is never called here.
    const result = await new AuditLog(redis, {
      retentionSeconds: 1,
      keyspace: createKeyspace(env.SSF_BROKER_REDIS_PREFIX || 'ssf'),
    }).verify()
    if (result.ok) {
      out(
        `ok: ${result.checked} records${result.anchor.seq > 0 ? ` (from record ${result.anchor.seq + 1}; older ones removed by retention)` : ''}; head ${result.head.seq}:${result.head.hash}`,
      )
      return 0
    }
    out(
      `broken at record ${result.brokenAt}: ${result.reason} (${result.checked} records verified before it)`,
    )
    return 1
  } finally {
    redis.disconnect()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runVerify(process.env, (line) => process.stdout.write(`${line}\n`)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`error: ${(err as Error).message}\n`)
      process.exit(2)
    },
  )
}
