/**
 * Brokers for tests: in this process (`startTestBroker`) or as a separate `node dist/main.js` process
 * (`spawnBroker`), the way users run it, for crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config/config.js'
import { createLogger } from '../../src/lib/log.js'
import { startBroker, type Broker } from '../../src/broker.js'

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789'

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

/** The broker variables that point it at a test Redis (`cluster://...` for a test cluster). */
export function redisEnv(redisUrl: string): Record<string, string> {
  return redisUrl.startsWith('cluster://')
    ? { SSF_BROKER_REDIS_CLUSTER_NODES: redisUrl.slice('cluster://'.length) }
    : { SSF_BROKER_REDIS_URL: redisUrl }
}

export function testEnv(
  redisUrl: string,
  port: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    SSF_BROKER_PORT: String(port),
    SSF_BROKER_HOST: '127.0.0.1',
    ...redisEnv(redisUrl),
    SSF_BROKER_ADMIN_TOKEN: ADMIN_TOKEN,
    SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH: 'true',
    SSF_BROKER_LOG_LEVEL: 'error',
    SSF_BROKER_RETRY_BASE_MS: '50',
    SSF_BROKER_RETRY_MAX_MS: '400',
    ...extra,
  }
}

export interface TestBroker {
  url: string
  issuer: string
  api: Api
  broker: Broker
  close(): Promise<void>
}

export async function startTestBroker(
  redisUrl: string,
  extra: Record<string, string> = {},
): Promise<TestBroker> {
  const port = await freePort()
  const env = testEnv(redisUrl, port, extra)
  const config = loadConfig(env)
  const broker = await startBroker(config, createLogger(config.logLevel))
  return {
    url: broker.url,
    issuer: config.issuer,
    api: new Api(broker.url),
    broker,
    close: () => broker.close(),
  }
}

export interface SpawnedBroker {
  url: string
  child: ChildProcess
  stderr: string[]
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>
  kill(signal?: NodeJS.Signals): Promise<void>
}

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url))

/** Starts `node dist/main.js` (built by `npm test`'s pretest) and waits until it listens. */
export async function spawnBroker(
  env: Record<string, string>,
  options: { logLevel?: 'debug' | 'info' } = {},
): Promise<SpawnedBroker> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env, SSF_BROKER_LOG_LEVEL: options.logLevel ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stderr: string[] = []
  let exited = false
  let exitCode: number | string = -1
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true
      exitCode = code ?? signal ?? -1
      resolve()
    }),
  )
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`broker did not start:\n${stderr.join('')}`)),
      20_000,
    )
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString())
      if (chunk.toString().includes('ssf-broker listening')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`broker exited with ${code}:\n${stderr.join('')}`))
    })
  })
  child.stdout!.resume()
  return {
    url: `http://127.0.0.1:${env.SSF_BROKER_PORT}`,
    child,
    stderr,
    exited: exit.then(() => exitCode),
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!exited) child.kill(signal)
      await exit
    },
  }
}

export interface ApiResponse<T = any> {
  status: number
  headers: Headers
  body: T
  text: string
}

/** A small JSON client for the broker's API. */
export class Api {
  constructor(readonly base: string) {}

  async request<T = any>(
    method: string,
    path: string,
    options: {
      token?: string
      json?: unknown
      body?: string
      contentType?: string
      headers?: Record<string, string>
    } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    let body: string | undefined = options.body
    if (options.json !== undefined) body = JSON.stringify(options.json)
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
    // A request the broker never answers fails here, naming itself, rather than as a test timeout
    // (40 s: longer than the default long-poll wait of 25 s).
    const res = await fetch(this.base + path, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(40_000),
    }).catch((err: unknown) => {
      throw new Error(`${method} ${path}: ${(err as Error).message}`, { cause: err })
    })
    const text = await res.text()
    let parsed: any = undefined
    try {
      parsed = text ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text }
  }

  async createClient(
    roles: string[],
    extra: Record<string, unknown> = {},
  ): Promise<{ client_id: string; token: string; audience: string }> {
    const res = await this.request('POST', '/admin/clients', {
      token: ADMIN_TOKEN,
      json: { name: `test-${roles.join('-')}`, roles, ...extra },
    })
    if (res.status !== 201) throw new Error(`create client failed: ${res.status} ${res.text}`)
    return res.body
  }

  async createPushStream(
    token: string,
    endpointUrl: string,
    extra: Record<string, unknown> = {},
  ): Promise<any> {
    const res = await this.request('POST', '/ssf/streams', {
      token,
      json: { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: endpointUrl }, ...extra },
    })
    if (res.status !== 201) throw new Error(`create stream failed: ${res.status} ${res.text}`)
    return res.body
  }

  async emit(token: string, event: unknown): Promise<ApiResponse> {
    return this.request('POST', '/events', { token, json: event })
  }
}
