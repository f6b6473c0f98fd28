/**
 * The event catalog (CAEP 1.0, RISC 1.0, SSF verification and stream-updated): URIs and aliases, and
 * payload validation of every type: required fields, exact enumerations, common claims, strictness.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  EVENT_TYPES,
  EVENT_URIS,
  resolveEventType,
  SUPPORTED_EVENT_URIS,
  type EventTypeDefinition,
} from '../src/events/catalog.js'
import type { Subject } from '../src/subjects/subject.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/'

const CAEP_NAMES = [
  'session-revoked',
  'token-claims-change',
  'credential-change',
  'assurance-level-change',
  'device-compliance-change',
  'session-established',
  'session-presented',
  'risk-level-change',
]
const RISC_NAMES = [
  'account-credential-change-required',
  'account-purged',
  'account-disabled',
  'account-enabled',
  'identifier-changed',
  'identifier-recycled',
  'credential-compromise',
  'opt-in',
  'opt-out-initiated',
  'opt-out-cancelled',
  'opt-out-effective',
  'recovery-activated',
  'recovery-information-changed',
  'sessions-revoked',
]
const SSF_NAMES = ['verification', 'stream-updated']

/** A spec-shaped payload for every type, with every defined member where there are any. */
const EXAMPLES: Record<string, Record<string, unknown>> = {
  'caep/session-revoked': {
    initiating_entity: 'policy',
    reason_admin: { en: 'Landspeed Policy Violation: C076E82F' },
    reason_user: {
      en: 'Access attempt from multiple regions.',
      es: 'Intento de acceso desde varias regiones.',
    },
    event_timestamp: 1615304991,
  },
  'caep/token-claims-change': { event_timestamp: 1615304991, claims: { role: 'ro-admin' } },
  'caep/credential-change': {
    credential_type: 'fido2-roaming',
    change_type: 'create',
    fido2_aaguid: 'accced6a-63f5-490a-9eea-e59bc1896cfc',
    friendly_name: "Jane's USB authenticator",
    initiating_entity: 'user',
    reason_admin: { en: 'User self-enrollment' },
    event_timestamp: 1615304991,
  },
  'caep/assurance-level-change': {
    namespace: 'NIST-AAL',
    current_level: 'nist-aal2',
    previous_level: 'nist-aal1',
    change_direction: 'increase',
    initiating_entity: 'user',
    event_timestamp: 1615304991,
  },
  'caep/device-compliance-change': {
    current_status: 'not-compliant',
    previous_status: 'compliant',
    initiating_entity: 'policy',
    reason_admin: { en: 'Location Policy Violation: C076E8A3' },
    reason_user: { en: 'Device is no longer in a trusted location.' },
    event_timestamp: 1615304991,
  },
  'caep/session-established': {
    fp_ua: 'abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611',
    acr: 'AAL2',
    amr: ['otp'],
    ext_id: '12345',
    event_timestamp: 1615304991,
  },
  'caep/session-presented': {
    fp_ua: 'abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611',
    ext_id: '12345',
    event_timestamp: 1615304991,
  },
  'caep/risk-level-change': {
    current_level: 'LOW',
    previous_level: 'HIGH',
    event_timestamp: 1615304991,
    principal: 'USER',
    risk_reason: 'PASSWORD_FOUND_IN_DATA_BREACH',
  },
  'risc/account-credential-change-required': {},
  'risc/account-purged': {},
  'risc/account-disabled': { reason: 'hijacking' },
  'risc/account-enabled': {},
  'risc/identifier-changed': { 'new-value': 'john.roe@example.com' },
  'risc/identifier-recycled': {},
  'risc/credential-compromise': {
    credential_type: 'password',
    event_timestamp: 1615304991,
    reason_admin: { en: 'Found in a paste site' },
    reason_user: { en: 'Your password was found in a data breach.' },
  },
  'risc/opt-in': {},
  'risc/opt-out-initiated': {},
  'risc/opt-out-cancelled': {},
  'risc/opt-out-effective': {},
  'risc/recovery-activated': {},
  'risc/recovery-information-changed': {},
  'risc/sessions-revoked': {},
  'ssf/verification': { state: 'VGhpcyBpcyBhbiBleGFtcGxlIGMyNTUxOQo=' },
  'ssf/stream-updated': { status: 'paused', reason: 'License is not valid' },
}

