/**
 * The receiver SDK's `verify` test vectors (SSF §4.1 SET profile, RFC 8417, RFC 7515): valid SETs for each
 * default algorithm pass; every defect is refused with its own stable code. The transmitter is a real
 * HTTP server on loopback serving SSF metadata and a JWKS, so discovery and key refetch are exercised.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CompactSign, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import {
  createReceiver,
  isReceiverError,
  ReceiverError,
  type Receiver,
  type ReceiverOptions,
} from '../src/receiver/index.js'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const AUDIENCE = 'rs-audience-1'

interface TestKey {
  alg: 'RS256' | 'ES256' | 'EdDSA'
  kid: string
  privateKey: CryptoKey
  publicKey: CryptoKey
  jwk: JWK
}

async function makeKey(
  alg: TestKey['alg'],
  kid = `${alg}-${randomUUID().slice(0, 8)}`,
): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(
    alg,
    alg === 'RS256'
      ? { modulusLength: 2048, extractable: true }
      : alg === 'EdDSA'
        ? { crv: 'Ed25519', extractable: true }
        : { extractable: true },
  )
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  }
}

/** A minimal SSF transmitter: metadata + JWKS; counts JWKS fetches. */
class FakeTransmitter {
  server: Server = createServer((req, res) => this.#handle(req.url ?? '', res))
  issuer = ''
  keys: JWK[] = []
  jwksFetches = 0
  metadataIssuer: string | undefined
  criticalSubjectMembers: string[] | undefined

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  #handle(url: string, res: import('node:http').ServerResponse): void {
    if (url === '/.well-known/ssf-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          spec_version: '1_0',
          issuer: this.metadataIssuer ?? this.issuer,
          jwks_uri: `${this.issuer}/jwks.json`,
          delivery_methods_supported: ['urn:ietf:rfc:8935'],
          ...(this.criticalSubjectMembers
            ? { critical_subject_members: this.criticalSubjectMembers }
            : {}),
        }),
      )
    } else if (url === '/jwks.json') {
      this.jwksFetches++
      res
        .writeHead(200, { 'content-type': 'application/jwk-set+json' })
        .end(JSON.stringify({ keys: this.keys }))
    } else res.writeHead(404).end()
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.closeAllConnections()
      this.server.close(() => r())
    })
  }
}

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

let tx: FakeTransmitter
let rs: TestKey
let es: TestKey
let ed: TestKey

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: tx.issuer,
    aud: AUDIENCE,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    txn: randomUUID(),
    sub_id: { format: 'iss_sub', iss: 'https://idp.example', sub: 'alice' },
    events: {
      [SESSION_REVOKED]: {
        event_timestamp: Math.floor(Date.now() / 1000),
        initiating_entity: 'admin',
        reason_admin: { en: 'test' },
      },
    },
    ...overrides,
  }
}

async function sign(
  key: TestKey,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const protectedHeader = { alg: key.alg, kid: key.kid, typ: 'secevent+jwt', ...header }
  for (const [k, v] of Object.entries(protectedHeader))
    if (v === undefined) delete (protectedHeader as Record<string, unknown>)[k]
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(protectedHeader as { alg: string })
    .sign(key.privateKey)
}

function receiverFor(extra: Partial<ReceiverOptions> = {}): Receiver {
  return createReceiver({
    issuer: tx.issuer,
    audience: AUDIENCE,
    allowInsecureIssuer: true,
    ...extra,
  })
}

async function rejects(
  receiver: Receiver,
  compact: string,
  code: ReceiverError['code'],
): Promise<ReceiverError> {
  let caught: unknown
  try {
    await receiver.verify(compact)
  } catch (error) {
    caught = error
  }
  assert.ok(
    caught instanceof ReceiverError,
    `expected ReceiverError ${code}, got ${caught === undefined ? 'success' : String(caught)}`,
  )
  assert.equal(caught.code, code, caught.message)
  return caught
}

before(async () => {
  tx = new FakeTransmitter()
  await tx.start()
  ;[rs, es, ed] = await Promise.all([makeKey('RS256'), makeKey('ES256'), makeKey('EdDSA')])
  tx.keys = [rs.jwk, es.jwk, ed.jwk]
})

after(() => tx.close())

