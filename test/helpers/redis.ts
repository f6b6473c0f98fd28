/**
 * A private redis-server for one test file: its own temp directory and unix socket, so tests never touch
 * anyone else's data. Stopped (and its files removed) by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { startTestRedisCluster } from './redis-cluster.js'

export interface TestRedis {
  url: string
  client: Redis
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void
  resume(): void
  stop(): Promise<void>
}

/**
 * With SSF_TEST_REDIS=cluster, end-to-end tests run against a private 3-master Redis Cluster instead:
 * `url` is then `cluster://host:port,...`, which testEnv() turns into SSF_BROKER_REDIS_CLUSTER_NODES.
 */
export const testBackend = process.env.SSF_TEST_REDIS === 'cluster' ? 'cluster' : 'redis'

export async function startTestRedis(): Promise<TestRedis> {
  if (testBackend === 'cluster') {
    const cluster = await startTestRedisCluster()
    return {
      url: `cluster://${cluster.nodes}`,
      client: cluster.client as unknown as Redis,
      pause: () => cluster.pause(),
      resume: () => cluster.resume(),
      stop: () => cluster.stop(),
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'ssf-broker-test-redis-'))
  const socket = join(dir, 'redis.sock')
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  )
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: null })
  client.on('error', () => {})
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await client.connect()
      await client.ping()
      break
    } catch {
      if (Date.now() > deadline) throw new Error('test redis-server did not start')
      client.disconnect()
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    url: `unix://${socket}`,
    client,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT')
      client.disconnect()
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
