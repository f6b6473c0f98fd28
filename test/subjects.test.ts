/**
 * Subject identifiers (SSF §3, RFC 9493): every format accepted and rejected with a precise message,
 * complex subjects, canonicalisation and subject keys.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  canonicalSubject,
  emailSubjectSchema,
  parseSubject,
  STANDARD_COMPLEX_MEMBERS,
  subjectKey,
  subjectSchema,
  type Subject,
} from '../src/subjects/subject.js'

/** Parses a subject that must be valid and come back unchanged. */
function valid(input: Record<string, unknown>): Subject {
  const result = parseSubject(input)
  assert.ok(result.ok, `expected valid: ${JSON.stringify(input)} → ${JSON.stringify(result)}`)
  assert.deepEqual(result.subject, input)
  return result.subject
}

/** The issues of a subject that must be invalid, as "path: message" strings. */
function problems(input: unknown): string[] {
  const result = parseSubject(input)
  assert.ok(!result.ok, `expected invalid: ${JSON.stringify(input)}`)
  assert.ok(result.issues.length > 0)
  return result.issues.map((issue) => `${issue.path}: ${issue.message}`)
}

function parsed(input: unknown): Subject {
  const result = parseSubject(input)
  assert.ok(result.ok, JSON.stringify(result))
  return result.subject
}

const VALID: Record<string, Record<string, unknown>[]> = {
  account: [{ format: 'account', uri: 'acct:user@example.com' }],
  email: [
    { format: 'email', email: 'alice@example.com' },
    { format: 'email', email: 'first.last+tag@mail.example.co.uk' },
  ],
  iss_sub: [{ format: 'iss_sub', iss: 'https://idp.example.com/', sub: '145234573' }],
  opaque: [{ format: 'opaque', id: '11112222333344445555' }],
  phone_number: [
    { format: 'phone_number', phone_number: '+12065550123' },
    { format: 'phone_number', phone_number: '+1' },
    { format: 'phone_number', phone_number: '+123456789012345' },
  ],
  did: [
    { format: 'did', url: 'did:example:123456789abcdefghi' },
    { format: 'did', url: 'did:web:example.com:user:alice#key-1' },
  ],
  uri: [
    { format: 'uri', uri: 'https://user.example.com/' },
    { format: 'uri', uri: 'spiffe://example.org/ns/agents/planner' },
    { format: 'uri', uri: 'urn:uuid:4e851e98-83c4-4743-a5da-150ecb53042f' },
  ],
  aliases: [
    {
      format: 'aliases',
      identifiers: [
        { format: 'email', email: 'user@example.com' },
        { format: 'phone_number', phone_number: '+12065550100' },
        { format: 'iss_sub', iss: 'https://issuer.example.com/', sub: 'user' },
      ],
    },
  ],
  jwt_id: [
    {
      format: 'jwt_id',
      iss: 'https://as.example.com',
      jti: 'B70BA622-9515-4353-A866-823539EECBC8',
    },
  ],
  saml_assertion_id: [
    {
      format: 'saml_assertion_id',
      issuer: 'https://idp.example.com/saml',
      assertion_id: '_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6',
    },
  ],
  'ip-addresses': [
    { format: 'ip-addresses', 'ip-addresses': ['10.29.37.75', '2001:db8::1'] },
    { format: 'ip-addresses', 'ip-addresses': ['fe80::1%eth0'] },
  ],
}