describe('valid SETs pass', () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    test(`${alg}`, async () => {
      const key = alg === 'RS256' ? rs : alg === 'ES256' ? es : ed
      const receiver = receiverFor()
      const payload = claims()
      const set = await receiver.verify(await sign(key, payload))
      assert.equal(set.jti, payload.jti)
      assert.equal(set.iss, tx.issuer)
      assert.equal(set.aud, AUDIENCE)
      assert.equal(set.iat, payload.iat)
      assert.equal(set.txn, payload.txn)
      assert.equal(set.type, SESSION_REVOKED)
      assert.deepEqual(set.subject, payload.sub_id)
      assert.deepEqual(set.event, (payload.events as Record<string, unknown>)[SESSION_REVOKED])
      assert.equal(set.header.alg, alg)
    })
  }

  test('aud as an array, iat within the clock tolerance, typ with the application/ prefix', async () => {
    const receiver = receiverFor()
    const set = await receiver.verify(
      await sign(es, claims({ aud: ['other', AUDIENCE], iat: Math.floor(Date.now() / 1000) + 3 }), {
        typ: 'application/secevent+jwt',
      }),
    )
    assert.deepEqual(set.aud, ['other', AUDIENCE])
  })

  test('a legacy in-event subject is accepted only when allowed', async () => {
    const event = { subject: { format: 'email', email: 'bob@example.com' }, event_timestamp: 1 }
    const payload = claims({ sub_id: undefined, events: { [SESSION_REVOKED]: event } })
    delete payload.sub_id
    await rejects(receiverFor(), await sign(es, payload), 'ERR_SET_SUBJECT_INVALID')
    const set = await receiverFor({ allowLegacySubject: true }).verify(
      await sign(es, { ...payload, jti: randomUUID() }),
    )
    assert.deepEqual(set.subject, event.subject)
  })
})

describe('each defect is refused with its own code', () => {
  const seen = new Map<string, string>()
  const vector = (
    name: string,
    code: ReceiverError['code'],
    setErr: string,
    build: () => Promise<string>,
    receiverOptions: Partial<ReceiverOptions> = {},
  ) =>
    test(`${name} → ${code} (${setErr})`, async () => {
      const error = await rejects(receiverFor(receiverOptions), await build(), code)
      assert.equal(error.setErr, setErr)
      seen.set(name, code)
    })

  vector(
    'alg: none',
    'ERR_SET_UNSECURED',
    'invalid_key',
    async () => `${b64({ alg: 'none', typ: 'secevent+jwt' })}.${b64(claims())}.`,
  )
  vector('HS256 signed with the public key', 'ERR_SET_ALG_NOT_ALLOWED', 'invalid_key', async () => {
    // The classic key-confusion attack: the transmitter's public key used as an HMAC secret.
    const secret = await exportSPKI(rs.publicKey)
    const input = `${b64({ alg: 'HS256', kid: rs.kid, typ: 'secevent+jwt' })}.${b64(claims())}`
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
  })
  vector('wrong typ', 'ERR_SET_TYP_INVALID', 'invalid_request', () =>
    sign(es, claims(), { typ: 'JWT' }),
  )
  vector('missing typ', 'ERR_SET_TYP_MISSING', 'invalid_request', () =>
    sign(es, claims(), { typ: undefined }),
  )
  vector('wrong iss', 'ERR_SET_ISSUER_INVALID', 'invalid_issuer', () =>
    sign(es, claims({ iss: 'https://evil.example' })),
  )
  vector('wrong aud', 'ERR_SET_AUDIENCE_INVALID', 'invalid_audience', () =>
    sign(es, claims({ aud: 'someone-else' })),
  )
  vector('iat in the future', 'ERR_SET_IAT_IN_FUTURE', 'invalid_request', () =>
    sign(es, claims({ iat: Math.floor(Date.now() / 1000) + 3600 })),
  )
  vector('exp present', 'ERR_SET_EXP_PRESENT', 'invalid_request', () =>
    sign(es, claims({ exp: Math.floor(Date.now() / 1000) + 3600 })),
  )
  vector('sub present', 'ERR_SET_SUB_PRESENT', 'invalid_request', () =>
    sign(es, claims({ sub: 'alice' })),
  )
  vector('two events', 'ERR_SET_MULTIPLE_EVENTS', 'invalid_request', () =>
    sign(
      es,
      claims({
        events: {
          [SESSION_REVOKED]: {},
          'https://schemas.openid.net/secevent/caep/event-type/credential-change': {
            credential_type: 'password',
            change_type: 'update',
          },
        },
      }),
    ),
  )
  vector('tampered payload', 'ERR_SET_SIGNATURE_INVALID', 'invalid_key', async () => {
    const [h, , s] = (await sign(es, claims())).split('.')
    return `${h}.${b64(claims({ sub_id: { format: 'email', email: 'mallory@example.com' } }))}.${s}`
  })
  vector(
    'encrypted (JWE)',
    'ERR_SET_ENCRYPTED',
    'invalid_request',
    async () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d',
  )
  vector('no sub_id', 'ERR_SET_SUBJECT_INVALID', 'invalid_request', async () => {
    const payload = claims()
    delete payload.sub_id
    return sign(es, payload)
  })
  vector('no iat', 'ERR_SET_IAT_INVALID', 'invalid_request', async () => {
    const payload = claims()
    delete payload.iat
    return sign(es, payload)
  })
  vector('no jti', 'ERR_SET_JTI_INVALID', 'invalid_request', async () => {
    const payload = claims()
    delete payload.jti
    return sign(es, payload)
  })
  vector(
    'too old (maxAgeSeconds)',
    'ERR_SET_TOO_OLD',
    'invalid_request',
    () => sign(es, claims({ iat: Math.floor(Date.now() / 1000) - 7200 })),
    { maxAgeSeconds: 3600 },
  )
  vector('not a JWS', 'ERR_SET_MALFORMED', 'invalid_request', async () => 'not-a-set')
  vector(
    'RSA key under a kid, signature claims ES256',
    'ERR_SET_KEY_INVALID',
    'invalid_key',
    async () => {
      const input = `${b64({ alg: 'ES256', kid: rs.kid, typ: 'secevent+jwt' })}.${b64(claims())}`
      return `${input}.${Buffer.alloc(64).toString('base64url')}`
    },
  )

  test('unknown kid → ERR_SET_KEY_NOT_FOUND after one refetch; a second one within the cooldown does not refetch', async () => {
    const receiver = receiverFor()
    await receiver.verify(await sign(es, claims()))
    const before = receiver.jwksFetches
    const stranger = await makeKey('ES256', 'never-published')
    const error = await rejects(receiver, await sign(stranger, claims()), 'ERR_SET_KEY_NOT_FOUND')
    assert.equal(error.setErr, 'invalid_key')
    assert.equal(receiver.jwksFetches, before + 1, 'an unknown kid refetches the JWKS')
    await rejects(receiver, await sign(stranger, claims()), 'ERR_SET_KEY_NOT_FOUND')
    assert.equal(
      receiver.jwksFetches,
      before + 1,
      'within the cooldown the JWKS is not fetched again',
    )
    seen.set('unknown kid', 'ERR_SET_KEY_NOT_FOUND')
  })

  test('replayed jti → ERR_SET_REPLAYED', async () => {
    const receiver = receiverFor()
    const compact = await sign(ed, claims())
    await receiver.verify(compact)
    await rejects(receiver, compact, 'ERR_SET_REPLAYED')
    seen.set('replayed jti', 'ERR_SET_REPLAYED')
  })

  test('the required vectors each have a code of their own', () => {
    const required = [
      'alg: none',
      'HS256 signed with the public key',
      'wrong typ',
      'missing typ',
      'wrong iss',
      'wrong aud',
      'iat in the future',
      'exp present',
      'sub present',
      'two events',
      'tampered payload',
      'unknown kid',
      'replayed jti',
    ]
    for (const name of required) assert.ok(seen.has(name), `vector "${name}" ran`)
    const codes = required.map((n) => seen.get(n))
    assert.equal(new Set(codes).size, required.length, `codes are distinct: ${codes.join(', ')}`)
  })
})

