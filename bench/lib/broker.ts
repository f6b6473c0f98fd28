/**
 * The broker under test, run the way users run it: `node dist/main.js` with SSF_BROKER_* variables, as
 * its own process; plus a small keep-alive JSON client for its management API.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { execFileSync } from 'node:child_process'
import { Pool } from 'undici'
import { isAlive, stopChild, track } from './procs.js'

export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef0123456789'

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

export interface BrokerProcess {
  url: string
  pid: number
  env: Record<string, string>
  rssBytes(): number
  stderrTail(): string
  stop(): Promise<void>
}

export async function spawnBroker(
  mainPath: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<BrokerProcess> {
  const child: ChildProcess = track(
    spawn(process.execPath, [...nodeArgs, mainPath], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'broker',
  )
  const stderr: string[] = []
  let stderrBytes = 0
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString())
    stderrBytes += chunk.length
    while (stderrBytes > 64 * 1024 && stderr.length > 1) stderrBytes -= stderr.shift()!.length
  })
  child.stdout!.resume()
  const url = `http://127.0.0.1:${env.SSF_BROKER_PORT}`
  const proc: BrokerProcess = {
    url,
    pid: child.pid!,
    env,
    rssBytes: () => rssOf(child.pid!),
    stderrTail: () => stderr.join('').split('\n').slice(-30).join('\n'),
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (!isAlive(child))
      throw new Error(
        `broker exited at start (${child.exitCode ?? child.signalCode}):\n${proc.stderrTail()}`,
      )
    try {
      const res = await fetch(`${url}/.well-known/ssf-configuration`, {
        signal: AbortSignal.timeout(2000),
      })
      if (res.status === 200) {
        await res.arrayBuffer()
        break
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop()
      throw new Error(`broker did not answer within 30 s:\n${proc.stderrTail()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return proc
}

/** Resident set size of a process, from /proc (Linux) or `ps`. */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]
    if (kb) return Number(kb) * 1024
  } catch {
    // not Linux
  }
  try {
    return (
      Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) *
      1024
    )
  } catch {
    return NaN
  }
}

export interface ApiResponse<T = any> {
  status: number
  body: T
  text: string
}

/** JSON over one keep-alive pool. */
export class Api {
  readonly pool: Pool
  constructor(
    readonly base: string,
    connections = 16,
  ) {
    this.pool = new Pool(base, {
      connections,
      pipelining: 1,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    })
  }

  async request<T = any>(
    method: string,
    path: string,
    options: { token?: string; json?: unknown; timeoutMs?: number } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {}
    if (options.token) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined
    if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers['content-type'] = 'application/json'
    }
    const res = await this.pool.request({
      method: method as 'GET',
      path,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    })
    const text = await res.body.text()
    let parsed: any
    try {
      parsed = text ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    return { status: res.statusCode, body: parsed as T, text }
  }

  async must<T = any>(
    expect: number[],
    method: string,
    path: string,
    options: { token?: string; json?: unknown } = {},
  ): Promise<T> {
    const res = await this.request<T>(method, path, options)
    if (!expect.includes(res.status))
      throw new Error(`${method} ${path} answered ${res.status}: ${res.text.slice(0, 300)}`)
    return res.body
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** A scenario cannot run against this broker (e.g. it refuses a setting the scenario needs). */
export class NotSupported extends Error {}

/**
 * The settings among `names` that a broker did not know: it exited at start-up with an error line naming
 * the variable as unknown. (A known setting with a bad value is a failure, not this.)
 */
export function refusedSettings(err: unknown, names: readonly string[]): string[] {
  const text = String((err as Error)?.message ?? err)
  if (!/exited at start/.test(text)) return []
  const lines = text.split('\n')
  return names.filter((n) => lines.some((l) => l.includes(n) && /not a known|unknown/i.test(l)))
}