/** [description, input, the first expected issue]. */
const INVALID: [string, unknown, string][] = [
  ['account: missing uri', { format: 'account' }, 'subject.uri: required'],
  [
    'account: not an acct: URI',
    { format: 'account', uri: 'mailto:user@example.com' },
    'subject.uri: must be an "acct:" URI such as "acct:user@example.com" (RFC 7565)',
  ],
  [
    'account: acct: without host',
    { format: 'account', uri: 'acct:user' },
    'subject.uri: must be an "acct:" URI such as "acct:user@example.com" (RFC 7565)',
  ],
  ['account: empty uri', { format: 'account', uri: '' }, 'subject.uri: must not be empty'],
  ['email: missing email', { format: 'email' }, 'subject.email: required'],
  ['email: not a string', { format: 'email', email: 7 }, 'subject.email: must be a string'],
  [
    'email: no "@"',
    { format: 'email', email: 'alice' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'email: two "@"',
    { format: 'email', email: 'a@b@example.com' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'email: whitespace',
    { format: 'email', email: 'a b@example.com' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'email: empty domain',
    { format: 'email', email: 'alice@' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'email: empty local part',
    { format: 'email', email: '@example.com' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'email: empty domain label',
    { format: 'email', email: 'a@example..com' },
    'subject.email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'iss_sub: missing sub',
    { format: 'iss_sub', iss: 'https://idp.example.com' },
    'subject.sub: required',
  ],
  [
    'iss_sub: empty iss',
    { format: 'iss_sub', iss: '', sub: 'u' },
    'subject.iss: must not be empty',
  ],
  ['opaque: missing id', { format: 'opaque' }, 'subject.id: required'],
  ['opaque: numeric id', { format: 'opaque', id: 5 }, 'subject.id: must be a string'],
  [
    'phone_number: no "+"',
    { format: 'phone_number', phone_number: '12065550123' },
    'subject.phone_number: must be an E.164 number: "+" then 1 to 15 digits, such as "+12065550123"',
  ],
  [
    'phone_number: 16 digits',
    { format: 'phone_number', phone_number: '+1234567890123456' },
    'subject.phone_number: must be an E.164 number: "+" then 1 to 15 digits, such as "+12065550123"',
  ],
  [
    'phone_number: punctuation',
    { format: 'phone_number', phone_number: '+1-206-555-0123' },
    'subject.phone_number: must be an E.164 number: "+" then 1 to 15 digits, such as "+12065550123"',
  ],
  [
    'phone_number: "+" alone',
    { format: 'phone_number', phone_number: '+' },
    'subject.phone_number: must be an E.164 number: "+" then 1 to 15 digits, such as "+12065550123"',
  ],
  [
    'did: not a DID',
    { format: 'did', url: 'https://example.com' },
    'subject.url: must be a DID URL such as "did:example:123"',
  ],
  [
    'did: no method-specific id',
    { format: 'did', url: 'did:example' },
    'subject.url: must be a DID URL such as "did:example:123"',
  ],
  ['did: missing url', { format: 'did' }, 'subject.url: required'],
  [
    'uri: no scheme',
    { format: 'uri', uri: 'example.com/path' },
    'subject.uri: must be an absolute URI with a scheme, such as "spiffe://example.org/agent"',
  ],
  [
    'uri: scheme starting with a digit',
    { format: 'uri', uri: '1http://example.com' },
    'subject.uri: must be an absolute URI with a scheme, such as "spiffe://example.org/agent"',
  ],
  [
    'uri: whitespace',
    { format: 'uri', uri: 'https://exa mple.com' },
    'subject.uri: must be an absolute URI with a scheme, such as "spiffe://example.org/agent"',
  ],
  ['aliases: missing identifiers', { format: 'aliases' }, 'subject.identifiers: required'],
  [
    'aliases: empty identifiers',
    { format: 'aliases', identifiers: [] },
    'subject.identifiers: must be a non-empty array of subject identifiers',
  ],
  [
    'aliases: identifiers not an array',
    { format: 'aliases', identifiers: { format: 'opaque', id: 'x' } },
    'subject.identifiers: must be a non-empty array of subject identifiers',
  ],
  [
    'aliases: nested aliases',
    {
      format: 'aliases',
      identifiers: [
        { format: 'opaque', id: 'x' },
        { format: 'aliases', identifiers: [{ format: 'opaque', id: 'y' }] },
      ],
    },
    'subject.identifiers[1].format: an aliases identifier cannot contain another aliases identifier',
  ],
  [
    'aliases: complex identifier',
    {
      format: 'aliases',
      identifiers: [{ format: 'complex', user: { format: 'opaque', id: 'x' } }],
    },
    'subject.identifiers[0].format: an aliases identifier must be a simple subject identifier, not "complex"',
  ],
  [
    'aliases: invalid identifier',
    { format: 'aliases', identifiers: [{ format: 'email', email: 'nope' }] },
    'subject.identifiers[0].email: must be an email address with exactly one "@", such as "user@example.com"',
  ],
  [
    'aliases: unknown member',
    { format: 'aliases', identifiers: [{ format: 'opaque', id: 'x' }], extra: true },
    'subject.extra: unknown member',
  ],
  [
    'jwt_id: missing jti',
    { format: 'jwt_id', iss: 'https://as.example.com' },
    'subject.jti: required',
  ],
  ['jwt_id: missing iss', { format: 'jwt_id', jti: 'abc' }, 'subject.iss: required'],
  [
    'saml_assertion_id: missing assertion_id',
    { format: 'saml_assertion_id', issuer: 'https://idp.example.com' },
    'subject.assertion_id: required',
  ],
  [
    'saml_assertion_id: missing issuer',
    { format: 'saml_assertion_id', assertion_id: '_1' },
    'subject.issuer: required',
  ],
  ['ip-addresses: missing list', { format: 'ip-addresses' }, 'subject.ip-addresses: required'],
  [
    'ip-addresses: empty list',
    { format: 'ip-addresses', 'ip-addresses': [] },
    'subject.ip-addresses: must hold at least one address',
  ],
  [
    'ip-addresses: not a list',
    { format: 'ip-addresses', 'ip-addresses': '10.0.0.1' },
    'subject.ip-addresses: must be an array of IP address strings',
  ],
  [
    'ip-addresses: bad IPv4',
    { format: 'ip-addresses', 'ip-addresses': ['10.0.0.1', '999.1.1.1'] },
    'subject.ip-addresses[1]: must be an IPv4 or IPv6 address',
  ],
  [
    'ip-addresses: host name',
    { format: 'ip-addresses', 'ip-addresses': ['example.com'] },
    'subject.ip-addresses[0]: must be an IPv4 or IPv6 address',
  ],
  [
    'ip-addresses: underscore spelling',
    { format: 'ip-addresses', ip_addresses: ['10.0.0.1'] },
    'subject.ip-addresses: required',
  ],
  [
    'format: unknown',
    { format: 'foo', foo: 'bar' },
    'subject.format: unknown subject format "foo"',
  ],
  ['format: missing', { email: 'a@example.com' }, 'subject.format: required'],
  [
    'format: deprecated subject_type',
    { subject_type: 'email', email: 'a@example.com' },
    'subject.format: required ("subject_type" is the deprecated RISC name; use "format")',
  ],
  ['format: not a string', { format: 1 }, 'subject.format: must be a string'],
  [
    'format: wrong case',
    { format: 'Email', email: 'a@example.com' },
    'subject.format: unknown subject format "Email"',
  ],
  ['not an object: null', null, 'subject: must be a JSON object with a "format" member'],
  [
    'not an object: array',
    [{ format: 'opaque', id: 'x' }],
    'subject: must be a JSON object with a "format" member',
  ],
  [
    'not an object: string',
    'alice@example.com',
    'subject: must be a JSON object with a "format" member',
  ],
]

describe('simple subjects', () => {
  test('every format has valid examples', () => {
    assert.deepEqual(Object.keys(VALID).sort(), [
      'account',
      'aliases',
      'did',
      'email',
      'ip-addresses',
      'iss_sub',
      'jwt_id',
      'opaque',
      'phone_number',
      'saml_assertion_id',
      'uri',
    ])
  })

  for (const [format, examples] of Object.entries(VALID)) {
    test(`${format}: valid examples are accepted unchanged`, () => {
      for (const example of examples) valid(example)
    })
    test(`${format}: an unknown member is rejected`, () => {
      assert.deepEqual(problems({ ...examples[0], extra: 'x' }), ['subject.extra: unknown member'])
    })
  }

  for (const [description, input, expected] of INVALID) {
    test(`rejects ${description}`, () => {
      assert.equal(problems(input)[0], expected)
    })
  }

  test('reports every problem, not just the first', () => {
    assert.deepEqual(problems({ format: 'iss_sub', extra: 1 }), [
      'subject.iss: required',
      'subject.sub: required',
      'subject.extra: unknown member',
    ])
  })

  test('the exported per-format schemas are strict', () => {
    assert.equal(
      emailSubjectSchema.safeParse({ format: 'email', email: 'a@example.com' }).success,
      true,
    )
    assert.equal(
      emailSubjectSchema.safeParse({ format: 'email', email: 'a@example.com', name: 'A' }).success,
      false,
    )
  })
})

describe('complex subjects', () => {
  test('accepts standard members', () => {
    valid({
      format: 'complex',
      user: { format: 'iss_sub', iss: 'https://idp.example.com/', sub: 'u1' },
      session: { format: 'opaque', id: 's1' },
    })
    const all: Record<string, unknown> = { format: 'complex' }
    for (const name of STANDARD_COMPLEX_MEMBERS) all[name] = { format: 'opaque', id: name }
    valid(all)
  })

  test('accepts an agreed extra member such as agent', () => {
    const subject = valid({
      format: 'complex',
      user: { format: 'email', email: 'alice@example.com' },
      agent: { format: 'jwt_id', iss: 'https://as.example.com', jti: 'tok-1' },
    })
    assert.equal(subject.format, 'complex')
    assert.deepEqual(subject.agent, {
      format: 'jwt_id',
      iss: 'https://as.example.com',
      jti: 'tok-1',
    })
  })

  test('accepts an aliases member', () => {
    valid({
      format: 'complex',
      user: {
        format: 'aliases',
        identifiers: [
          { format: 'email', email: 'a@example.com' },
          { format: 'opaque', id: 'a' },
        ],
      },
    })
  })

  test('rejects a nested complex member', () => {
    assert.deepEqual(
      problems({
        format: 'complex',
        user: { format: 'complex', device: { format: 'opaque', id: 'd' } },
      }),
      [
        'subject.user.format: a complex subject member must be a simple subject identifier, not "complex"',
      ],
    )
  })

  test('rejects a complex subject without members', () => {
    assert.deepEqual(problems({ format: 'complex' }), [
      'subject: a complex subject needs at least one member, such as "user" or "session"',
    ])
  })

  test('rejects an invalid member, naming the member', () => {
    assert.deepEqual(
      problems({
        format: 'complex',
        user: { format: 'email' },
        session: { format: 'opaque', id: 's' },
      }),
      ['subject.user.email: required'],
    )
    assert.deepEqual(problems({ format: 'complex', device: { format: 'serial', serial: 'x' } }), [
      'subject.device.format: unknown subject format "serial"',
    ])
    assert.deepEqual(problems({ format: 'complex', user: 'alice' }), [
      'subject.user: must be a JSON object with a "format" member',
    ])
    assert.deepEqual(
      problems({ format: 'complex', user: { format: 'opaque', id: 'u', extra: 1 } }),
      ['subject.user.extra: unknown member'],
    )
  })

  test('rejects member names outside the allowed pattern', () => {
    for (const name of ['User', '1user', '_user', 'user name', 'a'.repeat(65)]) {
      const issues = problems({ format: 'complex', [name]: { format: 'opaque', id: 'x' } })
      assert.match(issues[0] ?? '', /invalid member name/, name)
    }
    valid({
      format: 'complex',
      ['a'.repeat(64)]: { format: 'opaque', id: 'x' },
      'org-unit_2': { format: 'opaque', id: 'y' },
    })
  })

  test('subjectSchema accepts any subject and reports issue paths', () => {
    const complex = { format: 'complex', user: { format: 'email', email: 'a@example.com' } }
    assert.deepEqual(subjectSchema.parse(complex), complex)
    assert.deepEqual(subjectSchema.parse({ format: 'opaque', id: 'x' }), {
      format: 'opaque',
      id: 'x',
    })
    const result = subjectSchema.safeParse({ format: 'complex', user: { format: 'email' } })
    assert.equal(result.success, false)
    assert.deepEqual(
      result.error?.issues.map((issue) => [issue.path, issue.message]),
      [[['user', 'email'], 'required']],
    )
  })
})

describe('canonicalSubject', () => {
  test('lower-cases email addresses without touching the input', () => {
    const input = parsed({ format: 'email', email: 'Alice.Smith@Example.COM' })
    assert.deepEqual(canonicalSubject(input), { format: 'email', email: 'alice.smith@example.com' })
    assert.deepEqual(input, { format: 'email', email: 'Alice.Smith@Example.COM' })
  })

  test('lower-cases the scheme and domain of an account URI but keeps the user part', () => {
    assert.deepEqual(canonicalSubject(parsed({ format: 'account', uri: 'ACCT:Bob@Example.COM' })), {
      format: 'account',
      uri: 'acct:Bob@example.com',
    })
  })

  test('normalises IP addresses', () => {
    const subject = parsed({
      format: 'ip-addresses',
      'ip-addresses': [
        '2001:DB8:0:0:0:0:0:1',
        '10.0.0.1',
        '::FFFF:10.0.0.1',
        '2001:db8:0:0:1:0:0:1',
        'FE80::0:1%eth0',
      ],
    })
    assert.deepEqual(canonicalSubject(subject), {
      format: 'ip-addresses',
      'ip-addresses': [
        '2001:db8::1',
        '10.0.0.1',
        '::ffff:a00:1',
        '2001:db8::1:0:0:1',
        'fe80::1%eth0',
      ],
    })
  })

  test('canonicalises complex members and aliases identifiers', () => {
    const subject = parsed({
      format: 'complex',
      user: { format: 'email', email: 'A@EXAMPLE.com' },
      device: {
        format: 'aliases',
        identifiers: [
          { format: 'email', email: 'B@Example.com' },
          { format: 'opaque', id: 'Dev-1' },
        ],
      },
    })
    assert.deepEqual(canonicalSubject(subject), {
      format: 'complex',
      user: { format: 'email', email: 'a@example.com' },
      device: {
        format: 'aliases',
        identifiers: [
          { format: 'email', email: 'b@example.com' },
          { format: 'opaque', id: 'Dev-1' },
        ],
      },
    })
  })

  test('leaves other formats unchanged', () => {
    for (const subject of [
      { format: 'iss_sub', iss: 'https://IdP.example.com', sub: 'User-1' },
      { format: 'opaque', id: 'AbC' },
      { format: 'uri', uri: 'HTTPS://Example.com/A' },
      { format: 'did', url: 'did:example:ABC' },
    ]) {
      assert.deepEqual(canonicalSubject(parsed(subject)), subject)
    }
  })
})

describe('subjectKey', () => {
  test('equal subjects give equal keys', () => {
    assert.equal(
      subjectKey(parsed({ format: 'email', email: 'Alice@Example.com' })),
      subjectKey(parsed({ email: 'alice@example.com', format: 'email' })),
    )
    const a = parsed({
      format: 'complex',
      user: { format: 'iss_sub', iss: 'i', sub: 's' },
      session: { format: 'opaque', id: 'x' },
    })
    const b = parsed({
      session: { id: 'x', format: 'opaque' },
      format: 'complex',
      user: { sub: 's', format: 'iss_sub', iss: 'i' },
    })
    assert.equal(subjectKey(a), subjectKey(b))
  })

  test('different subjects give different keys', () => {
    const keys = [
      { format: 'opaque', id: 'a' },
      { format: 'opaque', id: 'A' },
      { format: 'email', email: 'a@example.com' },
      { format: 'complex', user: { format: 'opaque', id: 'a' } },
      {
        format: 'complex',
        user: { format: 'opaque', id: 'a' },
        group: { format: 'opaque', id: 'g1' },
      },
      {
        format: 'complex',
        user: { format: 'opaque', id: 'a' },
        group: { format: 'opaque', id: 'g2' },
      },
    ].map((subject) => subjectKey(parsed(subject)))
    assert.equal(new Set(keys).size, keys.length)
  })

  test('is JSON of the canonical form with sorted keys', () => {
    const subject = parsed({
      format: 'complex',
      user: { format: 'email', email: 'A@B.example' },
      device: { format: 'opaque', id: 'd' },
    })
    const key = subjectKey(subject)
    assert.equal(
      key,
      '{"device":{"format":"opaque","id":"d"},"format":"complex","user":{"email":"a@b.example","format":"email"}}',
    )
    assert.equal(subjectKey(canonicalSubject(subject)), key)
  })
})
