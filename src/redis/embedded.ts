/**
 * Embedded mode: with no SSF_BROKER_REDIS_URL the broker runs its own `redis-server` from PATH on a unix
 * socket under the data directory, with AOF persistence and `noeviction`, and stops it on exit.
 *
 * A broker killed with SIGKILL leaves its redis-server running; the next start finds it answering on the
 * socket and adopts it (same data, nothing lost) instead of starting a second one.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { resolve, join } from 'node:path'
import { Redis } from 'ioredis'

export interface EmbeddedRedis {
  url: string
  stop(): Promise<void>
}

export class RedisServerMissingError extends Error {
  constructor() {
    super(
      'redis-server was not found on PATH. Install it (Debian/Ubuntu: `apt-get install redis-server`; ' +
        'macOS: `brew install redis`), or point the broker at an existing Redis with ' +
        'SSF_BROKER_REDIS_URL=redis://host:6379.',
    )
    this.name = 'RedisServerMissingError'
  }
}

async function ping(socket: string): Promise<boolean> {
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

async function shutdown(socket: string): Promise<void> {
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.call('SHUTDOWN').catch(() => {}) // the connection drops as the server exits
  } catch {
    // already gone
  } finally {
    client.disconnect()
  }
}

export async function startEmbeddedRedis(dataDir: string): Promise<EmbeddedRedis> {
  const dir = resolve(dataDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const socket = join(dir, 'redis.sock')
  const url = `unix://${socket}`
  const stop = () => shutdown(socket)
  if (await ping(socket)) return { url, stop }

  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) throw new RedisServerMissingError()
  const child = spawn(
    'redis-server',
    [
      '--port', '0',
      '--unixsocket', socket,
      '--unixsocketperm', '700',
      '--dir', dir,
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      '--save', '',
      '--maxmemory-policy', 'noeviction',
      '--logfile', join(dir, 'redis.log'),
      '--daemonize', 'no',
    ],
    { stdio: 'ignore', detached: true },
  )
  child.unref()
  let exited = false
  child.once('exit', () => { exited = true })
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (exited) throw new Error(`embedded redis-server exited at start; see ${join(dir, 'redis.log')}`)
    if (await ping(socket)) return { url, stop }
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGTERM')
  throw new Error(`embedded redis-server did not answer on ${socket} within 15 s`)
}
