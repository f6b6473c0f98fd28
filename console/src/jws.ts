/**
 * SET inspection in the browser: decode a compact JWS, verify its signature with WebCrypto against a JWKS
 * (RS256, ES256, EdDSA where the browser has Ed25519), and check the claims a receiver must check
 * (RFC 8417, SSF 1.0 §4): typ, iss, aud, iat and exactly one event.
 */
export interface Check {
  name: 'format' | 'signature' | 'typ' | 'iss' | 'aud' | 'iat' | 'events'
  ok: boolean
  detail: string
}

export interface Inspection {
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  checks: Check[]
  valid: boolean
}

export interface InspectOptions {
  jwks: { keys?: Record<string, unknown>[] }
  issuer: string
  /** When empty, the audience only has to be present. */
  audience?: string
  now?: number
}

const SKEW_S = 60

function b64url(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url')
  const padded =
    text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4)
  const binary = atob(padded)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

function decodeJson(part: string): Record<string, unknown> {
  const value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b64url(part)))
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('not a JSON object')
  return value as Record<string, unknown>
}

const ALGS: Record<
  string,
  {
    importAlg: AlgorithmIdentifier | RsaHashedImportParams | EcKeyImportParams
    verifyAlg: AlgorithmIdentifier | EcdsaParams
    kty: string
  }
> = {
  RS256: {
    importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    verifyAlg: { name: 'RSASSA-PKCS1-v1_5' },
    kty: 'RSA',
  },
  ES256: {
    importAlg: { name: 'ECDSA', namedCurve: 'P-256' },
    verifyAlg: { name: 'ECDSA', hash: 'SHA-256' },
    kty: 'EC',
  },
  EdDSA: { importAlg: { name: 'Ed25519' }, verifyAlg: { name: 'Ed25519' }, kty: 'OKP' },
}

/** Only the public members: a JWKS entry's alg/use/key_ops would otherwise have to match exactly. */
function publicJwk(key: Record<string, unknown>): JsonWebKey {
  const pick = (...names: string[]) =>
    Object.fromEntries(names.filter((n) => key[n] !== undefined).map((n) => [n, key[n]]))
  if (key.kty === 'RSA') return pick('kty', 'n', 'e') as JsonWebKey
  if (key.kty === 'EC') return pick('kty', 'crv', 'x', 'y') as JsonWebKey
  return pick('kty', 'crv', 'x') as JsonWebKey
}

async function verifySignature(
  header: Record<string, unknown>,
  signingInput: string,
  signature: string,
  jwks: InspectOptions['jwks'],
): Promise<Check> {
  const alg = String(header.alg)
  const spec = ALGS[alg]
  if (!spec)
    return {
      name: 'signature',
      ok: false,
      detail: `alg ${JSON.stringify(header.alg)} is not accepted (RS256, ES256, EdDSA)`,
    }
  const keys = (Array.isArray(jwks.keys) ? jwks.keys : []).filter(
    (k) => k.kty === spec.kty && (header.kid === undefined || k.kid === header.kid),
  )
  if (keys.length === 0)
    return {
      name: 'signature',
      ok: false,
      detail: `no ${spec.kty} key${header.kid !== undefined ? ` with kid ${JSON.stringify(header.kid)}` : ''} in the JWKS`,
    }
  let sig: Uint8Array<ArrayBuffer>
  try {
    sig = b64url(signature)
  } catch {
    return { name: 'signature', ok: false, detail: 'the signature is not base64url' }
  }
  const data = new TextEncoder().encode(signingInput)
  for (const key of keys) {
    try {
      const cryptoKey = await crypto.subtle.importKey(
        'jwk',
        publicJwk(key),
        spec.importAlg,
        false,
        ['verify'],
      )
      if (await crypto.subtle.verify(spec.verifyAlg, cryptoKey, sig, data))
        return {
          name: 'signature',
          ok: true,
          detail: `${alg}, key ${String(key.kid ?? '(no kid)')}`,
        }
    } catch (err) {
      if (alg === 'EdDSA')
        return {
          name: 'signature',
          ok: false,
          detail: `this browser cannot verify Ed25519 (${(err as Error).message})`,
        }
    }
  }
  return {
    name: 'signature',
    ok: false,
    detail: `${alg} signature does not match key ${String(keys[0]!.kid ?? '(no kid)')}: the SET was altered or signed by another key`,
  }
}

