/**
 * The `ssf-broker` command line (`node dist/main.js ...`), every command against a running broker and
 * Redis: help, version and usage errors, then the client commands, with `--json` and as tables.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { overwriteRecord, storedRecord } from './helpers/audit-tamper.js'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { randomId } from '../src/lib/ids.js'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url))
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version

let redis: TestRedis
let broker: TestBroker
let receiver: TestReceiver

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
  receiver = await startReceiver()
})

after(async () => {
  await broker?.close()
  await receiver?.close()
  await redis?.stop()
})

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function cli(
  args: string[],
  env: Record<string, string> = {},
  onStdout?: (text: string) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        SSF_BROKER_URL: broker.url,
        SSF_BROKER_TOKEN: ADMIN_TOKEN,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`ssf-broker ${args.join(' ')} did not finish:\n${stdout}\n${stderr}`))
    }, 20_000)
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      onStdout?.(stdout)
    })
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const json = (run: Run) => {
  assert.equal(run.code, 0, run.stderr)
  return JSON.parse(run.stdout)
}

test('--help and --version print and exit 0 without starting a broker; usage errors exit 2 with the usage', async () => {
  // No SSF_BROKER_* settings at all: a broker start would fail or listen; help must do neither.
  const help = await cli(['--help'], { SSF_BROKER_URL: '', SSF_BROKER_TOKEN: '' })
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^Usage: ssf-broker/)
  assert.doesNotMatch(help.stderr, /listening/)
  const version = await cli(['--version'])
  assert.equal(version.code, 0)
  assert.equal(version.stdout.trim(), VERSION)
  for (const args of [
    ['bogus'],
    ['streams'],
    ['streams', 'status', 'abc', 'sleeping'],
    ['emit', '--subject', 'email:a@example.com'],
    ['keys', 'list', '--no-such-option'],
    ['dead-letters', 'redrive'],
    ['verify', '--issuer', 'http://x'],
  ]) {
    const run = await cli(args)
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
    assert.match(run.stderr, /Usage: ssf-broker/, args.join(' '))
  }
})

test('ids starting with a dash are arguments, not options; new ids never start with one', async () => {
  // Not a usage error (2): the broker is asked, and answers that there is no such stream (1) or letter.
  for (const args of [
    ['streams', 'status', '-Xq7nosuchstream0000000', 'enabled'],
    ['streams', 'status', '--Xq7nosuchstream000000', 'enabled'],
  ]) {
    const run = await cli(args)
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`)
    assert.doesNotMatch(run.stderr, /Usage: ssf-broker/)
  }
  const listed = json(
    await cli(['dead-letters', 'list', '--stream', '-Xq7nosuchstream0000000', '--json']),
  ) as { dead_letters: unknown[] }
  assert.deepEqual(listed.dead_letters, [])
  const redrive = json(
    await cli(['dead-letters', 'redrive', '-Xq7nosuchletter0000000', '--json']),
  ) as { skipped: { id: string }[] }
  assert.deepEqual(
    redrive.skipped.map((s) => s.id),
    ['-Xq7nosuchletter0000000'],
  )
  // One byte of id is two characters, the first '-' for 1 in 64 random bytes.
  const leading = Array.from({ length: 5000 }, () => randomId(1)).filter((id) => id.startsWith('-'))
  assert.deepEqual(leading, [])
})

test('emit, verify (valid and tampered), tail', { timeout: 60_000 }, async () => {
  const rx = await broker.api.createClient(['receiver'])
  const emitter = await broker.api.createClient(['emitter'])
  const stream = await broker.api.createPushStream(rx.token, receiver.url)
  const base = receiver.received.length

  // tail follows delivery outcomes live: started first, it sees the push of the event emitted next.
  let connected!: () => void
  const isConnected = new Promise<void>((r) => (connected = r))
  const tail = cli(['tail', '--stream', stream.stream_id, '--count', '1'], {}, (out) =>
    out.includes('STREAM_ID') ? connected() : undefined,
  )
  await isConnected

  const emitted = await cli(
    [
      'emit',
      '--type',
      'caep/session-revoked',
      '--subject',
      'email:dora@example.com',
      '--event',
      '{"reason_admin":{"en":"test"}}',
      '--txn',
      'cli-txn-1',
    ],
    { SSF_BROKER_TOKEN: emitter.token },
  )
  assert.deepEqual(json(emitted), { txn: 'cli-txn-1' })
  const pushes = await receiver.waitFor(base + 1)
  const set = pushes
    .slice(base)
    .map((p) => p.body)
    .find((body) => (decodeJwt(body) as { txn?: string }).txn === 'cli-txn-1')!
  assert.ok(set)

  const tailed = await tail
  assert.equal(tailed.code, 0, tailed.stderr)
  assert.match(tailed.stdout, new RegExp(`delivered\\s+${stream.stream_id}`))

  const valid = await cli([
    'verify',
    '--issuer',
    broker.issuer,
    '--audience',
    rx.audience,
    '--allow-insecure',
    '--json',
    set,
  ])
  const claims = json(valid)
  assert.equal(claims.valid, true)
  assert.equal(claims.claims.txn, 'cli-txn-1')
  assert.equal(claims.claims.iss, broker.issuer)
  const human = await cli([
    'verify',
    '--issuer',
    broker.issuer,
    '--audience',
    rx.audience,
    '--allow-insecure',
    set,
  ])
  assert.equal(human.code, 0)
  assert.match(human.stdout, /^valid SET/)

  // Tampered: the payload changed (signature no longer matches).
  const [h, p, s] = set.split('.')
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString())
  payload.txn = 'forged'
  const tampered = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.')
  const refused = await cli([
    'verify',
    '--issuer',
    broker.issuer,
    '--audience',
    rx.audience,
    '--allow-insecure',
    '--json',
    tampered,
  ])
  assert.equal(refused.code, 1)
  const result = JSON.parse(refused.stdout)
  assert.equal(result.valid, false)
  assert.equal(typeof result.error, 'string')
  assert.notEqual(result.error, 'error')
  // The wrong audience is refused too.
  const wrongAud = await cli([
    'verify',
    '--issuer',
    broker.issuer,
    '--audience',
    'https://someone-else.example',
    '--allow-insecure',
    set,
  ])
  assert.equal(wrongAud.code, 1)
  assert.match(wrongAud.stdout, /^invalid SET: /)
})

test(
  'streams list and streams status; clients create and list; keys list and rotate',
  { timeout: 60_000 },
  async () => {
    const created = json(
      await cli(['clients', 'create', '--name', 'cli-receiver', '--role', 'receiver', '--json']),
    )
    assert.deepEqual(created.roles, ['receiver'])
    assert.match(created.token, /^ssf_/)
    const table = await cli([
      'clients',
      'create',
      '--name',
      'cli-both',
      '--role',
      'receiver',
      '--role',
      'emitter',
    ])
    assert.equal(table.code, 0)
    assert.match(table.stdout, /CLIENT_ID\s+NAME\s+ROLES/)
    assert.match(table.stdout, /receiver,emitter/)
    assert.match(table.stdout, /token \(shown once\): ssf_/)
    const listed = json(await cli(['clients', 'list', '--json']))
    assert.ok(listed.clients.some((c: any) => c.client_id === created.client_id))
    assert.match((await cli(['clients', 'list'])).stdout, /cli-receiver/)

    const stream = await broker.api.createPushStream(created.token, receiver.url)
    const streams = json(await cli(['streams', 'list', '--client', created.client_id, '--json']))
    assert.deepEqual(
      streams.streams.map((s: any) => s.stream_id),
      [stream.stream_id],
    )
    const streamTable = await cli(['streams', 'list', '--client', created.client_id])
    assert.match(
      streamTable.stdout,
      new RegExp(`${stream.stream_id}\\s+${created.client_id}\\s+enabled\\s+push\\s+\\d+`),
    )
    const paused = json(
      await cli([
        'streams',
        'status',
        stream.stream_id,
        'paused',
        '--reason',
        'maintenance window',
        '--json',
      ]),
    )
    assert.deepEqual(paused, {
      stream_id: stream.stream_id,
      status: 'paused',
      reason: 'maintenance window',
    })
    assert.match(
      (await cli(['streams', 'list', '--status', 'paused'])).stdout,
      new RegExp(stream.stream_id),
    )
    const enabled = await cli(['streams', 'status', stream.stream_id, 'enabled'])
    assert.equal(enabled.code, 0)
    assert.equal(enabled.stdout.trim(), `${stream.stream_id}: enabled`)
    const missing = await cli(['streams', 'status', 'no-such-stream', 'paused'])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /HTTP 404/)

    const keys = json(await cli(['keys', 'list', '--json']))
    const activeBefore = keys.keys.filter((k: any) => k.active).map((k: any) => k.kid)
    assert.ok(activeBefore.length > 0)
    assert.match((await cli(['keys', 'list'])).stdout, /KID\s+ALG\s+STATUS/)
    // Published ahead: the active keys keep signing until the new ones' activation time.
    const ahead = json(await cli(['keys', 'rotate', '--json']))
    assert.deepEqual(
      ahead.keys
        .filter((k: any) => k.active)
        .map((k: any) => k.kid)
        .sort(),
      [...activeBefore].sort(),
    )
    assert.equal(ahead.keys.filter((k: any) => k.pending).length, activeBefore.length)
    assert.match((await cli(['keys', 'list'])).stdout, /signs from \d{4}-/)
    const rotated = json(await cli(['keys', 'rotate', '--immediate', '--json']))
    const activeAfter = rotated.keys.filter((k: any) => k.active).map((k: any) => k.kid)
    assert.equal(activeAfter.length, activeBefore.length)
    assert.ok(
      activeAfter.every((kid: string) => !activeBefore.includes(kid)),
      'every active key replaced',
    )
    assert.equal(
      rotated.keys.filter((k: any) => k.pending).length,
      0,
      'the keys published ahead were replaced',
    )

    // A wrong token is a failure (exit 1), not a usage error.
    const denied = await cli(['keys', 'list'], { SSF_BROKER_TOKEN: 'wrong-token' })
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /HTTP 401/)
    // --url and --token override the environment.
    const viaFlags = await cli(
      ['keys', 'list', '--json', '--url', broker.url, '--token', ADMIN_TOKEN],
      { SSF_BROKER_URL: 'http://127.0.0.1:1', SSF_BROKER_TOKEN: 'x' },
    )
    assert.equal(viaFlags.code, 0)
  },
)

test(
  'dead-letters list and redrive (by id and --all); audit verify and export',
  { timeout: 60_000 },
  async () => {
    const rejecting = await startReceiver()
    let reject = true
    rejecting.respond = (_push, res) => {
      if (reject)
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end('{"err":"invalid_request","description":"refused"}')
      else res.writeHead(202).end()
    }
    try {
      const rx = await broker.api.createClient(['receiver'])
      const emitter = await broker.api.createClient(['emitter'])
      const stream = await broker.api.createPushStream(rx.token, rejecting.url)
      for (const email of ['e1@example.com', 'e2@example.com']) {
        await broker.api.emit(emitter.token, {
          type: 'caep/session-revoked',
          subject: { format: 'email', email },
          txn: `dl-${email}`,
        })
      }
      let letters: any[] = []
      const deadline = Date.now() + 15_000
      while (letters.length < 2 && Date.now() < deadline) {
        letters = json(
          await cli(['dead-letters', 'list', '--stream', stream.stream_id, '--json']),
        ).dead_letters
      }
      assert.equal(letters.length, 2)
      const human = await cli(['dead-letters', 'list', '--stream', stream.stream_id])
      assert.match(human.stdout, /ID\s+STREAM_ID\s+JTI/)
      assert.match(human.stdout, new RegExp(letters[0].id))

      reject = false
      // Named twice, redriven once.
      const byId = json(
        await cli(['dead-letters', 'redrive', ...Array<string>(2).fill(letters[0].id), '--json']),
      )
      assert.deepEqual(byId.redriven, [letters[0].id])
      const all = await cli(['dead-letters', 'redrive', '--all', '--stream', stream.stream_id])
      assert.equal(all.code, 0)
      assert.match(all.stdout, /redriven: 1/)
      await rejecting.waitFor(2)

      const verified = await cli(['audit', 'verify'])
      assert.equal(verified.code, 0, verified.stderr)
      assert.match(verified.stdout, /^ok: \d+ records/)
      assert.equal(json(await cli(['audit', 'verify', '--json'])).ok, true)
      const exported = await cli(['audit', 'export', '--txn', 'dl-e1@example.com'])
      assert.equal(exported.code, 0)
      const records = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      assert.ok(records.length >= 2, 'ingested, attempts')
      assert.ok(records.every((r) => r.txn === 'dl-e1@example.com'))
      assert.ok(records.some((r) => r.kind === 'event.ingested'))

      // A tampered trail: audit verify exits 1 and names the broken record.
      await overwriteRecord(redis.client, 1, {
        ...(await storedRecord(redis.client, 1)),
        rewritten: true,
      })
      const broken = await cli(['audit', 'verify'])
      assert.equal(broken.code, 1)
      assert.match(broken.stdout, /^broken at record/)
    } finally {
      await rejecting.close()
    }
  },
)
