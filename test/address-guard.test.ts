/**
 * Pure tests of the SSRF guard: no sockets are opened here. guardedLookup is driven with fake resolvers.
 */
import assert from 'node:assert/strict'
import type dns from 'node:dns'
import type { LookupFunction } from 'node:net'
import { describe, test } from 'node:test'
import { checkPushUrl, guardedLookup, isForbiddenAddress } from '../src/delivery/address-guard.js'

describe('isForbiddenAddress', () => {
  const forbidden: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback, top of 127/8'],
    ['::1', 'IPv6 loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', '0/8'],
    ['::', 'IPv6 unspecified'],
    ['10.0.0.1', 'private 10/8'],
    ['10.255.255.255', 'private 10/8, top'],
    ['172.16.0.1', 'private 172.16/12'],
    ['172.31.255.255', 'private 172.16/12, top'],
    ['192.168.0.1', 'private 192.168/16'],
    ['192.168.255.255', 'private 192.168/16, top'],
    ['169.254.169.254', 'cloud metadata'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'IPv6 link-local'],
    ['febf:ffff::1', 'IPv6 link-local, top of fe80::/10'],
    ['fe80::1%eth0', 'IPv6 link-local with zone id'],
    ['100.64.0.1', 'CGNAT'],
    ['100.127.255.255', 'CGNAT, top'],
    ['fc00::1', 'unique local'],
    ['fd12:3456:789a::1', 'unique local fd'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast, SSDP'],
    ['ff02::1', 'IPv6 multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved 240/4'],
    ['192.0.2.1', 'TEST-NET-1'],
    ['198.51.100.7', 'TEST-NET-2'],
    ['203.0.113.9', 'TEST-NET-3'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking, top of 198.18/15'],
    ['2001:db8::1', 'IPv6 documentation'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
    ['::ffff:10.1.2.3', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of 169.254.169.254'],
    ['64:ff9b::10.0.0.1', 'NAT64 of 10.0.0.1'],
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['2002:c0a8:101::1', '6to4 of 192.168.1.1'],
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', '6to4 of 169.254.169.254'],
    ['::127.0.0.1', 'deprecated IPv4-compatible'],
    ['localhost', 'not an IP address (fail closed)'],
    ['', 'empty (fail closed)'],
    ['1.2.3', 'malformed (fail closed)'],
  ]
  for (const [ip, why] of forbidden) {
    test(`forbids ${ip || '""'} (${why})`, () => assert.equal(isForbiddenAddress(ip), true))
  }

  const allowed: Array<[string, string]> = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['2001:4860::8888', 'public IPv6'],
    ['2001:4860:4860::8888', 'public IPv6'],
    ['2606:4700:4700::1111', 'public IPv6'],
    ['9.255.255.255', 'just below 10/8'],
    ['11.0.0.0', 'just above 10/8'],
    ['126.255.255.255', 'just below 127/8'],
    ['128.0.0.1', 'just above 127/8'],
    ['172.15.255.255', 'just below 172.16/12'],
    ['172.32.0.0', 'just above 172.16/12'],
    ['192.167.255.255', 'just below 192.168/16'],
    ['192.169.0.0', 'just above 192.168/16'],
    ['169.253.255.255', 'just below 169.254/16'],
    ['169.255.0.0', 'just above 169.254/16'],
    ['100.63.255.255', 'just below CGNAT'],
    ['100.128.0.0', 'just above CGNAT'],
    ['198.17.255.255', 'just below 198.18/15'],
    ['198.20.0.0', 'just above 198.18/15'],
    ['223.255.255.255', 'just below multicast'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public'],
    ['64:ff9b::808:808', 'NAT64 of 8.8.8.8'],
    ['2002:808:808::1', '6to4 of 8.8.8.8'],
  ]
  for (const [ip, why] of allowed) {
    test(`allows ${ip} (${why})`, () => assert.equal(isForbiddenAddress(ip), false))
  }
})

describe('checkPushUrl', () => {
  test('accepts a public https URL in both modes', () => {
    assert.equal(checkPushUrl('https://receiver.example.com/ssf/events?tenant=1', false), undefined)
    assert.equal(checkPushUrl('https://receiver.example.com/ssf/events', true), undefined)
    assert.equal(checkPushUrl('https://8.8.8.8/events', false), undefined)
    assert.equal(checkPushUrl('https://[2001:4860::8888]/events', false), undefined)
  })

  test('http only when private targets are allowed', () => {
    assert.match(checkPushUrl('http://receiver.example.com/events', false) ?? '', /https/)
    assert.equal(checkPushUrl('http://receiver.example.com/events', true), undefined)
  })

  test('refuses other schemes', () => {
    for (const url of [
      'ftp://receiver.example.com/',
      'file:///etc/passwd',
      'gopher://receiver.example.com/',
      'ws://receiver.example.com/',
    ]) {
      assert.notEqual(checkPushUrl(url, true), undefined, url)
    }
  })

  test('refuses what is not an absolute URL', () => {
    for (const url of ['', 'not a url', '/relative/path', 'receiver.example.com/events']) {
      assert.equal(checkPushUrl(url, true), 'must be an absolute URL', url)
    }
  })

  test('refuses user information', () => {
    assert.match(
      checkPushUrl('https://user:pw@receiver.example.com/', true) ?? '',
      /user information/,
    )
    assert.match(checkPushUrl('https://user@receiver.example.com/', true) ?? '', /user information/)
  })

  test('refuses fragments, even an empty one', () => {
    assert.match(checkPushUrl('https://receiver.example.com/events#frag', true) ?? '', /fragment/)
    assert.match(checkPushUrl('https://receiver.example.com/events#', true) ?? '', /fragment/)
  })

  test('limits the length to 2048 characters', () => {
    const base = 'https://receiver.example.com/'
    assert.equal(checkPushUrl(base + 'a'.repeat(2048 - base.length), false), undefined)
    assert.match(checkPushUrl(base + 'a'.repeat(2049 - base.length), false) ?? '', /2048/)
  })

  test('refuses forbidden IP-literal hosts unless private targets are allowed', () => {
    const urls = [
      'https://127.0.0.1/events',
      'https://10.0.0.1:8443/events',
      'https://169.254.169.254/latest/meta-data/',
      'https://[::1]/events',
      'https://[fe80::1]/events',
      'https://[::ffff:10.0.0.1]/events',
      'https://[64:ff9b::a9fe:a9fe]/events',
      // The URL parser normalizes these to 127.0.0.1; the check must see the normalized host.
      'https://0x7f.0.0.1/events',
      'https://2130706433/events',
      'https://127.1/events',
    ]
    for (const url of urls) {
      assert.match(checkPushUrl(url, false) ?? '', /not a public address/, url)
      assert.equal(checkPushUrl(url, true), undefined, url)
    }
  })

  test('leaves host names to the connect-time lookup', () => {
    assert.equal(checkPushUrl('https://localhost/events', false), undefined)
  })
})

type LookupResult = {
  err: NodeJS.ErrnoException | null
  address: string | dns.LookupAddress[] | undefined
  family: number | undefined
}

function callLookup(
  lookup: LookupFunction,
  hostname: string,
  options: dns.LookupOptions,
): Promise<LookupResult> {
  return new Promise((resolve) =>
    lookup(hostname, options, (err, address, family) => resolve({ err, address, family })),
  )
}

/** A resolver answering from a fixed list (or failing), as dns.lookup would for `all` true or false; records the options it got. */
function fakeLookup(
  answer: dns.LookupAddress[] | Error,
  calls: dns.LookupOptions[] = [],
): typeof dns.lookup {
  const fake = (
    _hostname: string,
    options: dns.LookupOptions,
    callback: (err: Error | null, address?: unknown, family?: number) => void,
  ) => {
    calls.push(options)
    if (answer instanceof Error) process.nextTick(callback, answer)
    else if (options.all) process.nextTick(callback, null, answer)
    else process.nextTick(callback, null, answer[0]?.address, answer[0]?.family)
  }
  return fake as unknown as typeof dns.lookup
}

describe('guardedLookup', () => {
  const rebound = [{ address: '10.1.2.3', family: 4 }]

  test('refuses a private answer whether net asks for one address or all', async () => {
    for (const all of [false, true]) {
      const { err } = await callLookup(
        guardedLookup(false, fakeLookup(rebound)),
        'receiver.example.com',
        { all },
      )
      assert.equal(err?.code, 'ERR_SSRF_BLOCKED', `all: ${all}`)
      assert.match(err.message, /receiver\.example\.com resolves to 10\.1\.2\.3/)
    }
  })

  test('refuses when any one of several answers is forbidden', async () => {
    const mixed = [
      { address: '8.8.8.8', family: 4 },
      { address: '::ffff:169.254.169.254', family: 6 },
    ]
    const { err } = await callLookup(
      guardedLookup(false, fakeLookup(mixed)),
      'receiver.example.com',
      { all: false },
    )
    assert.equal(err?.code, 'ERR_SSRF_BLOCKED')
  })

  test('passes public answers through in the shape asked for', async () => {
    const answers = [
      { address: '8.8.8.8', family: 4 },
      { address: '2001:4860::8888', family: 6 },
    ]
    const one = await callLookup(
      guardedLookup(false, fakeLookup(answers)),
      'receiver.example.com',
      { all: false },
    )
    assert.deepEqual(one, { err: null, address: '8.8.8.8', family: 4 })
    const all = await callLookup(
      guardedLookup(false, fakeLookup(answers)),
      'receiver.example.com',
      { all: true },
    )
    assert.equal(all.err, null)
    assert.deepEqual(all.address, answers)
  })

  test('always resolves every address and keeps the other options', async () => {
    const calls: dns.LookupOptions[] = []
    await callLookup(
      guardedLookup(false, fakeLookup([{ address: '8.8.8.8', family: 4 }], calls)),
      'receiver.example.com',
      { all: false, family: 4, hints: 32 },
    )
    assert.deepEqual(calls, [{ all: true, family: 4, hints: 32 }])
  })

  test('allows private answers when told to', async () => {
    const one = await callLookup(guardedLookup(true, fakeLookup(rebound)), 'receiver.example.com', {
      all: false,
    })
    assert.deepEqual(one, { err: null, address: '10.1.2.3', family: 4 })
  })

  test('passes resolver errors through', async () => {
    const failure = Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' })
    const { err } = await callLookup(
      guardedLookup(false, fakeLookup(failure)),
      'receiver.example.com',
      { all: false },
    )
    assert.equal(err, failure)
  })

  test('fails when a resolver answers with no address at all', async () => {
    const { err } = await callLookup(guardedLookup(false, fakeLookup([])), 'receiver.example.com', {
      all: false,
    })
    assert.equal(err?.code, 'ENOTFOUND')
  })
})
