/**
 * Signing-key rotation as a receiver with a JWKS cache sees it: `POST /admin/keys/rotate` publishes the
 * new key SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS (here 2 s) before any process signs with it, so a receiver
 * that refetches the JWKS at most every 2 s (and never on an unknown kid) verifies every SET across the
 * rotation, from either of two brokers; `{"immediate": true}` switches at once.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from 'jose'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { startReceiver, type TestReceiver } from './helpers/receiver.js'
import { ADMIN_TOKEN, startTestBroker, type TestBroker } from './helpers/broker.js'

const AHEAD_SECONDS = 2
const CACHE_MS = AHEAD_SECONDS * 1000

let redis: TestRedis
let a: TestBroker
let b: TestBroker
let receiver: TestReceiver
let emitter: { token: string }

before(async () => {
  redis = await startTestRedis()
  const env = { SSF_BROKER_KEY_PUBLISH_AHEAD_SECONDS: String(AHEAD_SECONDS) }
  a = await startTestBroker(redis.url, env)
  b = await startTestBroker(redis.url, env)
  receiver = await startReceiver()
  emitter = await a.api.createClient(['emitter'])
  const rx = await a.api.createClient(['receiver'])
  await a.api.createPushStream(rx.token, receiver.url)
})

after(async () => {
  await a.close()
  await b.close()
  await receiver.close()
  await redis.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The receiver's JWKS cache: refetched (from either broker) only once it is CACHE_MS old. */
class CachedJwks {
  #fetchedAt = 0
  #jwks: JSONWebKeySet = { keys: [] }
  #turn = 0
  async get(): Promise<JSONWebKeySet> {
    if (Date.now() - this.#fetchedAt >= CACHE_MS) {
      const from = this.#turn++ % 2 === 0 ? a : b
      this.#jwks = (await from.api.request('GET', '/jwks.json')).body
      this.#fetchedAt = Date.now()
    }
    return this.#jwks
  }
}

interface Seen {
  at: number
  kid: string
  verified: boolean
}

/** Verifies each push against the cached JWKS as it arrives. */
function verifyingReceiver(cache: CachedJwks): Seen[] {
  const seen: Seen[] = []
  receiver.respond = async (push, res) => {
    const kid = decodeProtectedHeader(push.body).kid!
    const verified = await compactVerify(push.body, createLocalJWKSet(await cache.get())).then(
      () => true,
      () => false,
    )
    seen.push({ at: push.at, kid, verified })
    res.writeHead(202).end()
  }
  return seen
}

let sent = 0
const emit = (via: TestBroker) =>
  via.api.emit(emitter.token, {
    type: 'caep/session-revoked',
    subject: { format: 'email', email: `user${sent++}@example.com` },
  })

async function activeKid(alg: string): Promise<string> {
  const { keys } = (await a.api.request('GET', '/admin/keys', { token: ADMIN_TOKEN })).body
  return keys.find((k: any) => k.alg === alg && k.active).kid
}

test(
  'with publish-ahead, a receiver caching the JWKS as long verifies every SET across a rotation',
  { timeout: 60_000 },
  async () => {
    const seen = verifyingReceiver(new CachedJwks())
    const oldKid = await activeKid('RS256')
    let emitting = true
    const load = (async () => {
      for (let i = 0; emitting; i++) {
        assert.equal((await emit(i % 2 ? a : b)).status, 202)
        await sleep(50)
      }
    })()
    await sleep(1500)
    const rotation = await a.api.request('POST', '/admin/keys/rotate', {
      token: ADMIN_TOKEN,
      json: { algs: ['RS256'] },
    })
    assert.equal(rotation.status, 200)
    const [fresh] = rotation.body.rotated
    assert.equal(fresh.active, false)
    assert.equal(fresh.pending, true)
    const activatesAt = fresh.activates_at * 1000
    assert.ok(
      activatesAt - Date.now() >= AHEAD_SECONDS * 1000 - 100,
      `activates ${activatesAt - Date.now()} ms from now`,
    )
    // Both brokers publish it within a second (the rotating one at once), long before it signs.
    const rotatedAt = Date.now()
    for (const broker of [a, b]) {
      while (
        !(await broker.api.request('GET', '/jwks.json')).body.keys.some(
          (k: any) => k.kid === fresh.kid,
        )
      ) {
        assert.ok(Date.now() - rotatedAt < 1100, 'the new key is published within a second')
        await sleep(50)
      }
    }
    assert.equal(await activeKid('RS256'), oldKid, 'the old key still signs')
    while (Date.now() < activatesAt + 2500) await sleep(100)
    emitting = false
    await load
    await receiver.waitFor(sent)

    const failed = seen.filter((s) => !s.verified)
    const before = seen.filter((s) => s.at < activatesAt - 300)
    const afterwards = seen.filter((s) => s.at > activatesAt + 500)
    console.log(
      `rotation with publish-ahead: ${seen.length} SETs, ${failed.length} failed verification, ${seen.filter((s) => s.kid === fresh.kid).length} signed with the new key`,
    )
    assert.equal(failed.length, 0, 'every SET verifies with the cached JWKS')
    assert.ok(
      before.length > 10 && before.every((s) => s.kid === oldKid),
      'the old key signs until the activation time',
    )
    assert.ok(
      afterwards.length > 10 && afterwards.every((s) => s.kid === fresh.kid),
      'every process signs with the new key after it',
    )
    assert.equal(await activeKid('RS256'), fresh.kid)
  },
)

test(
  'an immediate rotation signs with the new key at once, in every process',
  { timeout: 30_000 },
  async () => {
    const cache = new CachedJwks()
    const seen = verifyingReceiver(cache)
    await cache.get()
    const rotation = await b.api.request('POST', '/admin/keys/rotate', {
      token: ADMIN_TOKEN,
      json: { algs: ['RS256'], immediate: true },
    })
    assert.equal(rotation.status, 200)
    const [fresh] = rotation.body.rotated
    assert.equal(fresh.active, true)
    assert.equal(fresh.activates_at, undefined)
    assert.equal(await activeKid('RS256'), fresh.kid)
    const count = seen.length
    assert.equal((await emit(b)).status, 202)
    await receiver.waitFor(sent)
    assert.equal(seen[count]!.kid, fresh.kid, 'the rotating process signs with it at once')
    // The other process reads the change within its refresh interval (200 ms).
    await sleep(300)
    assert.equal((await emit(a)).status, 202)
    await receiver.waitFor(sent)
    assert.equal(seen[count + 1]!.kid, fresh.kid, 'the other process too')
    // Which is what publish-ahead avoids: a JWKS cached before the rotation does not know the new key.
    assert.equal(seen[count]!.verified, false)
  },
)

test('a rotation body other than algs and a boolean immediate is refused', async () => {
  const res = await a.api.request('POST', '/admin/keys/rotate', {
    token: ADMIN_TOKEN,
    json: { immediate: 'yes' },
  })
  assert.equal(res.status, 400)
  assert.equal(res.body.error, 'invalid_request')
  assert.match(res.body.error_description, /^immediate: /)
})
