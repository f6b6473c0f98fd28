/**
 * The embedded Redis is supervised: killed, it is restarted by its broker on the same data directory and
 * AOF, service resumes by itself and nothing acknowledged is lost. A second broker pointed at the same data
 * directory refuses to start (exit code 2, saying how to run several brokers) and leaves the first alone.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { ADMIN_TOKEN, Api, freePort, spawnBroker } from './helpers/broker.js'

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url))

async function redisPid(socket: string): Promise<number> {
  const client = new Redis({ path: socket, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    return Number(/process_id:(\d+)/.exec(await client.info('server'))![1])
  } finally {
    client.disconnect()
  }
}

async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** SIGTERM, then SIGKILL if it has not exited within `ms`; whether it stopped by itself. */
async function stopWithin(
  broker: Awaited<ReturnType<typeof spawnBroker>>,
  ms = 15_000,
): Promise<boolean> {
  if (broker.child.exitCode !== null || broker.child.signalCode !== null) return true
  const exited = new Promise<boolean>((r) => broker.child.once('exit', () => r(true)))
  broker.child.kill('SIGTERM')
  const stopped = await Promise.race([
    exited,
    new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
  ])
  if (!stopped) await broker.kill('SIGKILL')
  return stopped
}

function envFor(dataDir: string, port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    SSF_BROKER_PORT: String(port),
    SSF_BROKER_HOST: '127.0.0.1',
    SSF_BROKER_DATA_DIR: dataDir,
    SSF_BROKER_ADMIN_TOKEN: ADMIN_TOKEN,
  }
}

test(
  'embedded redis-server killed: the broker restarts it, service resumes, nothing acknowledged is lost; a second broker on the same directory is refused',
  { timeout: 90_000 },
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssf-broker-supervised-'))
    const socket = join(dataDir, 'redis.sock')
    const first = await spawnBroker(envFor(dataDir, await freePort()))
    try {
      const api = new Api(first.url)
      const rx = await api.createClient(['receiver'])
      const emitter = await api.createClient(['emitter'])
      const stream = (await api.request('POST', '/ssf/streams', { token: rx.token, json: {} })).body
      const pollPath = new URL(stream.delivery.endpoint_url).pathname
      const acknowledged: string[] = []
      for (let i = 0; i < 20; i++) {
        const res = await api.emit(emitter.token, {
          type: 'caep/session-revoked',
          subject: { format: 'opaque', id: `u${i}` },
          txn: `before-${i}`,
        })
        assert.equal(res.status, 202, res.text)
        acknowledged.push(`before-${i}`)
      }

      const pid = await redisPid(socket)
      process.kill(pid, 'SIGKILL')
      await until(
        () =>
          first.stderr.join('').includes('embedded redis-server died; restarting it')
            ? true
            : undefined,
        10_000,
        'the restart log line',
      )
      await until(
        () =>
          first.stderr.join('').includes('embedded redis-server restarted') ? true : undefined,
        20_000,
        'the restarted log line',
      )
      const newPid = await redisPid(socket)
      assert.notEqual(newPid, pid, 'a new redis-server')

      // Service resumes by itself: the same client token (stored before the kill) is accepted again.
      const after = await until(
        async () => {
          const res = await api.emit(emitter.token, {
            type: 'caep/session-revoked',
            subject: { format: 'opaque', id: 'after' },
            txn: 'after-restart',
          })
          return res.status === 202 ? res : undefined
        },
        15_000,
        'ingest after the restart',
      )
      assert.equal(after.status, 202)
      acknowledged.push('after-restart')

      const received = new Set<string>()
      await until(
        async () => {
          const res = await api.request('POST', pollPath, {
            token: rx.token,
            json: { returnImmediately: true, maxEvents: 100 },
          })
          if (res.status !== 200) return undefined
          const jtis = Object.keys(res.body.sets)
          for (const set of Object.values(res.body.sets) as string[])
            received.add(decodeJwt(set).txn as string)
          if (jtis.length > 0)
            await api.request('POST', pollPath, {
              token: rx.token,
              json: { returnImmediately: true, maxEvents: 0, ack: jtis },
            })
          return acknowledged.every((t) => received.has(t)) ? true : undefined
        },
        20_000,
        'every acknowledged event at the receiver',
      )

      // A second broker on the same data directory is refused, and the first keeps its Redis.
      const second = spawn(process.execPath, [MAIN], {
        env: envFor(dataDir, await freePort()),
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      second.stdout!.on('data', (c: Buffer) => (output += c.toString()))
      second.stderr!.on('data', (c: Buffer) => (output += c.toString()))
      const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)))
      assert.equal(code, 2, output)
      assert.match(output, /belongs to the broker running as pid \d+/)
      assert.match(output, /SSF_BROKER_REDIS_URL/)
      assert.equal(await redisPid(socket), newPid, "the first broker's redis-server is untouched")
      const list = await api.request('GET', '/ssf/streams', { token: rx.token })
      assert.equal(list.status, 200, 'the first broker still answers')

      assert.ok(await stopWithin(first), 'stopped on SIGTERM')
      assert.equal(first.child.exitCode, 0, 'exit code 0')
      assert.ok(!existsSync(join(dataDir, 'broker.pid')), 'ownership released')
      assert.ok(!existsSync(socket), 'its redis-server stopped')
    } finally {
      await stopWithin(first)
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
)

test(
  'a broker killed with SIGKILL leaves its redis-server: the next broker adopts it (stale owner), keeps its data and supervises it',
  { timeout: 90_000 },
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssf-broker-adopt-'))
    const socket = join(dataDir, 'redis.sock')
    const first = await spawnBroker(envFor(dataDir, await freePort()))
    let second: Awaited<ReturnType<typeof spawnBroker>> | undefined
    try {
      const rx = await new Api(first.url).createClient(['receiver'])
      const orphan = await redisPid(socket)
      await first.kill('SIGKILL')
      assert.ok(existsSync(join(dataDir, 'broker.pid')), 'the dead owner left its lock')

      second = await spawnBroker(envFor(dataDir, await freePort()))
      assert.equal(await redisPid(socket), orphan, 'adopted, not replaced')
      assert.match(second.stderr.join(''), /adopted the running embedded redis-server/)
      const api = new Api(second.url)
      assert.equal(
        (await api.request('GET', '/ssf/streams', { token: rx.token })).status,
        200,
        'data kept',
      )

      // The adopted server is not its child, but it is watched all the same.
      process.kill(orphan, 'SIGKILL')
      await until(
        () =>
          second!.stderr.join('').includes('embedded redis-server restarted') ? true : undefined,
        20_000,
        'the restart of the adopted server',
      )
      assert.notEqual(await redisPid(socket), orphan)
      await until(
        async () =>
          (await api.request('GET', '/ssf/streams', { token: rx.token })).status === 200
            ? true
            : undefined,
        15_000,
        'service after the restart',
      )
      assert.ok(await stopWithin(second), 'stopped on SIGTERM after its Redis was restarted')
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\nbroker log:\n${(second?.stderr ?? first.stderr).join('').slice(-3000)}`,
        { cause: err },
      )
    } finally {
      if (second) await stopWithin(second)
      await first.kill('SIGKILL')
      // Whatever happened above, leave no redis-server behind.
      if (existsSync(socket))
        await new Redis({ path: socket, maxRetriesPerRequest: 0, retryStrategy: () => null })
          .on('error', () => {})
          .call('SHUTDOWN', 'NOSAVE')
          .catch(() => {})
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
)
