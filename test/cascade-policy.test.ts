/**
 * The cascade policy table and its file override, the agent event types and their JSON Schemas, the
 * `act` chain and the sub_id of a cascaded SET.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DEFAULT_CASCADE_POLICY,
  cascadeFor,
  cascadePayload,
  cascadePolicyFromEnv,
  loadCascadePolicyFile,
  parseCascadePolicy,
  renderCascadePolicy,
} from '../src/agents/cascade-policy.js'
import {
  AGENT_EVENT_BASE,
  AGENT_EVENT_TYPES,
  AGENT_EVENT_URIS,
  resolveAgentEventType,
} from '../src/agents/events.js'
import { actChainPath, buildActChain } from '../src/agents/act.js'
import { dependentSubId } from '../src/agents/subjects.js'
import { ConfigError } from '../src/config/config.js'
import { EVENT_TYPES } from '../src/events/catalog.js'
import type { Subject } from '../src/subjects/subject.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

const alice: Subject = { format: 'email', email: 'alice@example.com' }
const a: Subject = { format: 'uri', uri: 'spiffe://example.org/agent/a' }
const b: Subject = { format: 'iss_sub', iss: 'https://idp.example.com', sub: 'agent-b' }
const c: Subject = { format: 'uri', uri: 'spiffe://example.org/agent/c' }

function policyFile(doc: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'cascade-policy-')), 'policy.json')
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc))
  return path
}

describe('default cascade policy', () => {
  test('the revoking types cascade into the same type; the rest does not', () => {
    for (const type of ['session-revoked', 'token-claims-change'])
      assert.equal(cascadeFor(CAEP + type, {})?.type, CAEP + type)
    for (const type of [
      'account-disabled',
      'account-purged',
      'credential-compromise',
      'sessions-revoked',
    ])
      assert.equal(cascadeFor(RISC + type, {})?.type, RISC + type)
    for (const uri of Object.values(AGENT_EVENT_URIS)) assert.equal(cascadeFor(uri, {})?.type, uri)
    for (const type of [
      'session-established',
      'session-presented',
      'risk-level-change',
      'device-compliance-change',
    ])
      assert.equal(cascadeFor(CAEP + type, {}), undefined)
    for (const type of ['account-enabled', 'identifier-changed', 'opt-in'])
      assert.equal(cascadeFor(RISC + type, {}), undefined)
    assert.equal(
      cascadeFor('https://schemas.openid.net/secevent/ssf/event-type/verification', {}),
      undefined,
    )
  })

  test('credential-change cascades only for revoke, assurance-level-change only for a decrease', () => {
    assert.equal(
      cascadeFor(`${CAEP}credential-change`, { change_type: 'revoke', credential_type: 'password' })
        ?.type,
      `${CAEP}credential-change`,
    )
    for (const change of ['create', 'update', 'delete'])
      assert.equal(
        cascadeFor(`${CAEP}credential-change`, {
          change_type: change,
          credential_type: 'password',
        }),
        undefined,
      )
    assert.equal(
      cascadeFor(`${CAEP}assurance-level-change`, {
        change_direction: 'decrease',
        namespace: 'NIST-AAL',
        current_level: 'aal1',
      })?.type,
      `${CAEP}assurance-level-change`,
    )
    assert.equal(
      cascadeFor(`${CAEP}assurance-level-change`, {
        change_direction: 'increase',
        namespace: 'NIST-AAL',
        current_level: 'aal2',
      }),
      undefined,
    )
    assert.equal(
      cascadeFor(`${CAEP}assurance-level-change`, { namespace: 'NIST-AAL', current_level: 'aal2' }),
      undefined,
    )
  })

  test('every type in the table is a known, ingestible type, and the table renders as documented', () => {
    const known = new Set([
      ...EVENT_TYPES.filter((t) => t.ingestible).map((t) => t.uri),
      ...AGENT_EVENT_TYPES.map((t) => t.uri),
    ])
    for (const rule of DEFAULT_CASCADE_POLICY) {
      assert.ok(known.has(rule.type), rule.type)
      assert.ok(known.has(rule.derive), rule.derive)
    }
    assert.equal(DEFAULT_CASCADE_POLICY.length, 11)
    const table = renderCascadePolicy()
    assert.match(
      table,
      /\| `caep\/credential-change` \| `change_type` is `revoke` \| `caep\/credential-change` \|/,
    )
    assert.match(
      table,
      /\| `agent\/delegation-revoked` \| always \| `agent\/delegation-revoked` \|/,
    )
    // The module comment documents the same table.
    const source = readFileSync(new URL('../src/agents/cascade-policy.ts', import.meta.url), 'utf8')
    for (const rule of DEFAULT_CASCADE_POLICY)
      assert.ok(source.includes(`\`${rule.type.split('/').pop()}\``), `documented: ${rule.type}`)
  })
})

describe('cascade payload', () => {
  test('same type: the original payload plus act; another type: only the members it accepts, plus act', () => {
    const event = {
      change_type: 'revoke',
      credential_type: 'password',
      reason_admin: { en: 'leaked' },
      event_timestamp: 1700000000,
      act: { sub_id: alice },
    }
    const same = cascadePayload(`${CAEP}credential-change`, event, `${CAEP}credential-change`, [
      alice,
      a,
    ])
    assert.deepEqual(same, { ...event, act: { sub_id: a, act: { sub_id: alice } } })
    const other = cascadePayload(`${CAEP}credential-change`, event, `${CAEP}session-revoked`, [
      alice,
      a,
    ])
    assert.deepEqual(other, {
      reason_admin: { en: 'leaked' },
      event_timestamp: 1700000000,
      act: { sub_id: a, act: { sub_id: alice } },
    })
    const risc = cascadePayload(`${CAEP}credential-change`, event, `${RISC}account-disabled`, [
      alice,
      a,
    ])
    assert.deepEqual(risc, { act: { sub_id: a, act: { sub_id: alice } } })
  })
})

describe('policy file (SSF_BROKER_CASCADE_POLICY_FILE)', () => {
  test('replaces the table; aliases resolve to URIs; when accepts a string or a list', () => {
    const policy = loadCascadePolicyFile(
      policyFile({
        rules: [
          { type: 'caep/credential-change', when: { change_type: ['revoke', 'delete'] } },
          {
            type: 'risc/account-purged',
            derive: 'caep/session-revoked',
            note: 'agents only need the kill',
          },
          { type: 'agent/task-reassigned', when: { current_task: 'idle' } },
        ],
      }),
    )
    assert.equal(
      cascadeFor(`${CAEP}credential-change`, { change_type: 'delete' }, policy)?.type,
      `${CAEP}credential-change`,
    )
    assert.equal(cascadeFor(`${RISC}account-purged`, {}, policy)?.type, `${CAEP}session-revoked`)
    assert.equal(
      cascadeFor(`${CAEP}session-revoked`, {}, policy),
      undefined,
      'the file replaces the defaults',
    )
    assert.equal(
      cascadeFor(AGENT_EVENT_URIS.taskReassigned, { current_task: 'idle' }, policy)?.type,
      AGENT_EVENT_URIS.taskReassigned,
    )
    assert.equal(
      cascadeFor(AGENT_EVENT_URIS.taskReassigned, { current_task: 'other' }, policy),
      undefined,
    )
    assert.equal(cascadePolicyFromEnv({}), DEFAULT_CASCADE_POLICY)
    assert.equal(
      cascadePolicyFromEnv({ SSF_BROKER_CASCADE_POLICY_FILE: policyFile({ rules: [] }) }).length,
      0,
    )
  })

  test('problems are ConfigErrors naming the variable, the file and the place', () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /is not valid JSON/],
      [[], /policy: must be a JSON object/],
      [{ rules: {} }, /rules: required, an array/],
      [{ rules: [], extra: 1 }, /extra: unknown member/],
      [
        { rules: [{ type: 'caep/sesion-revoked' }] },
        /rules\[0\]\.type: unknown event type "caep\/sesion-revoked"/,
      ],
      [
        { rules: [{ type: 'caep/session-revoked' }, { type: 'ssf/verification' }] },
        /rules\[1\]\.type: "ssf\/verification" is sent by the broker itself/,
      ],
      [
        { rules: [{ type: 'caep/session-revoked', derive: 'caep/credential-change' }] },
        /rules\[0\]\.derive: "caep\/credential-change" has required payload members/,
      ],
      [
        { rules: [{ type: 'caep/session-revoked', when: { reason: 3 } }] },
        /rules\[0\]\.when\.reason: must be a string or a non-empty array/,
      ],
      [
        { rules: [{ type: 'caep/session-revoked', cascade: true }] },
        /rules\[0\]\.cascade: unknown member/,
      ],
    ]
    for (const [doc, message] of cases) {
      const path = policyFile(doc)
      assert.throws(
        () => loadCascadePolicyFile(path),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.variable === 'SSF_BROKER_CASCADE_POLICY_FILE' &&
          message.test(err.message) &&
          err.message.includes(path),
        `${JSON.stringify(doc)} → ${message}`,
      )
    }
    assert.throws(
      () => loadCascadePolicyFile('/nonexistent/policy.json'),
      /SSF_BROKER_CASCADE_POLICY_FILE: cannot read "\/nonexistent\/policy.json": ENOENT/,
    )
    assert.throws(() => parseCascadePolicy({ rules: [1] }), /rules\[0\]: must be an object/)
  })
})

describe('agent event types', () => {
  test('URIs under the broker namespace, agent/ aliases, request-only, each mapped to a standard event', () => {
    assert.equal(AGENT_EVENT_TYPES.length, 3)
    const standard = new Set(EVENT_TYPES.map((t) => t.uri))
    for (const def of AGENT_EVENT_TYPES) {
      assert.ok(def.uri.startsWith(AGENT_EVENT_BASE))
      assert.equal(def.alias, `agent/${def.uri.slice(AGENT_EVENT_BASE.length)}`)
      assert.equal(def.requestOnly, true)
      assert.ok(standard.has(def.standardEquivalent.uri), def.standardEquivalent.uri)
      assert.equal(resolveAgentEventType(def.alias), def)
      assert.equal(resolveAgentEventType(def.uri), def)
    }
  })

  test('payload validation: required members, enumerations, CAEP common claims, act, extensions', () => {
    const task = resolveAgentEventType('agent/task-reassigned')!
    assert.deepEqual(task.validate({}), {
      ok: false,
      issues: [{ path: 'event.current_task', message: 'required' }],
    })
    assert.equal(
      task.validate({
        current_task: 'triage',
        previous_scopes: ['a'],
        reason_admin: { en: 'x' },
        'https://example.com/x': 1,
      }).ok,
      true,
    )
    assert.deepEqual(task.validate({ current_task: 'triage', scope: 'x' }), {
      ok: false,
      issues: [{ path: 'event.scope', message: 'unknown member' }],
    })
    const cred = resolveAgentEventType('agent/agent-credential-compromised')!
    assert.equal(cred.validate({ credential_type: 'api_key', credential_id: 'k1' }).ok, true)
    assert.equal(cred.validate({ credential_type: 'urn:example:hsm-key' }).ok, true)
    assert.equal(cred.validate({ credential_type: 'napkin' }).ok, false)
    const cut = resolveAgentEventType('agent/delegation-revoked')!
    assert.equal(cut.validate({}).ok, true)
    assert.equal(cut.validate({ delegator: alice, act: buildActChain([alice, a]) }).ok, true)
    assert.deepEqual(cut.validate({ delegator: { format: 'email' } }), {
      ok: false,
      issues: [{ path: 'event.delegator', message: 'email: required' }],
    })
    assert.equal(cut.validate({ event_timestamp: 1.7e12 }).ok, false)
  })

  test('each has a JSON Schema in schemas/ whose $id is its URI and whose members match the validator', () => {
    for (const def of AGENT_EVENT_TYPES) {
      const name = def.uri.slice(AGENT_EVENT_BASE.length)
      const schema = JSON.parse(
        readFileSync(new URL(`../schemas/${name}.json`, import.meta.url), 'utf8'),
      ) as {
        $id: string
        $schema: string
        properties: Record<string, unknown>
        required?: string[]
        additionalProperties: boolean
      }
      assert.equal(schema.$id, def.uri)
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema')
      assert.equal(schema.additionalProperties, false)
      // Every schema member is accepted by the validator, every required one is required by it.
      const issues = def.validate({})
      const requiredByValidator = issues.ok
        ? []
        : issues.issues.map((i) => i.path.replace('event.', ''))
      assert.deepEqual([...(schema.required ?? [])].sort(), requiredByValidator.sort(), name)
      for (const member of Object.keys(schema.properties)) {
        const result = def.validate({ [member]: null })
        assert.ok(
          !result.ok &&
            result.issues.some(
              (i) => i.path === `event.${member}` && i.message !== 'unknown member',
            ),
          `${name}: ${member} known to the validator`,
        )
      }
    }
  })
})

describe('act chain and sub_id', () => {
  test('outermost is the agent, nested back to the principal; iss_sub levels carry iss and sub', () => {
    const chain = buildActChain([alice, a, b, c])
    assert.deepEqual(chain, {
      sub_id: c,
      act: {
        sub_id: b,
        iss: 'https://idp.example.com',
        sub: 'agent-b',
        act: { sub_id: a, act: { sub_id: alice } },
      },
    })
    assert.deepEqual(actChainPath(chain), [alice, a, b, c])
    assert.deepEqual(buildActChain([alice]), { sub_id: alice })
    assert.throws(() => buildActChain([]), TypeError)
  })

  test("sub_id: {user, agent} for a simple user principal and a simple agent; the agent's own subject otherwise", () => {
    assert.deepEqual(dependentSubId(alice, a), { format: 'complex', user: alice, agent: a })
    assert.deepEqual(dependentSubId(a, c, { principalIsAgent: true }), c)
    assert.deepEqual(
      dependentSubId({ format: 'complex', user: alice, session: { format: 'opaque', id: 's' } }, a),
      a,
    )
    const complexAgent: Subject = { format: 'complex', application: a }
    assert.deepEqual(dependentSubId(alice, complexAgent), complexAgent)
  })
})

describe('retirement event', () => {
  test('a session-revoked about the agent (as {user, agent} under a user), with the reason and a stable txn', async () => {
    const { retirementEvent } = await import('../src/agents/retirement.js')
    const record = {
      agent_id: 'agent-a',
      agent: a,
      delegator: alice,
      task: 'triage',
      scopes: [],
      registered_by: 'platform',
      created_at: 1,
      expires_at: 2,
      status: 'retired' as const,
      retired_at: 2,
      retired_reason: 'expired',
    }
    const expired = retirementEvent(record, 'expired')
    assert.equal(expired.type, `${CAEP}session-revoked`)
    assert.deepEqual(expired.subject, { format: 'complex', user: alice, agent: a })
    assert.equal(expired.event.initiating_entity, 'policy')
    assert.equal(expired.event.event_timestamp, 2)
    assert.match((expired.event.reason_admin as { en: string }).en, /expired/)
    assert.equal(expired.txn, retirementEvent(record, 'expired').txn)
    const byAgent = retirementEvent(
      {
        ...record,
        delegator: a,
        agent: c,
        delegator_agent_id: 'agent-a',
        retired_reason: 'retired by platform',
      },
      'retired by platform',
    )
    assert.deepEqual(byAgent.subject, c)
    assert.equal(byAgent.event.initiating_entity, 'system')
    // The payload is a valid session-revoked payload.
    const { resolveEventType } = await import('../src/events/catalog.js')
    assert.equal(resolveEventType('caep/session-revoked')!.validate(expired.event).ok, true)
  })
})
