/**
 * The one place SETs are signed (SSF §4.1, RFC 8417 §2): header `{alg, kid, typ: "secevent+jwt"}`,
 * claims `iss`, `aud`, `iat` (whole seconds, never ahead of the clock), `jti`, `txn`, `sub_id` and
 * `events` with exactly one member. `sub` and `exp` are never present.
 */
import { CompactSign } from 'jose'
import type { KeyStore } from './keystore.js'
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

const encoder = new TextEncoder()

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
  return new CompactSign(encoder.encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'secevent+jwt' })
    .sign(key.key)
}