/** The required members, per alias. */
const REQUIRED: Record<string, string[]> = {
  'caep/token-claims-change': ['claims'],
  'caep/credential-change': ['credential_type', 'change_type'],
  'caep/assurance-level-change': ['namespace', 'current_level'],
  'caep/device-compliance-change': ['previous_status', 'current_status'],
  'caep/risk-level-change': ['principal', 'current_level'],
  'risc/credential-compromise': ['credential_type'],
  'ssf/stream-updated': ['status'],
}

/** [alias, member, a value outside the enumeration]. */
const BAD_ENUMS: [string, string, unknown][] = [
  ['caep/credential-change', 'credential_type', 'passwd'],
  ['caep/credential-change', 'credential_type', 'Password'],
  ['caep/credential-change', 'change_type', 'explode'],
  ['caep/credential-change', 'change_type', 'CREATE'],
  ['caep/assurance-level-change', 'namespace', 'nist-aal'],
  ['caep/assurance-level-change', 'change_direction', 'up'],
  ['caep/device-compliance-change', 'previous_status', 'Compliant'],
  ['caep/device-compliance-change', 'current_status', 'non-compliant'],
  ['caep/risk-level-change', 'principal', 'user'],
  ['caep/risk-level-change', 'current_level', 'CRITICAL'],
  ['caep/risk-level-change', 'current_level', 'low'],
  ['caep/risk-level-change', 'previous_level', 'medium'],
  ['caep/session-revoked', 'initiating_entity', 'robot'],
  ['caep/session-revoked', 'initiating_entity', 'Admin'],
  ['risc/account-disabled', 'reason', 'spam'],
  ['risc/credential-compromise', 'credential_type', 'api-key'],
  ['risc/credential-compromise', 'credential_type', 7],
  ['ssf/stream-updated', 'status', 'deleted'],
]

function definition(alias: string): EventTypeDefinition {
  const def = resolveEventType(alias)
  assert.ok(def, `no definition for ${alias}`)
  return def
}

/** The validated value of a payload that must be valid. */
function accepted(alias: string, payload: unknown): Record<string, unknown> {
  const result = definition(alias).validate(payload)
  assert.ok(
    result.ok,
    `${alias} should accept ${JSON.stringify(payload)}: ${JSON.stringify(result)}`,
  )
  return result.value
}

/** The issues, as "path: message", of a payload that must be invalid. */
function rejected(alias: string, payload: unknown): string[] {
  const result = definition(alias).validate(payload)
  assert.ok(!result.ok, `${alias} should reject ${JSON.stringify(payload)}`)
  return result.issues.map((issue) => `${issue.path}: ${issue.message}`)
}

describe('catalog contents', () => {
  test('lists every CAEP, RISC and SSF type, in that order', () => {
    const expected = [
      ...CAEP_NAMES.map((n) => CAEP + n),
      ...RISC_NAMES.map((n) => RISC + n),
      ...SSF_NAMES.map((n) => SSF + n),
    ]
    assert.deepEqual(
      EVENT_TYPES.map((t) => t.uri),
      expected,
    )
    assert.deepEqual(SUPPORTED_EVENT_URIS, expected)
  })

  test('aliases and families follow the URIs', () => {
    for (const type of EVENT_TYPES) {
      const base = { caep: CAEP, risc: RISC, ssf: SSF }[type.family]
      assert.ok(type.uri.startsWith(base), type.uri)
      assert.equal(type.alias, `${type.family}/${type.uri.slice(base.length)}`)
    }
  })

  test('only the SSF types are not ingestible', () => {
    assert.deepEqual(
      EVENT_TYPES.filter((t) => !t.ingestible).map((t) => t.alias),
      ['ssf/verification', 'ssf/stream-updated'],
    )
  })

  test('convenience URIs', () => {
    assert.deepEqual(EVENT_URIS, {
      verification: 'https://schemas.openid.net/secevent/ssf/event-type/verification',
      streamUpdated: 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated',
      sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
    })
  })
})

