/**
 * The web console in a real headless Chromium against a real broker, Redis and loopback push receivers:
 * sign in, emit and watch the delivery in the live feed and the audit timeline, inspect a received SET
 * (valid) and a tampered one (invalid), pause a stream, redrive a dead letter, follow a cascade to two
 * agents, and lose the session when the token stops working. Every page is screenshotted into
 * test-output/screenshots/; no request may go to another host.
 */
import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { Locator, Page } from 'playwright-core'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'
import { CHROMIUM, openBrowser, type ConsoleBrowser } from './helpers/browser.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const alice = { format: 'email', email: 'alice@example.com' }
const agent = (name: string) => ({ format: 'uri', uri: `spiffe://example.org/agent/${name}` })

let redis: TestRedis
let broker: TestBroker
let sink: TestReceiver
let stream: { stream_id: string }
let emitter: { token: string; client_id: string }
let receiver: { token: string; client_id: string; audience: string }
let b: ConsoleBrowser
let page: Page
const extraSinks: TestReceiver[] = []

before(async () => {
  assert.ok(
    existsSync(new URL('../dist/console/assets/console.js', import.meta.url)),
    'the console is built (npm run build)',
  )
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium at ${CHROMIUM} (apt-get install chromium, or set SSF_TEST_CHROMIUM)`,
  )
  redis = await startTestRedis()
  // NONE: a stream receives only the subjects it added, so each agent's stream hears only about its agent.
  broker = await startTestBroker(redis.url, { SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' })
  emitter = await broker.api.createClient(['emitter'])
  receiver = await broker.api.createClient(['receiver'])
  sink = await startReceiver()
  stream = await subscribe(sink, alice)
  b = await openBrowser(broker.url)
  page = b.page
})

afterEach(() => {
  assert.deepEqual(b.foreign(), [], 'requests to another host')
  assert.deepEqual(b.problems(), [], 'script errors or CSP violations')
})

after(async () => {
  await b?.close()
  for (const s of [sink, ...extraSinks]) await s?.close()
  await broker?.close()
  await redis?.stop()
})

async function subscribe(target: TestReceiver, subject: unknown): Promise<{ stream_id: string }> {
  const created = await broker.api.createPushStream(receiver.token, target.url, {
    events_requested: [SESSION_REVOKED],
  })
  const add = await broker.api.request('POST', '/ssf/subjects/add', {
    token: receiver.token,
    json: { stream_id: created.stream_id, subject },
  })
  assert.equal(add.status, 200, add.text)
  return created
}

const feed = () => page.getByRole('log', { name: 'Live feed' })
const nav = (name: string) =>
  page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true })

/** Runs `action` (e.g. a search) until `target` appears: audit records are written just after delivery. */
async function until(
  target: Locator,
  action: () => Promise<unknown>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await action()
    try {
      await target.first().waitFor({ timeout: 1000 })
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
    }
  }
}

async function emitFromPage(type: string, subject: unknown): Promise<string> {
  await nav('Emit').click()
  await page.getByLabel('Event type').selectOption(type)
  await page.getByRole('textbox', { name: 'Subject' }).fill(JSON.stringify(subject))
  await page.getByRole('textbox', { name: 'Emitter token (optional)' }).fill(emitter.token)
  await page.getByRole('button', { name: 'Emit', exact: true }).click()
  const txn = page.getByRole('status').filter({ hasText: 'Accepted' })
  await txn.waitFor()
  return (await page.locator('output[aria-label="txn"]').textContent())!.trim()
}

test('sign in: a wrong token is refused, the admin token (typed and submitted by keyboard) opens the Overview', async () => {
  await page.goto(`${broker.url}/console`)
  const token = page.getByRole('textbox', { name: 'Admin token' })
  await token.fill('not-a-valid-token')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'That token is not valid.' }).waitFor()
  await token.fill(ADMIN_TOKEN)
  await token.press('Enter')
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()
  await page.locator('.card', { hasText: 'Readiness' }).filter({ hasText: 'ready' }).waitFor()
  await page.locator('.card', { hasText: 'Outbox depth' }).waitFor()
  // The token is in this tab's sessionStorage, never in the URL or a cookie.
  assert.equal(await page.evaluate("sessionStorage.getItem('ssf-console-token')"), ADMIN_TOKEN)
  assert.ok(!page.url().includes(ADMIN_TOKEN))
  assert.deepEqual(await b.context.cookies(), [])
  assert.ok(b.requests.every((u) => !u.includes(ADMIN_TOKEN)))
  await b.screenshot('overview')
})

test("emit: the API's error text for a bad subject; a session-revoked delivery in the live feed with its latency, then its audit timeline", async () => {
  await nav('Emit').click()
  await page.getByLabel('Event type').selectOption('caep/session-revoked')
  await page.getByRole('textbox', { name: 'Subject' }).fill('{"format":"email"}')
  await page.getByRole('textbox', { name: 'Emitter token (optional)' }).fill(emitter.token)
  await page.getByRole('button', { name: 'Emit', exact: true }).click()
  const expected = await broker.api.emit(emitter.token, {
    type: 'caep/session-revoked',
    subject: { format: 'email' },
  })
  assert.equal(expected.status, 400)
  await page.getByRole('alert').filter({ hasText: expected.body.error_description }).waitFor()

  const txn = await emitFromPage('caep/session-revoked', alice)
  await sink.waitFor(1)
  const delivered = feed().locator('li.delivered').filter({ hasText: txn })
  await delivered.waitFor()
  const text = (await delivered.textContent())!
  assert.match(text, /\d+ ms/, 'the delivery shows its latency')
  assert.ok(text.includes(stream.stream_id), 'and its stream')
  await feed().locator('li.ingested').filter({ hasText: txn }).waitFor()
  await feed().locator('li.minted').filter({ hasText: txn }).waitFor()
  await b.screenshot('emit')

  await page.getByRole('link', { name: 'Audit timeline' }).click()
  const timeline = page.getByRole('region', { name: `Timeline of txn ${txn}` })
  await until(timeline.locator('.attempts li', { hasText: 'delivered' }), () =>
    page.getByRole('button', { name: 'Search' }).click(),
  )
  await timeline.locator('.step.ingested').waitFor()
  assert.match(
    (await timeline.locator('.step.minted').first().textContent())!,
    /\+\d+ ms.*minted.*delivered \d+ ms after the event/s,
  )
  await page.getByText(/Hash chain intact: \d+ records checked/).waitFor()
  await b.screenshot('audit')
})

test("inspect: a received SET is valid against the broker's JWKS; tampered, invalid; another issuer's with its pasted JWKS", async () => {
  const [push] = await sink.waitFor(1)
  const set = push!.body
  await nav('Inspect').click()
  const verdict = page.getByRole('status', { name: 'Verification result' })
  await page.getByRole('textbox', { name: 'SET' }).fill(set)
  await page.getByRole('button', { name: 'Verify' }).click()
  await verdict.filter({ hasText: /^valid$/ }).waitFor()
  for (const check of ['signature', 'typ', 'iss', 'aud', 'iat', 'events']) {
    assert.equal(
      (await page.locator(`tr[data-check="${check}"] .pill`).textContent())?.trim(),
      'pass',
      check,
    )
  }
  await page.getByText('"txn"').first().waitFor()
  await b.screenshot('inspect')

  const [h, p, s] = set.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub_id: { format: 'email', email: 'mallory@example.com' } })).toString('base64url')}.${s}`
  await page.getByRole('textbox', { name: 'SET' }).fill(tampered)
  await page.getByRole('button', { name: 'Verify' }).click()
  await verdict.filter({ hasText: /^invalid$/ }).waitFor()
  assert.equal(
    (await page.locator('tr[data-check="signature"] .pill').textContent())?.trim(),
    'fail',
  )
  assert.equal((await page.locator('tr[data-check="iss"] .pill').textContent())?.trim(), 'pass')

  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'other-1', alg: 'ES256', use: 'sig' }
  const other = await new SignJWT({ jti: 'x1', events: { [SESSION_REVOKED]: {} }, sub_id: alice })
    .setProtectedHeader({ alg: 'ES256', kid: 'other-1', typ: 'secevent+jwt' })
    .setIssuer('https://idp.example.com')
    .setAudience('https://rp.example.com')
    .setIssuedAt()
    .sign(privateKey)
  await page.getByRole('textbox', { name: 'SET' }).fill(other)
  await page.getByRole('textbox', { name: 'Expected issuer' }).fill('https://idp.example.com')
  await page
    .getByRole('textbox', { name: 'Expected audience (optional)' })
    .fill('https://rp.example.com')
  await page
    .getByRole('textbox', { name: 'JWKS of another issuer (optional)' })
    .fill(JSON.stringify({ keys: [jwk] }))
  await page.getByRole('button', { name: 'Verify' }).click()
  await verdict.filter({ hasText: /^valid$/ }).waitFor()
  await page
    .getByRole('textbox', { name: 'Expected audience (optional)' })
    .fill('https://someone-else.example.com')
  await page.getByRole('button', { name: 'Verify' }).click()
  await verdict.filter({ hasText: /^invalid$/ }).waitFor()
  assert.equal((await page.locator('tr[data-check="aud"] .pill').textContent())?.trim(), 'fail')
})

