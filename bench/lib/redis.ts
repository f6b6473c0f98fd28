/**
 * A private redis-server for one benchmark run, configured as the broker's embedded mode runs it (unix
 * socket, AOF with fsync every second, noeviction), in a temporary directory removed at the end.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { removeDir, stopChild, track, trackDir } from './procs.js'

export interface BenchRedis {
  url: string
  socket: string
  pid: number
  client: Redis
  /** A connection to another database (for baselines that must not touch the broker's data). */
  scratch(db: number): Redis
  memory(): Promise<{ usedMemory: number; usedMemoryRss: number; keys: number }>
  flushAll(): Promise<void>
  stop(): Promise<void>
}

export const REDIS_ARGS = [
  '--appendonly',
  'yes',
  '--appendfsync',
  'everysec',
  '--save',
  '',
  '--maxmemory-policy',
  'noeviction',
]

export async function startRedis(): Promise<BenchRedis> {
  const dir = trackDir(mkdtempSync(join(tmpdir(), 'ssf-bench-redis-')))
  const socket = join(dir, 'redis.sock')
  const child = track(
    spawn(
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
        ...REDIS_ARGS,
        '--logfile',
        join(dir, 'redis.log'),
        '--daemonize',
        'no',
      ],
      {
        stdio: 'ignore',
      },
    ),
    'redis-server',
  )
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new Error(`redis-server could not start (is it on PATH?): ${err.message}`)),
    )
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)))
  })
  failed.catch(() => {})
  const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 3 })
  client.on('error', () => {})
  const extra: Redis[] = []
  const deadline = Date.now() + 10_000
  try {
    for (;;) {
      try {
        await Promise.race([client.connect().then(() => client.ping()), failed])
        break
      } catch (err) {
        if (Date.now() > deadline || (err as Error).message.startsWith('redis-server')) throw err
        client.disconnect()
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    removeDir(dir)
    throw err
  }
  return {
    url: `unix://${socket}`,
    socket,
    pid: child.pid!,
    client,
    scratch(db) {
      const c = new Redis({ path: socket, db, maxRetriesPerRequest: 3 })
      c.on('error', () => {})
      extra.push(c)
      return c
    },
    async memory() {
      const info = await client.info('memory')
      const field = (name: string) =>
        Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN)
      return {
        usedMemory: field('used_memory'),
        usedMemoryRss: field('used_memory_rss'),
        keys: await client.dbsize(),
      }
    },
    async flushAll() {
      await client.flushall()
    },
    async stop() {
      for (const c of extra) c.disconnect()
      client.disconnect()
      await stopChild(child, 'SIGTERM', 5000)
      removeDir(dir)
    },
  }
}
