/**
 * The two examples, run as their README says (`tsx examples/<name>/index.ts`, importing the built
 * `@ssf-broker/receiver` package), against a real broker (in-process, real Redis): the resource server
 * subscribes by push, the agent runtime by poll and holds the resource server's SSE stream open; an
 * emitted session-revoked for the user tears the agent's session down, and both record it.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { freePort, startTestBroker, type TestBroker } from './helpers/broker.js'
import { spawnLogged, type LoggedChild } from './helpers/child.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const USER = 'alice@example.com'

let redis: TestRedis
let broker: TestBroker
const children: LoggedChild[] = []

function runExample(name: string, env: Record<string, string>): LoggedChild {
  const child = spawnLogged(process.execPath, ['--import', 'tsx', `examples/${name}/index.ts`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', SSF_BROKER_URL: broker.issuer, ...env },
  })
  children.push(child)
  return child
}

before(async () => {
  redis = await startTestRedis()
  broker = await startTestBroker(redis.url)
})

after(async () => {
  await Promise.all(children.map((c) => c.stop()))
  await broker?.close()
  await redis?.stop()
})

test('the examples import the package, not the sources', async () => {
  const { readFile } = await import('node:fs/promises')
  for (const name of ['resource-server', 'agent-runtime']) {
    const source = await readFile(new URL(`../examples/${name}/index.ts`, import.meta.url), 'utf8')
    assert.match(source, /from '@ssf-broker\/receiver'/, name)
    assert.doesNotMatch(source, /from '\.\.?\//, `${name} imports a relative path`)
  }
})

test(
  'resource server (push) and agent runtime (poll): a session-revoked for the user ends the agent session',
  { timeout: 90_000 },
  async () => {
    const rsClient = await broker.api.createClient(['receiver'])
    const agentClient = await broker.api.createClient(['receiver'])
    const emitter = await broker.api.createClient(['emitter'])
    const port = await freePort()

    const rs = runExample('resource-server', {
      SSF_RECEIVER_TOKEN: rsClient.token,
      SSF_RECEIVER_AUDIENCE: rsClient.audience,
      PORT: String(port),
    })
    await rs.waitFor(
      /\[resource-server\] push stream \S+: [1-9]\d* event types delivered to http:\/\/127\.0\.0\.1:\d+\/ssf\/events/,
    )

    const agent = runExample('agent-runtime', {
      SSF_RECEIVER_TOKEN: agentClient.token,
      SSF_RECEIVER_AUDIENCE: agentClient.audience,
      RESOURCE_URL: `http://127.0.0.1:${port}`,
      USER_SUB: USER,
    })
    await agent.waitFor(/\[agent-runtime\] poll stream \S+ at http/)
    await agent.waitFor(/\[agent-runtime\] session open/)

    const res = await broker.api.emit(emitter.token, {
      type: 'caep/session-revoked',
      subject: { format: 'email', email: USER },
      event: { reason_admin: { en: 'example test' }, initiating_entity: 'admin' },
    })
    assert.equal(res.status, 202, res.text)
    const { txn } = res.body as { txn: string }

    const ended = await agent.waitFor(/\[agent-runtime\] session torn down/)
    assert.match(
      ended,
      new RegExp(
        `after \\d+ ms and [1-9]\\d* ticks: (revocation received by poll \\(session-revoked, txn ${txn}\\)|the resource server closed the stream: token revoked)`,
      ),
    )
    await agent.waitFor(/\[agent-runtime\] poll loop stopped/)
    assert.equal(await agent.exited, 0, agent.output())

    await rs.waitFor(
      new RegExp(
        `\\[resource-server\\] revocation recorded: .*${USER.replace('.', '\\.')}.*\\(session-revoked, txn ${txn}\\)`,
      ),
    )
    await rs.waitFor(/\[resource-server\] SET session-revoked about/)
    assert.equal(await rs.stop(), 0, rs.output())
  },
)