test('streams: pause a stream and see its status change, enable it again; its detail lists deliveries with status and latency', async () => {
  await nav('Streams').click()
  const row = page.locator(`tr[data-stream-id="${stream.stream_id}"]`)
  await row.locator('.pill', { hasText: 'enabled' }).waitFor()
  await page
    .getByRole('textbox', { name: 'Reason for a status change (optional)' })
    .fill('maintenance window')
  await row.getByRole('button', { name: `Pause stream ${stream.stream_id}` }).click()
  await row.locator('.pill', { hasText: 'paused' }).waitFor()
  await row.getByText('maintenance window').waitFor()
  const listed = await broker.api.request('GET', '/admin/streams', { token: ADMIN_TOKEN })
  assert.equal(
    listed.body.streams.find((x: any) => x.stream_id === stream.stream_id).status,
    'paused',
  )
  await b.screenshot('streams')
  await row.getByRole('button', { name: `Enable stream ${stream.stream_id}` }).click()
  await row.locator('.pill', { hasText: 'enabled' }).waitFor()

  await row.getByRole('link', { name: stream.stream_id }).click()
  await page.getByRole('heading', { name: `Stream ${stream.stream_id}` }).waitFor()
  const delivery = page.locator('tbody tr', { hasText: 'delivered' }).first()
  await delivery.waitFor()
  assert.match((await delivery.textContent())!, /202.*\d+ ms/s)
  await b.screenshot('stream')
})

