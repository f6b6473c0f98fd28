/**
 * The Redis deployments end-to-end tests run against: one plain Redis, and a 3-master Redis Cluster.
 *
 *   for (const backend of backends()) {
 *     describe(backend.name, () => {
 *       let store: BackendStore
 *       before(async () => (store = await backend.start()))
 *       after(() => store.stop())
 *       test('...', async () => {
 *         const broker = await startTestBroker(store)              // in this process
 *         const child = await spawnBroker(testEnvFor(store, await freePort()))  // or as `node dist/main.js`
 *       })
 *     })
 *   }
 *
 * `SSF_TEST_BACKENDS=redis` (or `cluster`) narrows the list, e.g. to reproduce a failure on one of them.
 */
import type { Cluster, Redis } from 'ioredis'
import { testEnv } from './broker.js'
import { startTestRedis } from './redis.js'
import { startTestRedisCluster } from './redis-cluster.js'

export type BackendName = 'redis' | 'cluster'

export interface BackendStore {
  name: BackendName
  /** How the broker reaches it: SSF_BROKER_REDIS_URL, or SSF_BROKER_REDIS_CLUSTER_NODES. */
  env: Record<string, string>
  /** A client for inspecting what the broker wrote (a Cluster client on the cluster). */
  client: Redis | Cluster
  /** Freezes every node (SIGSTOP) until `resume()`: a Redis that does not answer. */
  pause(): void
  resume(): void
  /** Empties every node. */
  flush(): Promise<void>
  /** Calls per command so far (INFO commandstats, summed over the nodes). */
  commandStats(): Promise<Map<string, number>>
  stop(): Promise<void>
}

export interface Backend {
  name: BackendName
  start(): Promise<BackendStore>
}

function parseCommandStats(info: string, into = new Map<string, number>()): Map<string, number> {
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) into.set(m[1]!, (into.get(m[1]!) ?? 0) + Number(m[2]))
  return into
}

const plain: Backend = {
  name: 'redis',
  async start() {
    const redis = await startTestRedis()
    return {
      name: 'redis',
      env: { SSF_BROKER_REDIS_URL: redis.url },
      client: redis.client,
      pause: () => redis.pause(),
      resume: () => redis.resume(),
      flush: async () => void (await redis.client.flushall()),
      commandStats: async () => parseCommandStats(await redis.client.info('commandstats')),
      stop: () => redis.stop(),
    }
  },
}

const cluster: Backend = {
  name: 'cluster',
  async start() {
    const c = await startTestRedisCluster()
    return {
      name: 'cluster',
      env: { SSF_BROKER_REDIS_CLUSTER_NODES: c.nodes },
      client: c.client,
      pause: () => c.pause(),
      resume: () => c.resume(),
      flush: () => c.flushAll(),
      commandStats: () => c.commandStats(),
      stop: () => c.stop(),
    }
  },
}

export function backends(): Backend[] {
  const all = [plain, cluster]
  const only = process.env.SSF_TEST_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean)
  if (!only || only.length === 0) return all
  const unknown = only.filter((n) => !all.some((b) => b.name === n))
  if (unknown.length > 0) throw new Error(`SSF_TEST_BACKENDS: unknown backend ${unknown.join(', ')} (redis, cluster)`)
  return all.filter((b) => only.includes(b.name))
}

/** `testEnv` for a backend: the same test settings, with the backend's way of reaching Redis. */
export function testEnvFor(store: Pick<BackendStore, 'env'>, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return testEnv(store, port, extra)
}
