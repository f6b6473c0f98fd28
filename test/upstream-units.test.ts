/**
 * Pieces of the upstream side on their own: sealing of stored credentials, and the SSRF guard on every
 * call to an upstream (issuer, metadata endpoints, token endpoint).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { SecretBox } from '../src/upstream/secret-box.js'
import { createOutbound } from '../src/upstream/outbound.js'

test('SecretBox: sealed with AES-256-GCM under the configured key; unsealed (but marked) without one', () => {
  const box = new SecretBox('a-secrets-key-of-at-least-32-characters!')
  const sealed = box.seal('client-secret-value')
  assert.match(sealed, /^v1:/)
  assert.ok(!sealed.includes('client-secret-value'))
  assert.notEqual(box.seal('client-secret-value'), sealed, 'a fresh IV each time')
  assert.equal(box.open(sealed), 'client-secret-value')
  assert.throws(
    () => new SecretBox('another-key-of-at-least-32-characters!!').open(sealed),
    'another key cannot open it',
  )
  // A character inside the payload (every bit of it is data, unlike the last one's).
  const at = 30
  const tampered = sealed.slice(0, at) + (sealed[at] === 'A' ? 'B' : 'A') + sealed.slice(at + 1)
  assert.throws(() => box.open(tampered), 'tampering is detected')
  const plain = new SecretBox(undefined)
  assert.equal(plain.sealing, false)
  assert.equal(plain.open(plain.seal('x')), 'x')
  assert.throws(() => plain.open(sealed), /SSF_BROKER_SECRETS_KEY/)
})

test('outbound guard: loopback, private and http upstreams are refused unless private addresses are allowed', async () => {
  const server = createServer((_req, res) => res.writeHead(200).end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const strict = createOutbound({ allowPrivate: false, connectTimeoutMs: 1000 })
  const open = createOutbound({ allowPrivate: true, connectTimeoutMs: 1000 })
  try {
    assert.match(strict.check(`http://127.0.0.1:${port}/`)!, /https/)
    assert.match(strict.check('https://169.254.169.254/latest/meta-data')!, /not a public address/)
    assert.equal(strict.check('https://idp.example.com/'), undefined)
    await assert.rejects(
      request(`http://127.0.0.1:${port}/`, { dispatcher: strict.dispatcher }),
      (e: any) => e.code === 'ERR_SSRF_BLOCKED',
    )
    await assert.rejects(
      request(`https://10.1.2.3:${port}/`, { dispatcher: strict.dispatcher }),
      (e: any) => e.code === 'ERR_SSRF_BLOCKED',
    )
    // A name is checked on the address it resolves to, at connect time.
    await assert.rejects(
      request(`https://localhost:${port}/`, { dispatcher: strict.dispatcher }),
      (e: any) => /not a public address/.test(String(e?.message ?? e?.cause?.message)),
    )
    const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: open.dispatcher })
    assert.equal(await res.body.text(), 'ok')
  } finally {
    await strict.close()
    await open.close()
    server.close()
  }
})
