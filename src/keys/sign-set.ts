/**
 * The one place SETs are signed (SSF §4.1, RFC 8417 §2): header `{alg, kid, typ: "secevent+jwt"}`,
 * claims `iss`, `aud`, `iat` (whole seconds, never ahead of the clock), `jti`, `txn`, `sub_id` and
 * `events` with exactly one member. `sub` and `exp` are never present.
 */
import { KeyObject, sign } from 'node:crypto'
import type { KeyStore, SigningKey } from './keystore.js'
import type { SigningAlg } from '../config/config.js'

export interface SetClaims {
  iss: string
  aud: string | string[]
  jti: string
  txn: string
  sub_id: unknown
  eventType: string
  event: Record<string, unknown>
}

/**
 * Signing is done with node:crypto directly rather than through WebCrypto (jose's CompactSign): a
 * synchronous OpenSSL signature with a KeyObject costs about half the CPU of an asynchronous WebCrypto
 * job, and less time on the event loop too, which is what limits a broker process. The compact form is
 * the plain RFC 7515 one; receivers verify it with any JOSE library (the tests use jose).
 */
const keyObjects = new WeakMap<SigningKey['key'], KeyObject>()

function keyObject(key: SigningKey['key']): KeyObject {
  let found = keyObjects.get(key)
  if (!found) keyObjects.set(key, (found = KeyObject.from(key)))
  return found
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url')

function signature(alg: SigningAlg, input: Buffer, key: KeyObject): Buffer {
  switch (alg) {
    case 'ES256':
      return sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' })
    case 'RS256':
      return sign('sha256', input, key)
    case 'EdDSA':
      return sign(null, input, key)
  }
}

export async function signSet(keys: KeyStore, alg: SigningAlg, claims: SetClaims): Promise<string> {
  const key = keys.signingKey(alg)
  const payload = {
    iss: claims.iss,
    aud: claims.aud,
    iat: Math.floor(Date.now() / 1000),
    jti: claims.jti,
    txn: claims.txn,
    sub_id: claims.sub_id,
    events: { [claims.eventType]: claims.event },
  }
  const input = `${b64url(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'secevent+jwt' }))}.${b64url(JSON.stringify(payload))}`
  return `${input}.${b64url(signature(key.alg, Buffer.from(input), keyObject(key.key)))}`
}
