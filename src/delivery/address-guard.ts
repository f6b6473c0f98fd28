/**
 * SSRF guard for push delivery. A receiver's `endpoint_url` is attacker-chosen, so the broker must never
 * let it reach loopback, private networks, link-local (cloud metadata at 169.254.169.254) or other
 * non-public addresses.
 *
 * Two checks, because neither is enough alone:
 * - `checkPushUrl` at stream create/update time and again before each push: the URL's shape, and hosts
 *   written as IP literals (net.connect skips `lookup` for those).
 * - `guardedLookup` at connect time, on the addresses the socket will actually use. Checking only the
 *   name when the stream is created would let DNS rebinding walk around the guard.
 */
import dns from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'

/** IPv4 ranges that are not public unicast destinations. */
const FORBIDDEN_V4: ReadonlyArray<readonly [network: string, prefix: number]> = [
  ['0.0.0.0', 8], // "this network", incl. the unspecified address
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, incl. cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, incl. broadcast 255.255.255.255
]

/** IPv6 ranges that are not public unicast destinations. */
const FORBIDDEN_V6: ReadonlyArray<readonly [network: string, prefix: number]> = [
  ['::', 96], // unspecified, loopback and deprecated IPv4-compatible addresses
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, benchmarking, ORCHID, ...)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
]

const forbidden = new BlockList()
for (const [network, prefix] of FORBIDDEN_V4) {
  forbidden.addSubnet(network, prefix, 'ipv4')
  // IPv6 forms that carry an IPv4 address and reach it: IPv4-mapped, NAT64 and 6to4. Their public
  // embeddings (e.g. ::ffff:8.8.8.8) stay allowed.
  const [a = 0, b = 0, c = 0, d = 0] = network.split('.').map(Number)
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16)
  forbidden.addSubnet(`::ffff:${network}`, 96 + prefix, 'ipv6')
  forbidden.addSubnet(`64:ff9b::${network}`, 96 + prefix, 'ipv6')
  forbidden.addSubnet(`2002:${hex(a, b)}:${hex(c, d)}::`, 16 + prefix, 'ipv6')
}
for (const [network, prefix] of FORBIDDEN_V6) forbidden.addSubnet(network, prefix, 'ipv6')

/** True when `ip` must not be a push destination. Anything that is not an IP address counts as forbidden (fail closed). */
export function isForbiddenAddress(ip: string): boolean {
  const address = ip.split('%')[0] ?? '' // drop an IPv6 zone id such as fe80::1%eth0
  const family = isIP(address)
  if (family === 4) return forbidden.check(address, 'ipv4')
  if (family === 6) return forbidden.check(address, 'ipv6')
  return true
}

export const MAX_PUSH_URL_LENGTH = 2048

/** Checks a push endpoint URL; returns what is wrong with it, or undefined when it is acceptable. */
export function checkPushUrl(url: string, allowPrivate: boolean): string | undefined {
  if (url.length > MAX_PUSH_URL_LENGTH) return `must be at most ${MAX_PUSH_URL_LENGTH} characters`
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'must be an absolute URL'
  }
  if (parsed.protocol !== 'https:' && !(allowPrivate && parsed.protocol === 'http:')) {
    return allowPrivate ? 'must use https or http' : 'must use https'
  }
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain user information'
  // `hash` is empty for a bare trailing '#', so look at the text; '#' can only start a fragment.
  if (url.includes('#')) return 'must not contain a fragment'
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  if (!allowPrivate && isIP(host) !== 0 && isForbiddenAddress(host))
    return `host ${host} is not a public address`
  return undefined
}

/**
 * A `lookup` for net.connect (and undici's `connect` option) that refuses names resolving to any forbidden
 * address, with an error whose `code` is ERR_SSRF_BLOCKED. It always resolves every address so that one
 * bad entry among good ones is caught, then answers in the shape net asked for (`all` true or false).
 */
export function guardedLookup(
  allowPrivate: boolean,
  lookup: typeof dns.lookup = dns.lookup,
): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, [])
      if (!allowPrivate) {
        const bad = addresses.find((entry) => isForbiddenAddress(entry.address))
        if (bad) {
          const blocked = new Error(
            `${hostname} resolves to ${bad.address}, which is not a public address`,
          )
          return callback(Object.assign(blocked, { code: 'ERR_SSRF_BLOCKED' }), [])
        }
      }
      if (options.all) return callback(null, addresses)
      const first = addresses[0]
      if (!first)
        return callback(
          Object.assign(new Error(`${hostname} has no addresses`), { code: 'ENOTFOUND' }),
          [],
        )
      callback(null, first.address, first.family)
    })
  }
}
