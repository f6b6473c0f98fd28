/**
 * Parent side of the floor relay (floor-relay-proc.ts): starts it as a child on the run's Redis with the
 * broker's issuer, audience and signing key, points it at push sinks, and posts to it with an emitter of
 * its own.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { cpuMs } from './cpu.js'
import { Emitter } from './emitter.js'
import { stopChild, track } from './procs.js'
import type { BenchContext } from './types.js'

const SCRIPT = fileURLToPath(new URL('./floor-relay-proc.ts', import.meta.url))

export class FloorRelay {
  #next = 1
  #waiting = new Map<number, (failures: number) => void>()

  private constructor(
    private readonly child: ChildProcess,
    readonly emitter: Emitter,
  ) {
    child.on('message', (msg: { id: number; failures?: number }) => {
      this.#waiting.get(msg.id)?.(msg.failures ?? 0)
      this.#waiting.delete(msg.id)
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  static async start(ctx: BenchContext): Promise<FloorRelay> {
    const token = randomBytes(16).toString('base64url')
    const child = track(
      spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...process.env,
          FLOOR_REDIS_SOCKET: ctx.redis.socket,
          FLOOR_ALG: ctx.alg,
          FLOOR_ISSUER: ctx.issuer,
          FLOOR_AUDIENCE: ctx.tokens.audience,
          FLOOR_TOKEN: token,
        },
      }),
      'floor relay',
    )
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('floor relay did not start')), 30_000)
        child.once('exit', (code) => reject(new Error(`floor relay exited (${code})`)))
        child.once('message', (msg: { port: number }) => {
          clearTimeout(timer)
          resolve(msg.port)
        })
      })
      return new FloorRelay(child, new Emitter(`http://127.0.0.1:${port}`, token))
    } catch (err) {
      await stopChild(child, 'SIGKILL')
      throw err
    }
  }

  #call(msg: Record<string, unknown>): Promise<number> {
    const id = this.#next++
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve)
      this.child.send({ id, ...msg })
    })
  }

  /** Every event posted from now on is pushed to each of these sinks that takes its type (all by default). */
  async setSinks(sinks: (string | { url: string; types: string[] })[]): Promise<void> {
    await this.#call({
      cmd: 'sinks',
      sinks: sinks.map((sink) => (typeof sink === 'string' ? { url: sink } : sink)),
    })
  }

  /** Pushes that failed so far (their SETs are lost, and counted missing by the receivers too). */
  failures(): Promise<number> {
    return this.#call({ cmd: 'stats' })
  }

  /** Stops the relay; resolves with the CPU time (ms) it used in all. */
  async stop(): Promise<number> {
    await this.emitter.close()
    const used = cpuMs(this.pid)
    await stopChild(this.child, 'SIGTERM', 3000)
    return used
  }
}
