/**
 * A registration request (`POST /agents`) checked as hostile input: the agent's subject, its delegator (a
 * user subject, or an agent named by subject and/or `delegator_agent_id`), task, scopes, the required
 * lifetime, and optional `sid` and `token_jti`. Whether the delegator exists and is live, and the graph
 * rules, are checked by the registration script (agents/registry.ts).
 */
import { BrokerError } from '../errors.js'
import { parseSubject, type Subject } from '../subjects/subject.js'
import { AGENT_ID, nodeId } from './model.js'

const MAX_TASK = 1000
const MAX_SCOPES = 256
const MAX_TEXT = 256
const INPUT_MEMBERS = [
  'agent',
  'delegator',
  'delegator_agent_id',
  'task',
  'scopes',
  'expires_in',
  'sid',
  'token_jti',
] as const

export interface Registration {
  agent: Subject
  /** Absent when only `delegator_agent_id` names the delegator (the registry looks it up). */
  delegator?: Subject
  delegatorAgentId?: string
  task: string
  scopes: string[]
  expiresIn: number
  sid?: string
  tokenJti?: string
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function subjectField(input: Record<string, unknown>, name: 'agent' | 'delegator'): Subject {
  const value = input[name]
  if (value === undefined)
    throw new BrokerError(
      'invalid_subject',
      `${name}: required, a subject identifier such as {"format": "uri", "uri": "spiffe://example.org/agent"}`,
    )
  const parsed = parseSubject(value)
  if (!parsed.ok) {
    const first = parsed.issues[0]
    throw new BrokerError(
      'invalid_subject',
      first
        ? `${first.path.replace(/^subject/, name)}: ${first.message}`
        : `${name}: invalid subject`,
    )
  }
  return parsed.subject
}

function optionalText(input: Record<string, unknown>, name: string): string | undefined {
  const value = input[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT)
    throw new BrokerError(
      'invalid_request',
      `${name}: must be a non-empty string of at most ${MAX_TEXT} characters`,
    )
  return value
}

/** Throws BrokerError invalid_request / invalid_subject, naming the first member that is wrong. */
export function parseRegistration(input: unknown, maxExpiresIn: number): Registration {
  if (!isObject(input)) throw new BrokerError('invalid_request', 'body: must be a JSON object')
  for (const key of Object.keys(input)) {
    if (!(INPUT_MEMBERS as readonly string[]).includes(key))
      throw new BrokerError(
        'invalid_request',
        `${key.slice(0, 100)}: unknown member (an agent registration has ${INPUT_MEMBERS.join(', ')})`,
      )
  }
  const agent = subjectField(input, 'agent')
  let delegatorAgentId: string | undefined
  if (input.delegator_agent_id !== undefined) {
    if (typeof input.delegator_agent_id !== 'string' || !AGENT_ID.test(input.delegator_agent_id))
      throw new BrokerError(
        'invalid_request',
        'delegator_agent_id: must be an agent_id returned by POST /agents',
      )
    delegatorAgentId = input.delegator_agent_id
  }
  const delegator =
    input.delegator === undefined && delegatorAgentId !== undefined
      ? undefined
      : subjectField(input, 'delegator')
  if (
    delegator !== undefined &&
    delegatorAgentId !== undefined &&
    nodeId(delegator) !== delegatorAgentId
  ) {
    throw new BrokerError(
      'invalid_request',
      `delegator_agent_id: ${delegatorAgentId} is not the agent_id of "delegator"; give one of them, or both naming the same agent`,
    )
  }
  if (typeof input.task !== 'string' || input.task.trim() === '' || input.task.length > MAX_TASK)
    throw new BrokerError(
      'invalid_request',
      `task: required, a non-empty string of at most ${MAX_TASK} characters`,
    )
  const scopes = input.scopes
  if (
    !Array.isArray(scopes) ||
    scopes.length > MAX_SCOPES ||
    scopes.some((s) => typeof s !== 'string' || s.length === 0 || s.length > MAX_TEXT)
  ) {
    throw new BrokerError(
      'invalid_request',
      `scopes: required, an array of at most ${MAX_SCOPES} non-empty strings (may be empty)`,
    )
  }
  const expiresIn = input.expires_in
  if (expiresIn === undefined) {
    throw new BrokerError(
      'invalid_request',
      `expires_in: required: agent registrations are ephemeral; give the lifetime in seconds (1 to ${maxExpiresIn})`,
    )
  }
  if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 1)
    throw new BrokerError(
      'invalid_request',
      `expires_in: must be a whole number of seconds from 1 to ${maxExpiresIn}`,
    )
  if (expiresIn > maxExpiresIn)
    throw new BrokerError(
      'invalid_request',
      `expires_in: at most ${maxExpiresIn} seconds are allowed, got ${expiresIn}`,
    )
  const sid = optionalText(input, 'sid')
  const tokenJti = optionalText(input, 'token_jti')
  return {
    agent,
    ...(delegator !== undefined ? { delegator } : {}),
    ...(delegatorAgentId !== undefined ? { delegatorAgentId } : {}),
    task: input.task,
    scopes: [...new Set(scopes as string[])],
    expiresIn,
    ...(sid !== undefined ? { sid } : {}),
    ...(tokenJti !== undefined ? { tokenJti } : {}),
  }
}
