/**
 * Transmitter discovery (SSF §7.2): `GET` the well-known URL built from the issuer, then check the
 * metadata (SSF §7.1). `issuer` must equal the issuer the receiver was configured with, byte for byte
 * (otherwise the data is not used), and every endpoint must be an `https:` URL unless insecure issuers
 * were allowed explicitly.
 *
 * @module
 */
import { ReceiverError } from './errors.js'
import { httpRequest, isObject, parseJson, safeUrl, type HttpSettings } from './http.js'
import type { TransmitterMetadata } from './types.js'

const ENDPOINTS = [
  'jwks_uri',
  'configuration_endpoint',
  'status_endpoint',
  'add_subject_endpoint',
  'remove_subject_endpoint',
  'verification_endpoint',
] as const
const STRING_ARRAYS = ['delivery_methods_supported', 'critical_subject_members'] as const

/**
 * The SSF §7.2 well-known URL for an issuer: `/.well-known/ssf-configuration` goes between the host
 * and the issuer's path (a trailing `/` of the path is dropped).
 *
 * @example
 * ```ts
 * wellKnownUrl('https://tr.example.com/issuer1') // 'https://tr.example.com/.well-known/ssf-configuration/issuer1'
 * ```
 */
export function wellKnownUrl(issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.origin}/.well-known/ssf-configuration${path}`
}

/** Throws `TypeError` when `value` is not a URL a receiver may use (https, or http when allowed). */
export function checkUrl(name: string, value: string, allowInsecure: boolean): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${name}: not a URL`)
  }
  if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:')) {
    throw new TypeError(
      `${name}: must be an https URL${allowInsecure ? ' (or http)' : ' (set allowInsecureIssuer for a local http transmitter)'}`,
    )
  }
  if (url.username || url.password) throw new TypeError(`${name}: must not contain credentials`)
  return url
}

/** Checks the configured issuer (SSF §7.1: https, no query, no fragment). Throws `TypeError`. */
export function checkIssuer(issuer: string, allowInsecure: boolean): void {
  const url = checkUrl('issuer', issuer, allowInsecure)
  if (url.search || url.hash || issuer.includes('?') || issuer.includes('#'))
    throw new TypeError('issuer: must not have a query or fragment')
}

/** Fetches and validates the transmitter's metadata. */
export async function discover(
  issuer: string,
  http: HttpSettings,
  allowInsecure: boolean,
): Promise<TransmitterMetadata> {
  const url = wellKnownUrl(issuer)
  let res
  try {
    res = await httpRequest(url, { method: 'GET' }, http)
  } catch (error) {
    throw new ReceiverError(
      'ERR_DISCOVERY_FAILED',
      `transmitter discovery at ${safeUrl(url)} failed`,
      { cause: error },
    )
  }
  if (res.status !== 200)
    throw new ReceiverError(
      'ERR_DISCOVERY_FAILED',
      `transmitter discovery at ${safeUrl(url)}: HTTP ${res.status}`,
      { status: res.status },
    )
  const body = parseJson(res.text)
  if (!isObject(body))
    throw new ReceiverError(
      'ERR_DISCOVERY_INVALID',
      `transmitter metadata at ${safeUrl(url)} is not a JSON object`,
    )
  if (body.issuer !== issuer) {
    throw new ReceiverError(
      'ERR_DISCOVERY_ISSUER_MISMATCH',
      `transmitter metadata names issuer ${JSON.stringify(String(body.issuer).slice(0, 200))}, expected ${JSON.stringify(issuer)}`,
    )
  }
  for (const name of ENDPOINTS) {
    const value = body[name]
    if (value === undefined) continue
    if (typeof value !== 'string')
      throw new ReceiverError(
        'ERR_DISCOVERY_INVALID',
        `transmitter metadata: ${name} must be a URL string`,
      )
    try {
      checkUrl(name, value, allowInsecure)
    } catch (error) {
      throw new ReceiverError(
        'ERR_DISCOVERY_INVALID',
        `transmitter metadata: ${(error as Error).message}`,
      )
    }
  }
  for (const name of STRING_ARRAYS) {
    const value = body[name]
    if (
      value !== undefined &&
      (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    ) {
      throw new ReceiverError(
        'ERR_DISCOVERY_INVALID',
        `transmitter metadata: ${name} must be an array of strings`,
      )
    }
  }
  if (body.jwks_uri === undefined)
    throw new ReceiverError(
      'ERR_DISCOVERY_INVALID',
      'transmitter metadata has no jwks_uri: signed SETs cannot be verified',
    )
  return body as TransmitterMetadata
}
