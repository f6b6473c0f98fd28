/**
 * A client that breaks off in the middle of a request body (with a Content-Length or chunked): the broker
 * answers 400 (to nobody), logs no unhandled error, and stores nothing.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { Api, freePort, testEnv } from './helpers/broker.js'
import { eventsIngested } from './helpers/ingest.js'
import { loadConfig } from '../src/config/config.js'
import { startBroker, type Broker } from '../src/broker.js'
import type { Logger } from '../src/lib/log.js'

let redis: TestRedis
let broker: Broker
const errors: { msg: string; fields?: Record<string, unknown> }[] = []

const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (msg, fields) => void errors.push({ msg, ...(fields ? { fields } : {}) }),
}

before(async () => {
  redis = await startTestRedis()
  broker = await startBroker(loadConfig(testEnv(redis.url, await freePort())), logger)
})
after(async () => {
  await broker.close()
  await redis.stop()
})

/** 400s answered on POST /events so far (ssf_broker_http_requests_total). */
async function refusedIngests(): Promise<number> {
  const text = await (await fetch(`${broker.url}/metrics`)).text()
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('ssf_broker_http_requests_total{') &&
        l.includes('method="POST"') &&
        l.includes('route="/events"') &&
        l.includes('status="400"'),
    )
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}

const FRAMINGS: [string, string, (part: string) => string][] = [
  ['before its Content-Length', 'Content-Length: 500', (part) => part],
  [
    'in the middle of a chunked body',
    'Transfer-Encoding: chunked',
    (part) => `${part.length.toString(16)}\r\n${part}\r\n`,
  ],
]

for (const [where, header, frame] of FRAMINGS) {
  test(`a body cut off ${where} is a 400, not an unhandled error, and nothing is stored`, async () => {
    const api = new Api(broker.url)
    const emitter = await api.createClient(['emitter'])
    const ingested = await eventsIngested(broker.url)
    const refused = await refusedIngests()
    const { port, hostname } = new URL(broker.url)
    const part = '{"type":"caep/session-revoked","subject":{"format":"opaque","id":"al'
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          `POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${emitter.token}\r\n` +
            `Content-Type: application/json\r\n${header}\r\n\r\n${frame(part)}`,
        )
        // Gone before the rest of the body.
        setTimeout(() => socket.destroy(), 100)
      })
      socket.on('close', () => resolve())
      socket.on('error', reject)
    })
    // The broker answers the cut-off request once it notices; wait for that answer to be counted.
    for (let i = 0; i < 100 && (await refusedIngests()) === refused; i++)
      await new Promise((r) => setTimeout(r, 50))
    assert.equal(await refusedIngests(), refused + 1, 'the cut-off request was answered 400')
    assert.deepEqual(
      errors.filter((e) => e.msg === 'unhandled error'),
      [],
    )
    assert.equal(await eventsIngested(broker.url), ingested)
  })
}
