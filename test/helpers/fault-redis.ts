/**
 * A private redis-server that can be killed (SIGKILL), frozen (SIGSTOP) and started again on the same
 * directory, socket and AOF, for fault tests. Stopped (and its files removed) by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

export interface FaultRedis {
  url: string
  socket: string
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>
  /** Starts it again on the same data; resolves once it answers. */
  restart(): Promise<void>
  pause(): void
  resume(): void
  stop(): Promise<void>
}

export async function startFaultRedis(): Promise<FaultRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-broker-fault-redis-'))
  const socket = join(dir, 'redis.sock')
  let child: ChildProcess | undefined
  const launch = async () => {
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
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    )
    child = started
    const deadline = Date.now() + 10_000
    for (;;) {
      const probe = new Redis({
        path: socket,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      })
      probe.on('error', () => {})
      try {
        await probe.connect()
        if ((await probe.ping()) === 'PONG') return
      } catch {
        if (Date.now() > deadline || started.exitCode !== null)
          throw new Error('fault redis-server did not start')
        await new Promise((r) => setTimeout(r, 25))
      } finally {
        probe.disconnect()
      }
    }
  }
  await launch()
  const kill = async () => {
    const running = child
    if (!running || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((r) => running.once('exit', r))
    running.kill('SIGCONT')
    running.kill('SIGKILL')
    await exited
  }
  return {
    url: `unix://${socket}`,
    socket,
    kill,
    restart: launch,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async stop() {
      const running = child
      if (running && running.exitCode === null && running.signalCode === null) {
        const exited = new Promise((r) => running.once('exit', r))
        running.kill('SIGCONT')
        running.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
