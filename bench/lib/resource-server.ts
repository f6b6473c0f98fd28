/**
 * Parent side of scenario 6's resource server: starts `resource-server-proc.ts` as its own Node process
 * (a resource server is not the agent calling it) and talks to it over IPC. Tracked and stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { stopChild, track } from './procs.js'
import type {
  ResourceServerCommand,
  ResourceServerStart,
  ResourceServerStats,
} from './resource-server-protocol.js'

const SCRIPT = fileURLToPath(new URL('./resource-server-proc.ts', import.meta.url))

export class ResourceServer {
  #child: ChildProcess
  #next = 1
  #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >()
  url = ''
  streamId = ''
  verificationMs = 0
  /** Its clock minus ours (ms), estimated over IPC; subtracted from its timestamps. */
  clockOffsetMs = 0

  private constructor(child: ChildProcess) {
    this.#child = child
    child.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(msg.id)
      if (!p) return
      this.#pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new Error(`resource server process: ${msg.error}`))
    })
    child.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer)
        p.reject(new Error(`resource server process exited (${code ?? signal})`))
      }
      this.#pending.clear()
    })
  }

  get pid(): number {
    return this.#child.pid!
  }

  /** Starts the process and the server, creates and verifies its push stream. Nothing is left running on failure. */
  static async start(options: ResourceServerStart): Promise<ResourceServer> {
    const child = track(
      spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
      'resource server process',
    )
    const rs = new ResourceServer(child)
    try {
      const r = (await rs.call({ cmd: 'start', options }, 30_000)) as {
        url: string
        streamId: string
        verificationMs: number
      }
      rs.url = r.url
      rs.streamId = r.streamId
      rs.verificationMs = r.verificationMs
      await rs.#measureOffset()
    } catch (err) {
      await rs.stop()
      throw err
    }
    return rs
  }

  call(cmd: ResourceServerCommand, timeoutMs = 30_000): Promise<unknown> {
    const id = this.#next++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`resource server process: ${cmd.cmd} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      this.#child.send({ id, ...cmd }, (err) => {
        if (!err) return
        clearTimeout(timer)
        this.#pending.delete(id)
        reject(err)
      })
    })
  }

  async #measureOffset(): Promise<void> {
    let best = { rtt: Infinity, offset: 0 }
    for (let i = 0; i < 20; i++) {
      const t0 = performance.timeOrigin + performance.now()
      const { now } = (await this.call({ cmd: 'now' })) as { now: number }
      const t1 = performance.timeOrigin + performance.now()
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: now - (t0 + t1) / 2 }
    }
    this.clockOffsetMs = best.offset
  }

  async addSubject(subject: Record<string, unknown>): Promise<void> {
    await this.call({ cmd: 'addSubject', subject })
  }

  /** When the revocation index recorded the SET of `txn`, on this process's clock; null if not (yet). */
  async appliedAt(txn: string): Promise<number | null> {
    const { at } = (await this.call({ cmd: 'applied', txn })) as { at: number | null }
    return at === null ? null : at - this.clockOffsetMs
  }

  stats(): Promise<ResourceServerStats> {
    return this.call({ cmd: 'stats' }) as Promise<ResourceServerStats>
  }

  /** Deletes its stream and closes the server, then stops the process (by pid; SIGKILL after a grace period). */
  async stop(): Promise<void> {
    try {
      await this.call({ cmd: 'stop' }, 10_000)
    } catch {
      // stopped below regardless
    }
    await stopChild(this.#child, 'SIGTERM', 3000)
  }
}