describe('keys and discovery', () => {
  test('a key published after the first fetch (rotation) is found by refetching', async () => {
    const receiver = receiverFor()
    await receiver.verify(await sign(es, claims()))
    const rotated = await makeKey('ES256')
    tx.keys = [...tx.keys, rotated.jwk]
    try {
      const set = await receiver.verify(await sign(rotated, claims()))
      assert.equal(set.header.kid, rotated.kid)
    } finally {
      tx.keys = tx.keys.filter((k) => k.kid !== rotated.kid)
    }
  })

  test('ready() discovers and fetches the keys up front; verification then needs no fetch', async () => {
    const receiver = receiverFor()
    const metadata = await receiver.ready()
    assert.equal(metadata.issuer, tx.issuer)
    assert.equal(receiver.jwksFetches, 1)
    await receiver.verify(await sign(rs, claims()))
    assert.equal(receiver.jwksFetches, 1)
  })

  test('a JWKS older than maxAgeMs is refreshed in the background', async () => {
    const receiver = receiverFor({ jwks: { maxAgeMs: 1 } })
    await receiver.verify(await sign(es, claims()))
    await new Promise((r) => setTimeout(r, 10))
    await receiver.verify(await sign(es, claims()))
    for (let i = 0; i < 100 && receiver.jwksFetches < 2; i++)
      await new Promise((r) => setTimeout(r, 5))
    assert.equal(receiver.jwksFetches, 2)
  })

  test('keys with private material or a weak RSA modulus are ignored', async () => {
    // jose refuses to make one; WebCrypto will.
    const weak = (await globalThis.crypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      true,
      ['sign', 'verify'],
    )) as unknown as { privateKey: CryptoKey; publicKey: CryptoKey }
    const weakKey: TestKey = {
      alg: 'RS256',
      kid: 'weak-rsa',
      privateKey: weak.privateKey,
      publicKey: weak.publicKey,
      jwk: { ...(await exportJWK(weak.publicKey)), kid: 'weak-rsa', alg: 'RS256' },
    }
    const leaky = await makeKey('ES256', 'leaky')
    tx.keys = [
      ...tx.keys,
      weakKey.jwk,
      { ...(await exportJWK(leaky.privateKey)), kid: 'leaky', alg: 'ES256' },
    ]
    try {
      // jose will not sign with a 1024-bit key either: sign with WebCrypto directly.
      const input = `${b64({ alg: 'RS256', kid: 'weak-rsa', typ: 'secevent+jwt' })}.${b64(claims())}`
      const sig = await globalThis.crypto.subtle.sign(
        'RSASSA-PKCS1-v1_5',
        weakKey.privateKey,
        new TextEncoder().encode(input),
      )
      await rejects(
        receiverFor(),
        `${input}.${Buffer.from(sig).toString('base64url')}`,
        'ERR_SET_KEY_INVALID',
      )
      await rejects(receiverFor(), await sign(leaky, claims()), 'ERR_SET_KEY_NOT_FOUND')
    } finally {
      tx.keys = tx.keys.filter((k) => k.kid !== 'weak-rsa' && k.kid !== 'leaky')
    }
  })

  test('metadata naming another issuer is not used', async () => {
    tx.metadataIssuer = 'https://other.example'
    try {
      const error = await receiverFor()
        .verify(await sign(es, claims()))
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      assert.ok(isReceiverError(error, 'ERR_DISCOVERY_ISSUER_MISMATCH'), String(error))
      assert.equal((error as ReceiverError).setErr, undefined)
    } finally {
      tx.metadataIssuer = undefined
    }
  })

  test('a critical subject member the receiver does not process → ERR_SET_SUBJECT_UNSUPPORTED (SSF §3.6); agent is understood', async () => {
    tx.criticalSubjectMembers = ['agent', 'posture']
    try {
      const user = { format: 'iss_sub', iss: 'https://idp.example', sub: 'alice' }
      const posture = { format: 'complex', user, posture: { format: 'opaque', id: 'p1' } }
      await rejects(
        receiverFor(),
        await sign(es, claims({ sub_id: posture })),
        'ERR_SET_SUBJECT_UNSUPPORTED',
      )
      await receiverFor({ subjectMembers: ['posture'] }).verify(
        await sign(es, claims({ sub_id: posture })),
      )
      const agent = {
        format: 'complex',
        user,
        agent: { format: 'uri', uri: 'spiffe://example.org/agent' },
      }
      await receiverFor().verify(await sign(es, claims({ sub_id: agent })))
    } finally {
      tx.criticalSubjectMembers = undefined
    }
  })

  test('misuse is a TypeError at construction', () => {
    assert.throws(
      () => createReceiver({ issuer: tx.issuer, audience: AUDIENCE }),
      TypeError,
      'http issuer without allowInsecureIssuer',
    )
    assert.throws(
      () =>
        createReceiver({
          issuer: 'https://tr.example',
          audience: AUDIENCE,
          algorithms: ['HS256' as never],
        }),
      TypeError,
    )
    assert.throws(
      () =>
        createReceiver({
          issuer: 'https://tr.example',
          audience: AUDIENCE,
          algorithms: ['none' as never],
        }),
      TypeError,
    )
    assert.throws(
      () => createReceiver({ issuer: 'https://tr.example?x=1', audience: AUDIENCE }),
      TypeError,
    )
    assert.throws(() => createReceiver({ issuer: 'https://tr.example', audience: [] }), TypeError)
  })
})

test('the SDK imports no broker server code, and loads neither hono nor ioredis at runtime', () => {
  const dir = new URL('../src/receiver/', import.meta.url)
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))
  assert.ok(files.length > 5)
  for (const file of files) {
    const source = readFileSync(new URL(file, dir), 'utf8')
    for (const [, typeOnly, from] of source.matchAll(
      /^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm,
    )) {
      assert.ok(!from!.startsWith('..'), `${file} imports ${from}`)
      if (
        from === 'ioredis' ||
        from === 'hono' ||
        from!.startsWith('hono/') ||
        from === '@hono/node-server'
      )
        assert.ok(typeOnly, `${file} loads ${from} at runtime`)
    }
  }
})
