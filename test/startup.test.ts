/**
 * Starting the broker the way a first-time user does: embedded Redis (no SSF_BROKER_REDIS_URL), a generated
 * admin token printed once, clear messages for a missing redis-server and for invalid configuration.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Api, freePort } from './helpers/broker.js'
import { ConfigError, loadConfig } from '../src/config/config.js'

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url))

function run(env: Record<string, string>, until: (out: string) => boolean, timeoutMs = 20_000) {
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const done = new Promise<{ out: string; code: number | null }>((resolve) =>
    child.once('exit', (code) => resolve({ out, code })),
  )
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; output:\n${out}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (until(out)) {
        clearTimeout(timer)
        resolve(out)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(out)
    })
  })
  return { child, ready, done, output: () => out }
}

test('embedded mode: starts its own redis-server with AOF, prints the admin token once, stops Redis on exit', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ssf-broker-embedded-'))
  try {
    const port = await freePort()
    const env = {
      PATH: process.env.PATH ?? '',
      SSF_BROKER_PORT: String(port),
      SSF_BROKER_HOST: '127.0.0.1',
      SSF_BROKER_DATA_DIR: dataDir,
    }
    const first = run(env, (o) => o.includes('ssf-broker listening'))
    const out = await first.ready
    const token = /\n {2}(ssf_admin_[A-Za-z0-9_-]+)\n/.exec(out)?.[1]
    assert.ok(token, `admin token printed:\n${out}`)
    const api = new Api(`http://127.0.0.1:${port}`)
    const created = await api.request('POST', '/admin/clients', {
      token,
      json: { name: 'r', roles: ['receiver'] },
    })
    assert.equal(created.status, 201)
    assert.ok(existsSync(join(dataDir, 'redis.sock')))
    assert.ok(existsSync(join(dataDir, 'appendonlydir')), 'AOF persistence is on')
    first.child.kill('SIGTERM')
    assert.equal((await first.done).code, 0)
    assert.ok(!existsSync(join(dataDir, 'redis.sock')), 'embedded redis-server stopped')

    // Restart: same data, the token is not printed again and still works.
    const second = run(env, (o) => o.includes('ssf-broker listening'))
    const out2 = await second.ready
    assert.ok(!out2.includes('ssf_admin_'), 'the token is shown only once')
    const listed = await api.request('GET', '/admin/clients', { token })
    assert.equal(listed.status, 200)
    assert.equal(listed.body.clients.length, 1, 'data survived the restart')
    second.child.kill('SIGTERM')
    await second.done
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('a missing redis-server gives one clear message and exit code 2', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ssf-broker-noredis-'))
  try {
    const { done } = run(
      {
        PATH: '/nonexistent',
        SSF_BROKER_PORT: String(await freePort()),
        SSF_BROKER_DATA_DIR: dataDir,
      },
      () => false,
    )
    const { out, code } = await done
    assert.equal(code, 2)
    assert.match(
      out,
      /redis-server was not found on PATH.*apt-get install redis-server.*SSF_BROKER_REDIS_URL/s,
    )
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('invalid configuration stops the broker with a message naming the variable', async () => {
  const { done } = run({ PATH: process.env.PATH ?? '', SSF_BROKER_PORT: 'eighty' }, () => false)
  const { out, code } = await done
  assert.equal(code, 2)
  assert.match(out, /SSF_BROKER_PORT: must be a whole number/)
})

test('configuration checks name the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ SSF_BROKER_ISSUER: 'https://x.example/?a=1' }, 'SSF_BROKER_ISSUER'],
    [{ SSF_BROKER_ISSUER: 'not a url' }, 'SSF_BROKER_ISSUER'],
    [{ SSF_BROKER_REDIS_URL: 'http://redis' }, 'SSF_BROKER_REDIS_URL'],
    [{ SSF_BROKER_ADMIN_TOKEN: 'short' }, 'SSF_BROKER_ADMIN_TOKEN'],
    [
      { SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH: 'yes' },
      'SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH',
    ],
    [{ SSF_BROKER_DEFAULT_SUBJECTS: 'SOME' }, 'SSF_BROKER_DEFAULT_SUBJECTS'],
    [{ SSF_BROKER_OAUTH_ISSUER: 'https://as.example' }, 'SSF_BROKER_OAUTH_JWKS_URL'],
    [{ SSF_BROKER_TLS_CERT_FILE: '/x.pem' }, 'SSF_BROKER_TLS_KEY_FILE'],
    [
      { SSF_BROKER_RETRY_BASE_MS: '1000', SSF_BROKER_RETRY_MAX_MS: '10' },
      'SSF_BROKER_RETRY_MAX_MS',
    ],
    [{ SSF_BROKER_PORTT: '1' }, 'SSF_BROKER_PORTT'],
  ]
  for (const [env, variable] of cases) {
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => err instanceof ConfigError && err.variable === variable,
      JSON.stringify(env),
    )
  }
  const config = loadConfig({ SSF_BROKER_PORT: '9090' })
  assert.equal(config.issuer, 'http://localhost:9090')
  assert.equal(
    loadConfig({ SSF_BROKER_ISSUER: 'https://ssf.example.com/tenant-1/' }).issuer,
    'https://ssf.example.com/tenant-1',
  )
})

test('SSF_BROKER_PROCESSES=2: two broker processes share the port and the embedded Redis; one that dies is replaced', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ssf-broker-cluster-'))
  try {
    const port = await freePort()
    const pids = (out: string) =>
      [...out.matchAll(/"pid":(\d+)[^\n]*"msg":"ssf-broker listening"/g)].map((m) => Number(m[1]))
    const env = {
      PATH: process.env.PATH ?? '',
      SSF_BROKER_PORT: String(port),
      SSF_BROKER_HOST: '127.0.0.1',
      SSF_BROKER_DATA_DIR: dataDir,
      SSF_BROKER_PROCESSES: '2',
      SSF_BROKER_ADMIN_TOKEN: 'cluster-admin-token-0123456789abcdef0123',
    }
    const primary = run(env, (o) => new Set(pids(o)).size >= 2)
    const out = await primary.ready
    const [first, second] = [...new Set(pids(out))]
    assert.ok(first && second && first !== second, out)
    const api = new Api(`http://127.0.0.1:${port}`)
    const res = await api.request('POST', '/admin/clients', {
      token: env.SSF_BROKER_ADMIN_TOKEN,
      json: { name: 'r', roles: ['receiver'] },
    })
    assert.equal(res.status, 201)
    process.kill(first, 'SIGKILL')
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline && new Set(pids(primary.output())).size < 3)
      await new Promise((r) => setTimeout(r, 100))
    assert.equal(
      new Set(pids(primary.output())).size,
      3,
      `a replacement process started:\n${primary.output()}`,
    )
    // The replacement announces itself; the API keeps answering throughout.
    const listed = await api.request('GET', '/admin/clients', { token: env.SSF_BROKER_ADMIN_TOKEN })
    assert.equal(listed.status, 200)
    primary.child.kill('SIGTERM')
    const { out: all, code } = await primary.done
    assert.equal(code, 0)
    assert.ok(all.includes('shutting down broker processes'))
    assert.ok(
      !existsSync(join(dataDir, 'redis.sock')),
      'embedded redis-server stopped with the broker',
    )
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
})