export async function inspectSet(compact: string, options: InspectOptions): Promise<Inspection> {
  const parts = compact.trim().split('.')
  if (parts.length !== 3)
    return {
      checks: [
        {
          name: 'format',
          ok: false,
          detail: `a compact JWS has 3 parts separated by ".", this has ${parts.length}`,
        },
      ],
      valid: false,
    }
  let header: Record<string, unknown>
  let claims: Record<string, unknown>
  try {
    header = decodeJson(parts[0]!)
    claims = decodeJson(parts[1]!)
  } catch (err) {
    return {
      checks: [
        {
          name: 'format',
          ok: false,
          detail: `header or claims are not base64url JSON objects (${(err as Error).message})`,
        },
      ],
      valid: false,
    }
  }
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const checks: Check[] = [
    await verifySignature(header, `${parts[0]}.${parts[1]}`, parts[2]!, options.jwks),
  ]

  const typ =
    typeof header.typ === 'string'
      ? header.typ.toLowerCase().replace(/^application\//, '')
      : undefined
  checks.push({
    name: 'typ',
    ok: typ === 'secevent+jwt',
    detail:
      typ === 'secevent+jwt'
        ? String(header.typ)
        : `must be "secevent+jwt", is ${JSON.stringify(header.typ ?? null)}`,
  })

  checks.push({
    name: 'iss',
    ok: claims.iss === options.issuer,
    detail:
      claims.iss === options.issuer
        ? String(claims.iss)
        : `expected ${JSON.stringify(options.issuer)}, is ${JSON.stringify(claims.iss ?? null)}`,
  })

  const aud = claims.aud
  const audiences =
    typeof aud === 'string'
      ? [aud]
      : Array.isArray(aud)
        ? aud.filter((a): a is string => typeof a === 'string')
        : []
  const wanted = options.audience?.trim()
  if (audiences.length === 0)
    checks.push({ name: 'aud', ok: false, detail: 'missing: a SET names its receiver in aud' })
  else if (wanted)
    checks.push({
      name: 'aud',
      ok: audiences.includes(wanted),
      detail: audiences.includes(wanted)
        ? wanted
        : `expected ${JSON.stringify(wanted)}, is ${JSON.stringify(aud)}`,
    })
  else
    checks.push({
      name: 'aud',
      ok: true,
      detail: `${audiences.join(', ')} (no expected audience given)`,
    })

  const iat = claims.iat
  if (typeof iat !== 'number' || !Number.isFinite(iat))
    checks.push({ name: 'iat', ok: false, detail: 'missing or not a number of seconds' })
  else if (iat > now + SKEW_S)
    checks.push({
      name: 'iat',
      ok: false,
      detail: `in the future: ${new Date(iat * 1000).toISOString()}`,
    })
  else checks.push({ name: 'iat', ok: true, detail: new Date(iat * 1000).toISOString() })

  const events = claims.events
  const types =
    typeof events === 'object' && events !== null && !Array.isArray(events)
      ? Object.keys(events)
      : undefined
  const payloadOk =
    types?.length === 1 &&
    typeof (events as Record<string, unknown>)[types[0]!] === 'object' &&
    (events as Record<string, unknown>)[types[0]!] !== null
  checks.push({
    name: 'events',
    ok: payloadOk,
    detail: payloadOk
      ? types![0]!
      : types === undefined
        ? 'missing: events must be an object'
        : `must hold exactly one event object, holds ${types.length}`,
  })

  return { header, claims, checks, valid: checks.every((c) => c.ok) }
}