test('dead letters: a SET the receiver refused is listed, inspected and redriven to it', async () => {
  sink.respond = (_push, res) =>
    void res
      .writeHead(400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ err: 'invalid_request', description: 'rejected for the test' }))
  const res = await broker.api.emit(emitter.token, { type: 'caep/session-revoked', subject: alice })
  const txn = res.body.txn as string
  await feed().locator('li.failed').filter({ hasText: txn }).waitFor()
  const before = sink.received.length
  sink.respond = (_push, r) => void r.writeHead(202).end()

  await nav('Dead letters').click()
  const row = page.locator('tbody tr').filter({ hasText: stream.stream_id })
  await row.waitFor()
  await row.locator('summary').click()
  await row.getByText(txn).waitFor()
  await row.getByText('rejected for the test').waitFor()
  await b.screenshot('dead-letters')
  await row.getByRole('button', { name: /^Inspect dead letter/ }).click()
  await page.getByRole('heading', { name: 'Inspect', level: 1 }).waitFor()
  await page
    .getByRole('status', { name: 'Verification result' })
    .filter({ hasText: /^valid$/ })
    .waitFor()

  await nav('Dead letters').click()
  await row.getByRole('button', { name: /^Redrive dead letter/ }).click()
  await page.getByRole('status').filter({ hasText: 'Redriven: 1.' }).waitFor()
  await page.getByText('No dead letters.').waitFor()
  const received = await sink.waitFor(before + 1)
  assert.ok(
    received
      .slice(before)
      .some(
        (p) => JSON.parse(Buffer.from(p.body.split('.')[1]!, 'base64url').toString()).txn === txn,
      ),
    'the redriven SET reached the receiver',
  )
  await feed().locator('li.delivered').filter({ hasText: txn }).waitFor()
})

