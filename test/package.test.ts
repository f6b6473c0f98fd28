/**
 * What users install. The receiver SDK package (`packages/receiver`, `@ssf-broker/receiver`) is packed
 * with `npm pack` (its prepack builds it), installed from the tarball into an empty folder, and must pull
 * jose and undici and nothing else: no broker server dependency. That install then verifies a SET minted
 * by a real broker. The broker package's own tarball must carry what its exports name, its LICENSE and
 * CHANGELOG, and source maps that include their sources.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startTestBroker, type TestBroker } from './helpers/broker.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SDK_DIR = join(ROOT, 'packages/receiver')
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
/** The broker's runtime dependencies and theirs that an SDK user must not get. */
const SERVER_DEPENDENCIES = [
  'bullmq',
  'ioredis',
  'hono',
  '@hono/node-server',
  'zod',
  'pino',
  'prom-client',
  'luxon',
  'msgpackr',
  'ssf-broker',
]

interface Manifest {
  name: string
  version: string
  license: string
  scripts: Record<string, string>
  exports: Record<string, string | Record<string, string>>
}

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))

interface PackResult {
  filename: string
  files: { path: string }[]
}

const npm = (args: string[], cwd: string) =>
  run('npm', args, { cwd, env: process.env, maxBuffer: 16 * 1024 * 1024 })

/** Names of every package under `node_modules`, nested ones included. */
function installedPackages(dir: string): string[] {
  if (!existsSync(dir)) return []
  const names: string[] = []
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('.')) continue
    const paths = entry.startsWith('@')
      ? readdirSync(join(dir, entry)).map((e) => join(dir, entry, e))
      : [join(dir, entry)]
    for (const path of paths) {
      names.push((readJson(join(path, 'package.json')) as Manifest).name)
      names.push(...installedPackages(join(path, 'node_modules')))
    }
  }
  return names
}

/** Every `.js.map` among `files` (relative to `base`) has the text of each of its sources. */
function assertMapsCarrySources(base: string, files: string[]): void {
  const maps = files.filter((f) => f.endsWith('.js.map'))
  assert.ok(maps.length > 0, 'source maps are shipped')
  for (const file of maps) {
    const map = readJson(join(base, file)) as {
      sources: string[]
      sourcesContent?: (string | null)[]
    }
    assert.equal(map.sourcesContent?.length, map.sources.length, `${file} carries its sources`)
    assert.ok(
      map.sourcesContent.every((s) => typeof s === 'string' && s.length > 0),
      `${file} carries its sources`,
    )
  }
}