describe('resolveEventType', () => {
  test('resolves every type by URI and by alias', () => {
    for (const type of EVENT_TYPES) {
      assert.equal(resolveEventType(type.uri), type)
      assert.equal(resolveEventType(type.alias), type)
    }
  })

  test('unknown or inexact names resolve to undefined', () => {
    for (const name of [
      'caep/session-exploded',
      'CAEP/session-revoked',
      'session-revoked',
      `${CAEP}session-revoked/`,
      `${CAEP}Session-Revoked`,
      'http://schemas.openid.net/secevent/caep/event-type/session-revoked',
      '',
    ]) {
      assert.equal(resolveEventType(name), undefined, name)
    }
  })
})

describe('payload validation', () => {
  test('every type has an example', () => {
    assert.deepEqual(Object.keys(EXAMPLES).sort(), EVENT_TYPES.map((t) => t.alias).sort())
  })

  for (const [alias, example] of Object.entries(EXAMPLES)) {
    test(`${alias}: accepts a spec-shaped example unchanged`, () => {
      assert.deepEqual(accepted(alias, example), example)
    })

    test(`${alias}: rejects an unknown member`, () => {
      assert.deepEqual(rejected(alias, { ...example, bogus: 1 }), ['event.bogus: unknown member'])
    })

    test(`${alias}: passes a collision-resistant extension member through`, () => {
      const extended = {
        ...example,
        'https://example.com/claim': { nested: [1, 2] },
        'urn:example:flag': true,
      }
      assert.deepEqual(accepted(alias, extended), extended)
    })

    test(`${alias}: rejects a payload that is not an object`, () => {
      for (const payload of [null, [], 'x', 1])
        assert.deepEqual(rejected(alias, payload), ['event: must be a JSON object'])
    })

    const required = REQUIRED[alias] ?? []
    if (required.length === 0) {
      test(`${alias}: an empty or absent payload is valid`, () => {
        assert.deepEqual(accepted(alias, {}), {})
        assert.deepEqual(accepted(alias, undefined), {})
      })
    }
    for (const member of required) {
      test(`${alias}: ${member} is required`, () => {
        const { [member]: _removed, ...rest } = example
        assert.deepEqual(rejected(alias, rest), [`event.${member}: required`])
      })
    }
  }

  for (const [alias, member, value] of BAD_ENUMS) {
    test(`${alias}: rejects ${member} = ${JSON.stringify(value)}`, () => {
      const issues = rejected(alias, { ...EXAMPLES[alias], [member]: value })
      assert.equal(issues.length, 1)
      assert.match(issues[0] ?? '', new RegExp(`^event\\.${member}: must be one of "`))
    })
  }

  test('every listed credential_type is accepted by credential-change and credential-compromise', () => {
    const types = [
      'password',
      'pin',
      'x509',
      'fido2-platform',
      'fido2-roaming',
      'fido-u2f',
      'verifiable-credential',
      'phone-voice',
      'phone-sms',
      'app',
    ]
    for (const credential_type of types) {
      accepted('caep/credential-change', { credential_type, change_type: 'revoke' })
      accepted('risc/credential-compromise', { credential_type })
    }
  })

  test('every listed enumeration value is accepted', () => {
    for (const change_type of ['create', 'revoke', 'update', 'delete'])
      accepted('caep/credential-change', { credential_type: 'pin', change_type })
    for (const namespace of [
      'RFC8176',
      'RFC6711',
      'ISO-IEC-29115',
      'NIST-IAL',
      'NIST-AAL',
      'NIST-FAL',
    ]) {
      for (const change_direction of ['increase', 'decrease'])
        accepted('caep/assurance-level-change', { namespace, current_level: 'x', change_direction })
    }
    for (const current_status of ['compliant', 'not-compliant'])
      accepted('caep/device-compliance-change', { previous_status: 'compliant', current_status })
    for (const principal of ['USER', 'DEVICE', 'SESSION', 'TENANT', 'ORG_UNIT', 'GROUP']) {
      for (const level of ['LOW', 'MEDIUM', 'HIGH'])
        accepted('caep/risk-level-change', {
          principal,
          current_level: level,
          previous_level: level,
        })
    }
    for (const initiating_entity of ['admin', 'user', 'policy', 'system'])
      accepted('caep/session-revoked', { initiating_entity })
    for (const reason of ['hijacking', 'bulk-account'])
      accepted('risc/account-disabled', { reason })
    for (const status of ['enabled', 'paused', 'disabled'])
      accepted('ssf/stream-updated', { status })
  })

  test('agreed values outside an open enumeration must be collision-resistant', () => {
    accepted('caep/credential-change', {
      credential_type: 'urn:example:api-key',
      change_type: 'revoke',
    })
    accepted('risc/credential-compromise', {
      credential_type: 'https://example.com/credential/api-key',
    })
    accepted('caep/assurance-level-change', {
      namespace: 'urn:example:levels',
      current_level: 'gold',
    })
    accepted('caep/risk-level-change', { principal: 'urn:example:AGENT', current_level: 'HIGH' })
    assert.match(
      rejected('caep/credential-change', { credential_type: '', change_type: 'revoke' })[0] ?? '',
      /collision-resistant/,
    )
  })

  test('field types are checked', () => {
    assert.deepEqual(rejected('caep/token-claims-change', { claims: {} }), [
      'event.claims: must be an object with at least one member',
    ])
    assert.deepEqual(rejected('caep/token-claims-change', { claims: 'role=admin' }), [
      'event.claims: must be an object with at least one member',
    ])
    assert.deepEqual(rejected('caep/session-established', { amr: 'pwd' }), [
      'event.amr: must be a non-empty array of non-empty strings',
    ])
    assert.deepEqual(rejected('caep/session-established', { amr: [] }), [
      'event.amr: must be a non-empty array of non-empty strings',
    ])
    assert.deepEqual(rejected('caep/session-established', { amr: ['pwd', 5] }), [
      'event.amr: must be a non-empty array of non-empty strings',
    ])
    assert.deepEqual(rejected('caep/session-presented', { ext_id: 12345 }), [
      'event.ext_id: must be a non-empty string',
    ])
    assert.deepEqual(
      rejected('caep/assurance-level-change', { namespace: 'NIST-AAL', current_level: '' }),
      ['event.current_level: must be a non-empty string'],
    )
    assert.deepEqual(rejected('risc/identifier-changed', { 'new-value': '' }), [
      'event.new-value: must be a non-empty string',
    ])
    assert.deepEqual(rejected('ssf/verification', { state: 42 }), [
      'event.state: must be a non-empty string',
    ])
  })

  test('identifier-changed uses "new-value" with a hyphen', () => {
    assert.deepEqual(rejected('risc/identifier-changed', { new_value: 'a@example.com' }), [
      'event.new_value: unknown member',
    ])
  })

  test('reports every problem at once', () => {
    assert.deepEqual(
      rejected('caep/credential-change', { change_type: 'explode', colour: 'red' }),
      [
        'event.change_type: must be one of "create", "revoke", "update", "delete"',
        'event.colour: unknown member',
        'event.credential_type: required',
      ],
    )
  })
})

