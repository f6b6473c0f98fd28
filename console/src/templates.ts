/**
 * Emit form templates: one per event type an emitter can post (CAEP 1.0 §3, RISC 1.0 §2, the broker's
 * agent types), each a valid `POST /events` body. test/console-templates.test.ts runs every one through the
 * API's own validator and checks that no ingestible type is missing.
 */
export interface EventTemplate {
  /** The alias `POST /events` accepts as `type`. */
  type: string
  family: 'CAEP' | 'RISC' | 'Agent'
  subject: Record<string, unknown>
  event: Record<string, unknown>
}

const user = { format: 'email', email: 'alice@example.com' }
const agent = { format: 'uri', uri: 'spiffe://example.org/agent/mail-assistant' }
const reason = (text: string) => ({ en: text })

const caep = (
  name: string,
  event: Record<string, unknown> = {},
  subject: Record<string, unknown> = user,
): EventTemplate => ({
  type: `caep/${name}`,
  family: 'CAEP',
  subject,
  event: { initiating_entity: 'policy', ...event },
})
const risc = (
  name: string,
  event: Record<string, unknown> = {},
  subject: Record<string, unknown> = user,
): EventTemplate => ({ type: `risc/${name}`, family: 'RISC', subject, event })
const agentType = (name: string, event: Record<string, unknown>): EventTemplate => ({
  type: `agent/${name}`,
  family: 'Agent',
  subject: agent,
  event,
})

export const TEMPLATES: readonly EventTemplate[] = [
  caep('session-revoked', { reason_admin: reason('Signed out everywhere by the SOC') }),
  caep('token-claims-change', { claims: { role: 'read-only' } }),
  caep('credential-change', {
    credential_type: 'fido2-roaming',
    change_type: 'revoke',
    friendly_name: 'Alice’s security key',
  }),
  caep('assurance-level-change', {
    namespace: 'NIST-AAL',
    current_level: 'nist-aal1',
    previous_level: 'nist-aal2',
    change_direction: 'decrease',
  }),
  caep('device-compliance-change', {
    previous_status: 'compliant',
    current_status: 'not-compliant',
    reason_admin: reason('Disk encryption turned off'),
  }),
  caep('session-established', { acr: 'urn:example:acr:mfa', amr: ['pwd', 'otp'] }),
  caep('session-presented', { fp_ua: 'abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611' }),
  caep('risk-level-change', {
    principal: 'USER',
    current_level: 'HIGH',
    previous_level: 'LOW',
    risk_reason: 'impossible travel',
  }),
  risc('account-credential-change-required'),
  risc('account-purged'),
  risc('account-disabled', { reason: 'hijacking' }),
  risc('account-enabled'),
  risc('identifier-changed', { 'new-value': 'alice.smith@example.com' }),
  risc('identifier-recycled'),
  risc('credential-compromise', {
    credential_type: 'password',
    reason_admin: reason('Found in a breach corpus'),
  }),
  risc('opt-in'),
  risc('opt-out-initiated'),
  risc('opt-out-cancelled'),
  risc('opt-out-effective'),
  risc('recovery-activated'),
  risc('recovery-information-changed'),
  risc('sessions-revoked'),
  agentType('task-reassigned', {
    current_task: 'summarise inbox',
    previous_task: 'send mail',
    current_scopes: ['mail.read'],
    previous_scopes: ['mail.read', 'mail.send'],
  }),
  agentType('delegation-revoked', { delegator: user, scopes: ['mail.send'] }),
  agentType('agent-credential-compromised', {
    credential_type: 'api_key',
    credential_id: 'key-2026-01',
  }),
]
