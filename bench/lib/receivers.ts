/**
 * Parent side of the receiver process: starts `receiver-proc.ts` as a child (its own Node process, so
 * its HTTP parsing and signature checks do not share an event loop with the load generator), and talks
 * to it over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { stopChild, track } from './procs.js'
import type {
  CollectOptions,
  CollectResult,
  OutageCounts,
  PollStartOptions,
  ReceiverCommand,
  ReceiverStats,
} from './receiver-protocol.js'

const SCRIPT = fileURLToPath(new URL('./receiver-proc.ts', import.meta.url))

export class Receivers {
  #child: ChildProcess
  #next = 1
  #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >()
  ports: number[] = []
  /** Receiver clock minus ours (ms), estimated over IPC; subtracted from the receiver's timestamps. */
  clockOffsetMs = 0

  private constructor(child: ChildProcess) {
    this.#child = child
    child.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(msg.id)
      if (!p) return
      this.#pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new Error(`receiver process: ${msg.error}`))
    })
    child.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer)
        p.reject(new Error(`receiver process exited (${code ?? signal})`))
      }
      this.#pending.clear()
    })
  }

  get pid(): number {
    return this.#child.pid!
  }

  static async start(ports: number): Promise<Receivers> {
    const child = track(
      spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
      'receiver process',
    )
    const r = new Receivers(child)
    try {
      r.ports = ((await r.call({ cmd: 'listen', ports }, 30_000)) as { ports: number[] }).ports
      await r.#measureOffset()
    } catch (err) {
      await stopChild(child, 'SIGKILL')
      throw err
    }
    return r
  }

  call(cmd: ReceiverCommand, timeoutMs = 60_000): Promise<unknown> {
    const id = this.#next++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`receiver process: ${cmd.cmd} timed out after ${timeoutMs} ms`))
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

  /** NTP-style: the round trip with the smallest duration bounds the offset best. */
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

  /** URL of push sink `key` on the i-th port (keys are spread over the ports round-robin by callers). */
  sinkUrl(key: string, i = 0): string {
    return `http://127.0.0.1:${this.ports[i % this.ports.length]}/s/${key}`
  }

  baselineUrl(): string {
    return `http://127.0.0.1:${this.ports[0]}/b`
  }

  async configure(issuer: string, audiences: string[], jwksUrl: string): Promise<number> {
    return ((await this.call({ cmd: 'config', issuer, audiences, jwksUrl })) as { keys: number })
      .keys
  }

  stats(): Promise<ReceiverStats> {
    return this.call({ cmd: 'stats' }) as Promise<ReceiverStats>
  }

  async reset(): Promise<void> {
    await this.call({ cmd: 'reset' })
  }

  /** Summary of what arrived; times are converted to this process's clock. */
  async collect(options: CollectOptions): Promise<CollectResult> {
    const r = (await this.call({ cmd: 'collect', options }, 120_000)) as CollectResult
    const o = this.clockOffsetMs
    if (r.first !== null) r.first -= o
    if (r.last !== null) r.last -= o
    if (r.byTxn) for (const v of Object.values(r.byTxn)) ((v.first -= o), (v.last -= o))
    return r
  }

  /**
   * Makes sink `key` answer `status` to every SET (an outage), or (null) receive normally again; returns
   * what it refused during the previous outage, times on this process's clock.
   */
  async sinkStatus(key: string, status: number | null): Promise<OutageCounts> {
    const r = (await this.call({ cmd: 'sinkStatus', key, status })) as OutageCounts
    const o = this.clockOffsetMs
    return {
      refused: r.refused,
      first: r.first === null ? null : r.first - o,
      last: r.last === null ? null : r.last - o,
    }
  }

  async startPoll(options: PollStartOptions): Promise<void> {
    await this.call({ cmd: 'pollStart', options })
  }

  async stopPoll(key: string): Promise<{ polls: number }> {
    return (await this.call({ cmd: 'pollStop', key }, 30_000)) as { polls: number }
  }

  /** Waits until `predicate(stats)` holds, polling every `everyMs`, at most `timeoutMs`. */
  async waitFor(
    predicate: (s: ReceiverStats) => boolean,
    timeoutMs: number,
    everyMs = 5,
  ): Promise<{ ok: boolean; stats: ReceiverStats }> {
    const deadline = Date.now() + timeoutMs
    let s = await this.stats()
    while (!predicate(s) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, everyMs))
      s = await this.stats()
    }
    return { ok: predicate(s), stats: s }
  }

  async stop(): Promise<void> {
    try {
      await this.call({ cmd: 'stop' }, 10_000)
    } catch {
      // stopped below regardless
    }
    await stopChild(this.#child, 'SIGTERM', 3000)
  }
}