test('agents: a revocation cascades to two agents, shown in Agents (the delegation graph) and Audit; a delegation revoked from there', async () => {
  const register = async (body: Record<string, unknown>) => {
    const r = await broker.api.request('POST', '/agents', {
      token: emitter.token,
      json: { task: 'triage mail', scopes: ['mail.read'], expires_in: 3600, ...body },
    })
    assert.equal(r.status, 201, r.text)
    return r.body as { agent_id: string }
  }
  const a = await register({ agent: agent('a'), delegator: alice })
  const bAgent = await register({ agent: agent('b'), delegator: agent('a') })
  const sinkA = await startReceiver()
  const sinkB = await startReceiver()
  extraSinks.push(sinkA, sinkB)
  await subscribe(sinkA, agent('a'))
  await subscribe(sinkB, agent('b'))

  await nav('Agents').click()
  await page.getByRole('textbox', { name: 'Subject' }).fill(JSON.stringify(alice))
  await page.getByRole('button', { name: 'Show agents' }).click()
  const graph = page.getByRole('list', { name: 'Delegation graph' })
  const nodeA = graph.locator(`li[data-agent-id="${a.agent_id}"]`)
  await nodeA.locator(`li[data-agent-id="${bAgent.agent_id}"]`).waitFor()
  await page.getByText('2 agents acting for alice@example.com.').waitFor()
  await nodeA
    .getByText(/expires in \d+ min/)
    .first()
    .waitFor()
  await b.screenshot('agents')

  const txn = await emitFromPage('caep/session-revoked', alice)
  await sinkA.waitFor(1)
  await sinkB.waitFor(1)
  await feed().locator('li.delivered').filter({ hasText: txn }).nth(4).waitFor()

  await nav('Audit').click()
  await page.getByRole('textbox', { name: 'txn' }).fill(txn)
  const timeline = page.getByRole('region', { name: `Timeline of txn ${txn}` })
  await until(timeline.locator('.attempts li', { hasText: 'delivered' }).nth(4), () =>
    page.getByRole('button', { name: 'Search' }).click(),
  )
  assert.equal(await timeline.locator('.step.derived').count(), 2, 'derived for two agents')
  await timeline.locator('.step.derived', { hasText: 'spiffe://example.org/agent/a' }).waitFor()
  await timeline.locator('.step.derived', { hasText: 'spiffe://example.org/agent/b' }).waitFor()
  // Alice's stream follows her, so it gets her SET and both agents' (their sub_id names her as user).
  assert.equal(
    await timeline.locator('.step.minted').count(),
    5,
    "three SETs for alice's stream, one per agent stream",
  )
  await b.screenshot('audit-cascade')

  await nav('Agents').click()
  await page.getByRole('textbox', { name: 'Subject' }).fill(JSON.stringify(alice))
  await page.getByRole('button', { name: 'Show agents' }).click()
  await graph.locator(`li[data-agent-id="${bAgent.agent_id}"]`).waitFor()
  await page
    .getByRole('button', { name: 'Revoke delegation of spiffe://example.org/agent/b' })
    .click()
  await page.getByRole('button', { name: 'Confirm revoke' }).click()
  await page.getByText('1 agent acting for alice@example.com.').waitFor()
  const left = await broker.api.request(
    'GET',
    `/agents?subject=${encodeURIComponent(JSON.stringify(alice))}`,
    { token: ADMIN_TOKEN },
  )
  assert.deepEqual(
    left.body.agents.map((x: any) => x.agent_id),
    [a.agent_id],
  )
})

test('readable at phone width: navigation wraps, tables become cards, the live feed stays on the page', async () => {
  await page.setViewportSize({ width: 390, height: 844 })
  await nav('Streams').click()
  await page.locator(`tr[data-stream-id="${stream.stream_id}"]`).waitFor()
  const width = await page.evaluate<number>('document.documentElement.scrollWidth')
  assert.ok(width <= 390, `no horizontal scrolling at phone width (${width} px)`)
  await feed().waitFor()
  await b.screenshot('streams-phone')
  await page.setViewportSize({ width: 1400, height: 900 })
})

test('a token that stops working brings back the sign-in', async () => {
  await nav('Overview').click()
  await page
    .locator('.card', { hasText: 'Event→delivery p50' })
    .filter({ hasText: /[1-9]\d* deliveries/ })
    .waitFor()
  await b.screenshot('overview-busy')
  const operator = await broker.api.createClient(['admin'])
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByRole('textbox', { name: 'Admin token' }).fill(operator.token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await nav('Dead letters').click()
  await page.getByText('No dead letters.').waitFor()
  assert.equal(
    (
      await broker.api.request('DELETE', `/admin/clients/${operator.client_id}`, {
        token: ADMIN_TOKEN,
      })
    ).status,
    204,
  )
  await nav('Streams').click()
  await page
    .getByRole('alert')
    .filter({ hasText: 'The token stopped working (401). Sign in again.' })
    .waitFor()
  await page.getByRole('textbox', { name: 'Admin token' }).waitFor()
  assert.equal(await page.evaluate("sessionStorage.getItem('ssf-console-token')"), null)
})
