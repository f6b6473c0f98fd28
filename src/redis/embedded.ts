/**
 * Embedded mode: with no SSF_BROKER_REDIS_URL the broker runs its own `redis-server` from PATH on a unix
 * socket under the data directory, with AOF persistence and `noeviction`, and stops it on exit.
 *
 * - Supervised: if that redis-server dies, it is started again on the same directory and AOF (a SIGKILLed
 *   redis-server has already written every reply it sent to the AOF, so nothing acknowledged is lost), and
 *   the broker's connections reconnect by themselves.
 * - Owned: `broker.pid` in the data directory names the broker process that owns it. A second broker
 *   pointed at a directory whose owner is alive refuses to start (DataDirInUseError) and touches nothing.
 * - A broker killed with SIGKILL leaves its redis-server running; the next start finds the owner dead and
 *   the server answering on the socket, and adopts it (same data, nothing lost) instead of starting a
 *   second one, and supervises it from then on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { resolve, join } from 'node:path'
import { Redis } from 'ioredis'
import type { Logger } from '../lib/log.js'

const LOCK_FILE = 'broker.pid'
const WATCH_ADOPTED_MS = 500
const START_TIMEOUT_MS = 15_000
const RESTART_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000] as const

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

/** Another live broker owns this data directory (and its redis-server). */
export class DataDirInUseError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `the data directory ${dir} belongs to the broker running as pid ${pid}, which runs its embedded redis-server. ` +
        'To run several brokers, run one Redis and point every broker at it with SSF_BROKER_REDIS_URL ' +
        '(e.g. SSF_BROKER_REDIS_URL=redis://127.0.0.1:6379), or use SSF_BROKER_PROCESSES for several processes on one machine. ' +
        `If no broker runs there any more, delete ${join(dir, LOCK_FILE)}.`,
    )
    this.name = 'DataDirInUseError'
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Makes this process the owner of `dir`, or throws DataDirInUseError if a live process owns it. */
function acquireOwnership(dir: string): () => void {
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err
    }
    let owner = NaN
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10)
    } catch {
      // removed in between: try again
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
      throw new DataDirInUseError(dir, owner)
    if (owner === process.pid) break
    // The owner is gone (crashed or killed): its lock is stale.
    try {
      unlinkSync(path)
    } catch {
      // another starter removed it first
    }
  }
  return () => {
    try {
      if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path)
    } catch {
      // already gone
    }
  }
}

async function serverPid(socket: string): Promise<number | undefined> {
  const client = new Redis({
    path: socket,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    const info = await client.info('server')
    const pid = /process_id:(\d+)/.exec(info)?.[1]
    return pid ? Number(pid) : undefined
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

async function ping(socket: string): Promise<boolean> {
  const client = new Redis({
    path: socket,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  })
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
  const client = new Redis({
    path: socket,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
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

export interface EmbeddedRedisOptions {
  log?: Logger
}

export async function startEmbeddedRedis(
  dataDir: string,
  options: EmbeddedRedisOptions = {},
): Promise<EmbeddedRedis> {
  const dir = resolve(dataDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const socket = join(dir, 'redis.sock')
  const url = `unix://${socket}`
  const log = options.log
  const release = acquireOwnership(dir)
  let stopping = false
  let child: ChildProcess | undefined
  let adoptedWatch: NodeJS.Timeout | undefined
  let restarting: Promise<void> | undefined

  // Starts a redis-server again after it died, retrying with backoff until it answers or we stop.
  const restart = (why: Record<string, unknown>) => {
    if (stopping || restarting) return
    log?.error('embedded redis-server died; restarting it on the same data directory', {
      ...why,
      data_dir: dir,
    })
    restarting = (async () => {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          const pid = await spawnServer()
          log?.info('embedded redis-server restarted', { pid, attempt: attempt + 1 })
          return
        } catch (err) {
          log?.warn('embedded redis-server restart failed; retrying', {
            error: String(err),
            attempt: attempt + 1,
          })
          await new Promise((r) =>
            setTimeout(r, RESTART_BACKOFF_MS[Math.min(attempt, RESTART_BACKOFF_MS.length - 1)]),
          )
        }
      }
    })().finally(() => {
      restarting = undefined
    })
  }

  const spawnServer = async (): Promise<number | undefined> => {
    const started = spawn(
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
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        join(dir, 'redis.log'),
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore', detached: true },
    )
    started.unref()
    let exited = false
    started.once('exit', () => {
      exited = true
    })
    const deadline = Date.now() + START_TIMEOUT_MS
    while (Date.now() < deadline) {
      if (exited)
        throw new Error(`embedded redis-server exited at start; see ${join(dir, 'redis.log')}`)
      if (await ping(socket)) {
        child = started
        started.once('exit', (code, signal) => {
          if (child === started) child = undefined
          if (!stopping) restart({ pid: started.pid, code, signal })
        })
        return started.pid
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    started.kill('SIGTERM')
    throw new Error(
      `embedded redis-server did not answer on ${socket} within ${START_TIMEOUT_MS / 1000} s`,
    )
  }

  const stop = async () => {
    if (stopping) return
    stopping = true
    clearInterval(adoptedWatch)
    await restarting
    const running = child
    const exited =
      running && running.exitCode === null && running.signalCode === null
        ? new Promise((r) => running.once('exit', r))
        : undefined
    await shutdown(socket)
    if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
    release()
  }

  try {
    if (await ping(socket)) {
      // Left running by a broker that died: adopt it, and watch its pid since it is not our child.
      const pid = await serverPid(socket)
      log?.info('adopted the running embedded redis-server', { pid, data_dir: dir })
      if (pid !== undefined) {
        adoptedWatch = setInterval(() => {
          if (alive(pid)) return
          clearInterval(adoptedWatch)
          restart({ pid, adopted: true })
        }, WATCH_ADOPTED_MS)
        adoptedWatch.unref()
      }
      return { url, stop }
    }
    if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error)
      throw new RedisServerMissingError()
    await spawnServer()
    return { url, stop }
  } catch (err) {
    release()
    throw err
  }
}