/** Export targets (`types` and `default` conditions) of a package.json `exports` map. */
function exportTargets(exports: Record<string, string | Record<string, string>>): string[] {
  return Object.values(exports)
    .flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)))
    .map((p) => p.replace(/^\.\//, ''))
}

describe('the receiver SDK package', () => {
  let dir: string
  let tarball: string
  let packed: string[]
  const app = () => join(dir, 'app')

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-sdk-pack-'))
    const { stdout } = await npm(
      ['pack', '-w', '@ssf-broker/receiver', '--pack-destination', dir, '--json'],
      ROOT,
    )
    const [result] = JSON.parse(stdout) as PackResult[]
    tarball = join(dir, result!.filename)
    packed = result!.files.map((f) => f.path)
  })

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('the tarball holds the built SDK, its types, README and LICENSE, and no TypeScript source', () => {
    const manifest = readJson(join(SDK_DIR, 'package.json')) as Manifest
    assert.match(manifest.scripts.prepack ?? '', /^npm run build\b/, 'prepack builds')
    for (const file of ['package.json', 'README.md', 'LICENSE', ...exportTargets(manifest.exports)])
      assert.ok(packed.includes(file), `${file} is packed`)
    assert.deepEqual(
      packed.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
    )
    assert.deepEqual(
      packed.filter((f) => f.endsWith('.d.ts.map')),
      [],
      'declaration maps would point at sources that are not shipped',
    )
    assert.match(readFileSync(join(SDK_DIR, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/)
    assert.equal(manifest.license, 'Apache-2.0')
    assertMapsCarrySources(SDK_DIR, packed)
  })

  test('installed from the tarball into an empty folder it pulls jose and undici only', async () => {
    mkdirSync(app())
    writeFileSync(
      join(app(), 'package.json'),
      JSON.stringify({ name: 'sdk-user', version: '1.0.0', private: true, type: 'module' }),
    )
    await npm(
      ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'],
      app(),
    )
    const installed = installedPackages(join(app(), 'node_modules')).sort()
    assert.deepEqual(installed, ['@ssf-broker/receiver', 'jose', 'undici'])
    for (const name of SERVER_DEPENDENCIES)
      assert.ok(!installed.includes(name), `${name} is not installed`)
  })

  describe('against a real broker', () => {
    let redis: TestRedis
    let broker: TestBroker

    before(async () => {
      redis = await startTestRedis()
      broker = await startTestBroker(redis.url)
    })

    after(async () => {
      await broker?.close()
      await redis?.stop()
    })

    test('the installed SDK (without hono or ioredis) verifies a SET the broker minted, and refuses it tampered', async () => {
      const receiver = await broker.api.createClient(['receiver'])
      const emitter = await broker.api.createClient(['emitter'])
      const created = await broker.api.request<{ delivery: { endpoint_url: string } }>(
        'POST',
        '/ssf/streams',
        { token: receiver.token, json: { events_requested: [SESSION_REVOKED] } },
      )
      assert.equal(created.status, 201, created.text)
      const subject = { format: 'email', email: 'pat@example.com' }
      const emitted = await broker.api.emit(emitter.token, {
        type: 'caep/session-revoked',
        subject,
        event: { reason_admin: { en: 'package test' } },
      })
      assert.equal(emitted.status, 202, emitted.text)
      const { txn } = emitted.body as { txn: string }
      const pollPath = new URL(created.body.delivery.endpoint_url).pathname
      const polled = await broker.api.request<{ sets: Record<string, string> }>('POST', pollPath, {
        token: receiver.token,
        json: { maxEvents: 10 },
      })
      assert.equal(polled.status, 200, polled.text)
      const [set] = Object.values(polled.body.sets)
      assert.ok(set, 'the poll returned the SET')

      const script = `
        import { createReceiver, createNodePushHandler, isReceiverError } from '@ssf-broker/receiver'
        const receiver = createReceiver({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE, allowInsecureIssuer: true })
        const verified = await receiver.verify(process.env.SET)
        const [h, p, s] = process.env.SET.split('.')
        const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url')), jti: 'other' })).toString('base64url')
        const refused = await createReceiver({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE, allowInsecureIssuer: true }).verify(h + '.' + forged + '.' + s).catch((e) => e)
        createNodePushHandler({ receiver, authorization: false, onEvent: () => {} })
        console.log(JSON.stringify({ type: verified.type, subject: verified.subject, txn: verified.txn, refused: isReceiverError(refused) ? refused.code : String(refused) }))
      `
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        cwd: app(),
        env: {
          PATH: process.env.PATH ?? '',
          ISSUER: broker.issuer,
          AUDIENCE: receiver.audience,
          SET: set,
        },
      })
      const out = JSON.parse(stdout) as {
        type: string
        subject: unknown
        txn: string
        refused: string
      }
      assert.equal(out.type, SESSION_REVOKED)
      assert.deepEqual(out.subject, subject)
      assert.equal(out.txn, txn)
      assert.equal(out.refused, 'ERR_SET_SIGNATURE_INVALID')
    })
  })
})

describe('the broker package', () => {
  let packed: string[]
  const manifest = readJson(join(ROOT, 'package.json')) as Manifest

  before(async () => {
    // The suite's pretest has built dist/; packing again would rebuild it.
    const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT)
    packed = (JSON.parse(stdout) as PackResult[])[0]!.files.map((f) => f.path)
  })

  test('prepack builds; the tarball holds every export target with its types, the bin, LICENSE and CHANGELOG', () => {
    assert.equal(manifest.scripts.prepack, 'npm run build')
    for (const [entry, target] of Object.entries(manifest.exports)) {
      if (entry !== './package.json')
        assert.equal(Object.keys(target)[0], 'types', `${entry}: types is the first condition`)
    }
    for (const file of [
      'LICENSE',
      'CHANGELOG.md',
      'README.md',
      'dist/main.js',
      ...exportTargets(manifest.exports),
    ])
      assert.ok(packed.includes(file), `${file} is packed`)
    assert.match(
      readFileSync(join(ROOT, 'CHANGELOG.md'), 'utf8'),
      new RegExp(`^## ${manifest.version.replace(/\./g, '\\.')}\\b`, 'm'),
      'the CHANGELOG has the current version',
    )
    assertMapsCarrySources(ROOT, packed)
  })

  test('ssf-broker/receiver is the same API as @ssf-broker/receiver', async () => {
    const load = (name: string): Promise<Record<string, unknown>> => import(name) // by name, as users do
    const legacy = await load('ssf-broker/receiver')
    const sdk = await load('@ssf-broker/receiver')
    assert.match(import.meta.resolve('ssf-broker/receiver'), /\/dist\/receiver\/index\.js$/)
    assert.deepEqual(Object.keys(legacy).sort(), Object.keys(sdk).sort())
    assert.ok(Object.keys(sdk).includes('createReceiver'))
  })
})