describe('CAEP common claims', () => {
  const common = {
    event_timestamp: 1615304991,
    initiating_entity: 'admin',
    reason_admin: { en: 'Session ended by admin' },
    reason_user: { 'en-US': 'You were signed out.' },
  }

  for (const name of CAEP_NAMES) {
    test(`caep/${name} accepts every common claim`, () => {
      const payload = { ...EXAMPLES[`caep/${name}`], ...common }
      assert.deepEqual(accepted(`caep/${name}`, payload), payload)
    })
  }

  test('are not accepted on RISC types that do not define them', () => {
    assert.deepEqual(rejected('risc/account-purged', { initiating_entity: 'admin' }), [
      'event.initiating_entity: unknown member',
    ])
    assert.deepEqual(rejected('risc/account-disabled', { event_timestamp: 1615304991 }), [
      'event.event_timestamp: unknown member',
    ])
  })

  test('event_timestamp is a non-negative number of seconds', () => {
    accepted('caep/session-revoked', { event_timestamp: 0 })
    accepted('caep/session-revoked', { event_timestamp: 1615304991.5 })
    for (const bad of ['1615304991', -1, null, Number.NaN]) {
      assert.deepEqual(rejected('caep/session-revoked', { event_timestamp: bad }), [
        'event.event_timestamp: must be a non-negative JSON number of seconds since the epoch',
      ])
    }
  })

  test('event_timestamp in milliseconds is rejected, saying so', () => {
    for (const alias of ['caep/session-revoked', 'risc/credential-compromise']) {
      const payload = { ...EXAMPLES[alias], event_timestamp: 1615304991000 }
      assert.deepEqual(rejected(alias, payload), [
        'event.event_timestamp: looks like milliseconds; must be seconds since the epoch',
      ])
    }
  })

  test('reason_admin and reason_user are non-empty maps keyed by language tag', () => {
    accepted('caep/session-revoked', {
      reason_admin: { en: 'a', 'en-US': 'b', 'zh-Hant-TW': 'c', 'x-klingon': 'd' },
    })
    for (const member of ['reason_admin', 'reason_user']) {
      for (const bad of [{}, 'Session ended', ['en', 'text']]) {
        assert.match(
          rejected('caep/session-revoked', { [member]: bad })[0] ?? '',
          new RegExp(`^event\\.${member}: must be an object with at least one entry`),
        )
      }
      assert.deepEqual(rejected('caep/session-revoked', { [member]: { 'english text': 'x' } }), [
        `event.${member}: "english text" is not a BCP 47 language tag such as "en" or "en-US"`,
      ])
      assert.deepEqual(rejected('caep/session-revoked', { [member]: { x: 'x' } }), [
        `event.${member}: "x" is not a BCP 47 language tag such as "en" or "en-US"`,
      ])
      assert.deepEqual(rejected('caep/session-revoked', { [member]: { en: '' } }), [
        `event.${member}: "en" must be a non-empty string`,
      ])
      assert.deepEqual(rejected('caep/session-revoked', { [member]: { en: 5 } }), [
        `event.${member}: "en" must be a non-empty string`,
      ])
    }
  })
})

describe('checkSubject', () => {
  const email: Subject = { format: 'email', email: 'john.doe@example.com' }
  const phone: Subject = { format: 'phone_number', phone_number: '+12065550123' }
  const opaque: Subject = { format: 'opaque', id: 'u1' }
  const complex: Subject = { format: 'complex', user: email }

  for (const alias of ['risc/identifier-changed', 'risc/identifier-recycled']) {
    test(`${alias} needs an email or phone_number subject`, () => {
      const check = definition(alias).checkSubject
      assert.ok(check)
      assert.equal(check(email), undefined)
      assert.equal(check(phone), undefined)
      assert.equal(
        check(opaque),
        'must be an "email" or "phone_number" subject holding the old identifier, not "opaque"',
      )
      assert.match(check(complex) ?? '', /not "complex"/)
    })
  }

  test('other types accept any subject', () => {
    for (const type of EVENT_TYPES) {
      if (type.alias === 'risc/identifier-changed' || type.alias === 'risc/identifier-recycled')
        continue
      assert.equal(type.checkSubject, undefined, type.alias)
    }
  })
})
