/**
 * Agent registry: which agents act for whom (ssf-spec.md §5: agents as principals, RFC 8693 delegation).
 *
 * An agent is registered when it starts a task, by the platform running it: its subject, its delegator
 * (a user subject, or an agent registered and live at that moment), task, scopes and a required lifetime.
 * Registrations are ephemeral: they expire (the broker retires them and tells subscribers) or are retired
 * early. The delegation graph is a forest of nodes, one per subject:
 *
 *   node id      = base64url(SHA-256("ssf-agent\0" + subjectKey(subject)))[0..27): stable for every
 *                  spelling of one subject (subjects/subject.ts canonical form). An agent's `agent_id` is
 *                  the node id of its subject, so registering it again finds the same record.
 *   ssf:agent:rec:<agent_id>  hash: record (immutable registration JSON), status (active|retired),
 *                  exp (expiry, ms), parent (node id of the delegator), dagent (agent_id of the delegator
 *                  when it was a live agent at registration, else ""), retired_at (s), retired_reason.
 *                  Retired records are kept (with a TTL of max(maxExpiresIn, retiredRetentionSeconds)) so
 *                  that chains through them stay walkable for as long as any agent below them can live.
 *   ssf:agent:dlg:<node id>   set of agent_ids whose delegator is that node (the graph's edges). Survives
 *                  its node's record, so a user's subject needs no record of its own.
 *   ssf:agent:exp             zset agent_id -> exp (ms) of active agents: the expiry sweep.
 *   ssf:agent:jti:<sha256(token_jti)> set of agent_ids registered with that token_jti: an event about a
 *                  `jwt_id` subject reaches the agent holding that token and everything below it.
 *
 * Rules, checked and written by one Lua script so that nothing is ever half-written and concurrent
 * registrations (from several broker processes) cannot race past the checks:
 * - same agent, same delegator, still live: idempotent, the existing record (`created: false`);
 *   same agent, another delegator, still live: 409.
 * - a delegator that is a registered agent must be live; `delegator_agent_id` names one that must exist.
 * - walking up from the delegator must not reach the agent itself (a cycle), and the chain (agents from
 *   the root principal down to the new agent, retired ones included) plus whatever is already registered
 *   below the agent's own subject must be at most maxChainDepth agents deep: dependents() walks at most
 *   that far, so nothing that can be reached is ever out of its reach.
 * - a retired agent may be registered again under another delegator only when nothing below it is live
 *   (otherwise those agents would silently stop being reached from their old root): else 409.
 *
 * Liveness is `status = active` and `exp > now`: an expired agent not yet swept is no longer live.
 * Retiring an agent does not retire the agents below it: they stay registered until their own expiry,
 * and the session-revoked event sent for the retirement cascades to them (cascade-policy.ts).
 *
 * The scripts read keys they compute (chain walk), so they need a single Redis, not Redis Cluster
 * (same constraint as delivery/outbox.ts).
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import { BrokerError } from '../errors.js'
import { parseSubject, subjectKey, type Subject } from '../subjects/subject.js'

export interface AgentRecord {
  agent_id: string
  agent: Subject
  delegator: Subject
  /** Set when the delegator was a live registered agent at registration. */
  delegator_agent_id?: string
  task: string
  scopes: string[]
  sid?: string
  token_jti?: string
  /** client_id of the emitter that registered it. */
  registered_by: string
  /** Seconds since the epoch. */
  created_at: number
  expires_at: number
  status: 'active' | 'retired'
  retired_at?: number
  retired_reason?: string
}

export interface Dependent {
  agent_id: string
  record: AgentRecord
  /** From the principal the question was asked about to this agent: [principal, ..., record.agent]. */
  path: Subject[]
  /** True when the principal is itself a registered agent, or a token (`jwt_id`) held by one. */
  principalIsAgent: boolean
}

export interface AgentRegistryOptions {
  /** Longest `expires_in` accepted, seconds. */
  maxExpiresIn: number
  /** Most agents in one chain (user → A → B → C is 3). */
  maxChainDepth: number
  /** How long a retired record stays readable; raised to maxExpiresIn if lower. Default one day. */
  retiredRetentionSeconds?: number
  /** Clock (ms), for tests. */
  now?: () => number
  keyspace?: Keyspace
}

export interface RegisterResult {
  record: AgentRecord
  created: boolean
  /** An expired registration of the same agent that this one replaced before the sweeper retired it: tell its subscribers. */
  replaced?: AgentRecord
}

// Keys (keyspace.ts `agents`): one hash tag for the whole delegation graph, so registration and the
// cascade walk stay atomic scripts on Redis Cluster too.
/** How long a retirement may wait for its notification before a sweeper sends it (again). */
const NOTIFY_RETRY_MS = 30_000
/** Most nodes the registration script inspects below an agent's subject. */
const SUBTREE_CAP = 100_000
const MAX_TASK = 1000
const MAX_SCOPES = 256
const MAX_TEXT = 256
const INPUT_MEMBERS = ['agent', 'delegator', 'delegator_agent_id', 'task', 'scopes', 'expires_in', 'sid', 'token_jti'] as const
export const AGENT_ID = /^[A-Za-z0-9_-]{27}$/

/** The node id of a subject in the delegation graph; for an agent, its agent_id. */
export function nodeId(subject: Subject): string {
  return createHash('sha256').update(`ssf-agent\u0000${subjectKey(subject)}`).digest('base64url').slice(0, 27)
}

function agentKeys(ks: Keyspace) {
  const a = ks.agents
  return {
    anchor: a.anchor,
    recPrefix: a.recPrefix,
    dlgPrefix: a.dlgPrefix,
    exp: a.expiry,
    notify: a.notify,
    rec: (id: string) => a.recPrefix + id,
    dlg: (id: string) => a.dlgPrefix + id,
    jti: (jti: string) => a.jtiPrefix + createHash('sha256').update(jti).digest('hex').slice(0, 32),
  }
}

const REGISTER = `
local id, parent = ARGV[1], ARGV[2]
local now, maxDepth = tonumber(ARGV[5]), tonumber(ARGV[6])
local RP, DP = ARGV[7], ARGV[8]
local function live(status, exp) return status == 'active' and tonumber(exp) > now end
local cur = redis.call('HMGET', KEYS[1], 'status', 'exp', 'parent')
if cur[1] and live(cur[1], cur[2]) then
  if cur[3] == parent then return {'exists', redis.call('HGETALL', KEYS[1])} end
  return {'conflict', cur[3]}
end
local depth, node, chain, dagent = 1, parent, {}, ''
while true do
  if node == id then table.insert(chain, node); return {'cycle', chain} end
  local r = redis.call('HMGET', RP .. node, 'status', 'exp', 'parent')
  if not r[1] then
    if depth == 1 and ARGV[10] == '1' then return {'unknown_delegator', node} end
    break
  end
  if depth == 1 then
    if not live(r[1], r[2]) then return {'delegator_not_live', r[1]} end
    dagent = node
  end
  table.insert(chain, node)
  depth = depth + 1
  if depth > maxDepth then return {'too_deep', tostring(depth)} end
  node = r[3]
end
local height, anyLive, count, visited, frontier = 0, false, 0, {}, {id}
visited[id] = true
while #frontier > 0 do
  local nextf = {}
  for _, n in ipairs(frontier) do
    for _, child in ipairs(redis.call('SMEMBERS', DP .. n)) do
      if not visited[child] then
        visited[child] = true
        local r = redis.call('HMGET', RP .. child, 'status', 'exp', 'parent')
        if r[1] and r[3] == n then
          count = count + 1
          if count > tonumber(ARGV[11]) then return {'subtree_too_large', tostring(count)} end
          if live(r[1], r[2]) then anyLive = true end
          table.insert(nextf, child)
        end
      end
    end
  end
  if #nextf > 0 then height = height + 1 end
  if depth + height > maxDepth then return {'too_deep_below', tostring(depth + height), tostring(height)} end
  frontier = nextf
end
if cur[1] and cur[3] ~= parent and anyLive then return {'relink_live', cur[3]} end
local old = {}
if cur[1] then
  old = redis.call('HGETALL', KEYS[1])
  if cur[3] ~= parent then redis.call('SREM', DP .. cur[3], id) end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'status', 'active', 'exp', ARGV[4], 'parent', parent, 'dagent', dagent)
redis.call('SADD', KEYS[3], id)
redis.call('ZADD', KEYS[2], ARGV[4], id)
if ARGV[9] == '1' then redis.call('SADD', KEYS[4], id) end
local replaced = 0
if cur[1] == 'active' then replaced = 1 end
return {'created', dagent, replaced, old}
`

const RETIRE = `
local r = redis.call('HMGET', KEYS[1], 'status', 'parent')
if not r[1] then return {0} end
if r[1] ~= 'active' then return {1, redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'status', 'retired', 'retired_at', ARGV[2], 'retired_reason', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('SCARD', ARGV[5] .. ARGV[1]) == 0 then redis.call('SREM', ARGV[5] .. r[2], ARGV[1]) end
return {2, redis.call('HGETALL', KEYS[1])}
`

/** Claims retirements whose notification is overdue (the notifier crashed or failed): due again later. */
const CLAIM_NOTIFY = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
`

/**
 * Breadth-first walk down the edges from the seed nodes, in one call: returns whether the principal's
 * node has a record, then one row per node reached whose record names the node it was reached from as
 * its parent: id, parent ('' for a seed included itself), depth, record fields. Missing records are
 * reported as rows with an empty record, for cleanup. At most maxDepth agents deep.
 */
const WALK = `
local maxDepth, RP, DP = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = { redis.call('EXISTS', RP .. ARGV[4]) }
local visited, frontier = {}, {}
local function row(id, parent, depth, r)
  table.insert(out, { id, parent, tostring(depth), r[1] or '', r[2] or '', r[3] or '', r[4] or '', r[5] or '', r[6] or '', r[7] or '' })
end
local i = 5
while i <= #ARGV do
  local id, depth, self = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if not visited[id] then
    visited[id] = true
    if self == '1' then
      local r = redis.call('HMGET', RP .. id, 'record', 'status', 'exp', 'parent', 'dagent', 'retired_at', 'retired_reason')
      if r[1] then
        row(id, '', depth, r)
        table.insert(frontier, { id, depth })
      end
    else
      table.insert(frontier, { id, depth })
    end
  end
  i = i + 3
end
while #frontier > 0 do
  local nextf = {}
  for _, f in ipairs(frontier) do
    if f[2] < maxDepth then
      for _, child in ipairs(redis.call('SMEMBERS', DP .. f[1])) do
        if not visited[child] then
          local r = redis.call('HMGET', RP .. child, 'record', 'status', 'exp', 'parent', 'dagent', 'retired_at', 'retired_reason')
          if not r[1] then
            table.insert(out, { child, f[1], '', '' })
          elseif r[4] == f[1] then
            visited[child] = true
            row(child, f[1], f[2] + 1, r)
            table.insert(nextf, { child, f[2] + 1 })
          end
        end
      end
    end
  end
  frontier = nextf
end
return out
`

type Scripted = Redis & {
  ssfAgentRegister(...args: (string | number)[]): Promise<unknown[]>
  ssfAgentRetire(...args: (string | number)[]): Promise<unknown[]>
  ssfAgentWalk(...args: (string | number)[]): Promise<unknown[]>
  ssfAgentClaimNotify(...args: (string | number)[]): Promise<string[]>
}

/** Internal view of a stored record. */
interface Stored {
  record: AgentRecord
  parent: string
  exp: number
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function pairs(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!Array.isArray(flat)) return out
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

function fromHash(id: string, h: Record<string, string>): Stored | undefined {
  if (!h.record || !h.status || !h.exp || h.parent === undefined) return undefined
  const base = JSON.parse(h.record) as Omit<AgentRecord, 'status' | 'delegator_agent_id' | 'retired_at' | 'retired_reason'>
  const record: AgentRecord = {
    agent_id: id,
    agent: base.agent,
    delegator: base.delegator,
    ...(h.dagent ? { delegator_agent_id: h.dagent } : {}),
    task: base.task,
    scopes: base.scopes,
    ...(base.sid !== undefined ? { sid: base.sid } : {}),
    ...(base.token_jti !== undefined ? { token_jti: base.token_jti } : {}),
    registered_by: base.registered_by,
    created_at: base.created_at,
    expires_at: base.expires_at,
    status: h.status === 'active' ? 'active' : 'retired',
    ...(h.retired_at ? { retired_at: Number(h.retired_at) } : {}),
    ...(h.retired_reason !== undefined ? { retired_reason: h.retired_reason } : {}),
  }
  return { record, parent: h.parent, exp: Number(h.exp) }
}

function subjectField(input: Record<string, unknown>, name: 'agent' | 'delegator'): Subject {
  const value = input[name]
  if (value === undefined) throw new BrokerError('invalid_subject', `${name}: required, a subject identifier such as {"format": "uri", "uri": "spiffe://example.org/agent"}`)
  const parsed = parseSubject(value)
  if (!parsed.ok) {
    const first = parsed.issues[0]
    throw new BrokerError('invalid_subject', first ? `${first.path.replace(/^subject/, name)}: ${first.message}` : `${name}: invalid subject`)
  }
  return parsed.subject
}

function optionalText(input: Record<string, unknown>, name: string): string | undefined {
  const value = input[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) throw new BrokerError('invalid_request', `${name}: must be a non-empty string of at most ${MAX_TEXT} characters`)
  return value
}

export class AgentRegistry {
  private readonly redis: Scripted
  private readonly maxExpiresIn: number
  private readonly maxChainDepth: number
  private readonly retiredTtl: number
  private readonly now: () => number
  readonly #keys: ReturnType<typeof agentKeys>

  constructor(redis: Redis, options: AgentRegistryOptions) {
    this.#keys = agentKeys(options.keyspace ?? createKeyspace())
    if (!Number.isInteger(options.maxExpiresIn) || options.maxExpiresIn < 1) throw new TypeError('AgentRegistry: maxExpiresIn must be a positive whole number of seconds')
    if (!Number.isInteger(options.maxChainDepth) || options.maxChainDepth < 1) throw new TypeError('AgentRegistry: maxChainDepth must be a positive whole number')
    this.maxExpiresIn = options.maxExpiresIn
    this.maxChainDepth = options.maxChainDepth
    this.retiredTtl = Math.max(options.maxExpiresIn, options.retiredRetentionSeconds ?? 86_400)
    this.now = options.now ?? Date.now
    if (!('ssfAgentRegister' in redis)) redis.defineCommand('ssfAgentRegister', { numberOfKeys: 4, lua: REGISTER })
    if (!('ssfAgentRetire' in redis)) redis.defineCommand('ssfAgentRetire', { numberOfKeys: 3, lua: RETIRE })
    if (!('ssfAgentClaimNotify' in redis)) redis.defineCommand('ssfAgentClaimNotify', { numberOfKeys: 1, lua: CLAIM_NOTIFY })
    if (!('ssfAgentWalk' in redis)) redis.defineCommand('ssfAgentWalk', { numberOfKeys: 1, lua: WALK })
    this.redis = redis as Scripted
  }

  /**
   * Validates and stores a registration (see the module comment for the rules). Throws BrokerError:
   * 400 invalid_request / invalid_subject / delegation_cycle / delegation_too_deep, 404 unknown_delegator,
   * 409 agent_conflict.
   */
  async register(input: unknown, registeredBy: string): Promise<RegisterResult> {
    if (!isObject(input)) throw new BrokerError('invalid_request', 'body: must be a JSON object')
    for (const key of Object.keys(input)) {
      if (!(INPUT_MEMBERS as readonly string[]).includes(key)) throw new BrokerError('invalid_request', `${key.slice(0, 100)}: unknown member (an agent registration has ${INPUT_MEMBERS.join(', ')})`)
    }
    const agent = subjectField(input, 'agent')
    let delegatorAgentId: string | undefined
    if (input.delegator_agent_id !== undefined) {
      if (typeof input.delegator_agent_id !== 'string' || !AGENT_ID.test(input.delegator_agent_id)) throw new BrokerError('invalid_request', 'delegator_agent_id: must be an agent_id returned by POST /agents')
      delegatorAgentId = input.delegator_agent_id
    }
    let delegator: Subject
    if (input.delegator === undefined && delegatorAgentId !== undefined) {
      const found = await this.read(delegatorAgentId)
      if (!found) throw new BrokerError('unknown_delegator', `delegator_agent_id: no agent ${delegatorAgentId} is registered`)
      delegator = found.record.agent
    } else {
      delegator = subjectField(input, 'delegator')
      if (delegatorAgentId !== undefined && nodeId(delegator) !== delegatorAgentId) {
        throw new BrokerError('invalid_request', `delegator_agent_id: ${delegatorAgentId} is not the agent_id of "delegator"; give one of them, or both naming the same agent`)
      }
    }
    if (typeof input.task !== 'string' || input.task.trim() === '' || input.task.length > MAX_TASK) throw new BrokerError('invalid_request', `task: required, a non-empty string of at most ${MAX_TASK} characters`)
    const scopes = input.scopes
    if (!Array.isArray(scopes) || scopes.length > MAX_SCOPES || scopes.some((s) => typeof s !== 'string' || s.length === 0 || s.length > MAX_TEXT)) {
      throw new BrokerError('invalid_request', `scopes: required, an array of at most ${MAX_SCOPES} non-empty strings (may be empty)`)
    }
    const expiresIn = input.expires_in
    if (expiresIn === undefined) {
      throw new BrokerError('invalid_request', `expires_in: required: agent registrations are ephemeral; give the lifetime in seconds (1 to ${this.maxExpiresIn})`)
    }
    if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 1) throw new BrokerError('invalid_request', `expires_in: must be a whole number of seconds from 1 to ${this.maxExpiresIn}`)
    if (expiresIn > this.maxExpiresIn) throw new BrokerError('invalid_request', `expires_in: at most ${this.maxExpiresIn} seconds are allowed, got ${expiresIn}`)
    const sid = optionalText(input, 'sid')
    const tokenJti = optionalText(input, 'token_jti')

    const agentId = nodeId(agent)
    const parent = nodeId(delegator)
    if (parent === agentId) throw new BrokerError('delegation_cycle', 'delegator: an agent cannot delegate to itself')
    const now = this.now()
    const expMs = Math.ceil((now + expiresIn * 1000) / 1000) * 1000
    const base = {
      agent,
      delegator,
      task: input.task,
      scopes: [...new Set(scopes as string[])],
      ...(sid !== undefined ? { sid } : {}),
      ...(tokenJti !== undefined ? { token_jti: tokenJti } : {}),
      registered_by: registeredBy,
      created_at: Math.floor(now / 1000),
      expires_at: expMs / 1000,
    }
    const result = await this.redis.ssfAgentRegister(
      this.#keys.rec(agentId),
      this.#keys.exp,
      this.#keys.dlg(parent),
      tokenJti !== undefined ? this.#keys.jti(tokenJti) : this.#keys.jti(''),
      agentId,
      parent,
      JSON.stringify(base),
      expMs,
      now,
      this.maxChainDepth,
      this.#keys.recPrefix,
      this.#keys.dlgPrefix,
      tokenJti !== undefined ? 1 : 0,
      delegatorAgentId !== undefined ? 1 : 0,
      SUBTREE_CAP,
    )
    const [outcome, a, b, c] = result as [string, unknown, unknown, unknown]
    switch (outcome) {
      case 'exists':
        return { record: fromHash(agentId, pairs(a))!.record, created: false }
      case 'conflict':
        throw new BrokerError('agent_conflict', `agent ${agentId} is already registered and live with another delegator; retire it (DELETE /agents/${agentId}) or wait for it to expire before registering it for another delegator`)
      case 'cycle':
        throw new BrokerError('delegation_cycle', `delegator: the delegation would form a cycle: agent ${agentId} is already in the delegator's chain (${[...(a as string[])].reverse().join(' → ')} → ${agentId})`)
      case 'unknown_delegator':
        throw new BrokerError('unknown_delegator', `delegator_agent_id: no agent ${String(a)} is registered`)
      case 'delegator_not_live':
        throw new BrokerError('unknown_delegator', `delegator: agent ${parent} is ${a === 'active' ? 'expired' : 'retired'}; only a live agent (or a user) can delegate`)
      case 'too_deep':
        throw new BrokerError('delegation_too_deep', `delegator: the chain would be deeper than ${this.maxChainDepth} agents (the limit); register the agent under a delegator closer to the user`)
      case 'too_deep_below':
        throw new BrokerError(
          'delegation_too_deep',
          `agent: agents already registered below this agent's subject (${String(b)} levels) would make a chain of ${String(a)} agents, deeper than the limit of ${this.maxChainDepth}`,
        )
      case 'subtree_too_large':
        throw new BrokerError('delegation_too_deep', `agent: more than ${SUBTREE_CAP} agents are registered below this agent's subject`)
      case 'relink_live':
        throw new BrokerError('agent_conflict', `agent ${agentId} was registered with another delegator and agents it delegated to are still live; register it with its previous delegator or wait until they expire`)
      case 'created': {
        const stored = fromHash(agentId, {
          record: JSON.stringify(base),
          status: 'active',
          exp: String(expMs),
          parent,
          dagent: String(a),
        })!
        const old = Number(b) === 1 ? fromHash(agentId, pairs(c)) : undefined
        return { record: stored.record, created: true, ...(old ? { replaced: { ...old.record, status: 'retired', retired_at: Math.floor(now / 1000), retired_reason: 'expired' } } : {}) }
      }
      default:
        throw new Error(`agent registration script answered ${String(outcome)}`)
    }
  }

  private async read(agentId: string): Promise<Stored | undefined> {
    if (!AGENT_ID.test(agentId)) return undefined
    return fromHash(agentId, await this.redis.hgetall(this.#keys.rec(agentId)))
  }

  private isLive(stored: Stored, now = this.now()): boolean {
    return stored.record.status === 'active' && stored.exp > now
  }

  /**
   * One agent with its chain: `chain[0]` is the agent itself, then its delegator agent, and so on up to
   * the agent a user delegated to; `principal` is that user (the root of the chain). Retired agents in
   * the chain are included (with their status).
   */
  async get(agentId: string): Promise<{ record: AgentRecord; chain: AgentRecord[]; principal: Subject } | undefined> {
    const first = await this.read(agentId)
    if (!first) return undefined
    const chain: AgentRecord[] = [first.record]
    const seen = new Set([agentId])
    let cur = first
    while (chain.length <= this.maxChainDepth + 1 && !seen.has(cur.parent)) {
      seen.add(cur.parent)
      const next = await this.read(cur.parent)
      if (!next) break
      chain.push(next.record)
      cur = next
    }
    return { record: first.record, chain, principal: cur.record.delegator }
  }

  /** Live agents acting for `subject`, directly or down a chain (see dependents()). */
  async listActingFor(subject: Subject): Promise<AgentRecord[]> {
    return (await this.dependents(subject)).map((d) => d.record)
  }

  /**
   * Retires an active agent: status retired, off the expiry sweep, record kept for the retention.
   * Returns the retired record, or undefined when there is no such agent or it was already retired
   * (so of several concurrent callers, e.g. sweepers in several processes, exactly one gets the record).
   *
   * The retirement is also queued for notification: the caller tells subscribers, then calls
   * notified(agentId). If it crashes or fails before that, the expiry sweep (startExpirySweep) notifies
   * again after 30 s: subscribers are told at least once.
   */
  async retire(agentId: string, reason: string): Promise<AgentRecord | undefined> {
    if (!AGENT_ID.test(agentId)) return undefined
    const now = this.now()
    const result = (await this.redis.ssfAgentRetire(
      this.#keys.rec(agentId),
      this.#keys.exp,
      this.#keys.notify,
      agentId,
      Math.floor(now / 1000),
      reason.slice(0, 500),
      this.retiredTtl,
      this.#keys.dlgPrefix,
      now + NOTIFY_RETRY_MS,
    )) as [number, unknown?]
    if (result[0] !== 2) return undefined
    return fromHash(agentId, pairs(result[1]))?.record
  }

  /** The retirement of `agentId` has been notified: nothing left to retry. */
  async notified(agentId: string): Promise<void> {
    await this.redis.zrem(this.#keys.notify, agentId)
  }

  /** Retired agents whose notification is overdue at `now` (ms), claimed for another 30 s. */
  async claimUnnotified(now: number, limit: number): Promise<AgentRecord[]> {
    const ids = await this.redis.ssfAgentClaimNotify(this.#keys.notify, now, limit, now + NOTIFY_RETRY_MS)
    const out: AgentRecord[] = []
    for (const id of ids) {
      const stored = await this.read(id)
      if (stored && stored.record.status === 'retired') out.push(stored.record)
      else await this.notified(id) // gone past its retention, or registered again: nothing to tell
    }
    return out
  }

  /**
   * Every live agent whose delegation chain contains `principal`, transitively, each once, with the path
   * from the principal to it; breadth first (nearest first), at most maxChainDepth agents deep. Retired
   * agents are not returned but are walked through (agents they delegated to before retiring still act
   * for the principal until they expire).
   *
   * Besides the principal's own node:
   * - a complex principal with an `agent` member reaches what is below that agent; with a `user` member
   *   (and no `agent`), what is below that user, and with a `session` member too, only the user's direct
   *   delegations registered with that `sid` (an `opaque` session id) or with no `sid` at all;
   * - an `aliases` principal reaches what is below each identifier;
   * - a `jwt_id` principal reaches the agents registered with that `token_jti`, and what is below them.
   */
  async dependents(principal: Subject): Promise<Dependent[]> {
    const now = this.now()
    // Seeds: [node id, depth, include the node itself], and a filter on the first level below a seed.
    const seeds: [string, number, 0 | 1][] = []
    const keepBelow = new Map<string, (record: AgentRecord) => boolean>()
    const seed = (subject: Subject, keep?: (record: AgentRecord) => boolean) => {
      const id = nodeId(subject)
      seeds.push([id, 0, 0])
      if (keep) keepBelow.set(id, keep)
    }
    seed(principal)
    if (principal.format === 'complex') {
      const agentMember = principal.agent
      const user = principal.user
      if (agentMember && typeof agentMember === 'object') seed(agentMember)
      else if (user) {
        const session = principal.session
        const sid = session && session.format === 'opaque' ? session.id : undefined
        seed(user, session ? (record) => record.sid === undefined || sid === undefined || record.sid === sid : undefined)
      }
    } else if (principal.format === 'aliases') {
      for (const identifier of principal.identifiers) seed(identifier)
    } else if (principal.format === 'jwt_id') {
      // The agents holding that token are dependents themselves (depth 1), then what is below them.
      for (const id of await this.redis.smembers(this.#keys.jti(principal.jti))) seeds.push([id, 1, 1])
    }
    const rows = await this.redis.ssfAgentWalk(this.#keys.anchor, this.maxChainDepth, this.#keys.recPrefix, this.#keys.dlgPrefix, nodeId(principal), ...seeds.flat())
    const principalIsAgent = principal.format === 'jwt_id' || rows[0] === 1
    const paths = new Map<string, Subject[]>()
    for (const [id, , self] of seeds) if (self === 0) paths.set(id, [principal])
    const out: Dependent[] = []
    const stale: [string, string][] = []
    const holders = new Set<string>()
    for (const row of rows.slice(1) as string[][]) {
      const [id, parent, , record, status, exp, parentField, dagent, retiredAt, retiredReason] = row as [string, string, string, string, string?, string?, string?, string?, string?, string?]
      if (record === '') {
        stale.push([parent, id])
        continue
      }
      const stored = fromHash(id, { record, status: status!, exp: exp!, parent: parentField!, dagent: dagent!, ...(retiredAt ? { retired_at: retiredAt } : {}), ...(retiredReason ? { retired_reason: retiredReason } : {}) })
      if (!stored) continue
      if (parent === '') {
        if (principal.format !== 'jwt_id' || stored.record.token_jti !== principal.jti) continue
        holders.add(id)
      }
      // Reached from a node that was itself left out (or not reached): leave this one out too.
      const above = parent === '' ? [principal] : paths.get(parent)
      if (!above) continue
      const keep = keepBelow.get(parent)
      if (keep && !keep(stored.record)) continue
      const path = [...above, stored.record.agent]
      paths.set(id, path)
      if (this.isLive(stored, now)) out.push({ agent_id: id, record: stored.record, path, principalIsAgent })
    }
    // Edges to records gone past their retention, token entries of agents gone or registered again with
    // another token: drop them (best effort, nothing depends on it).
    const staleHolders = principal.format === 'jwt_id' ? seeds.filter(([id, , self]) => self === 1 && !holders.has(id)).map(([id]) => id) : []
    if (stale.length > 0 || staleHolders.length > 0) {
      const cleanup = this.redis.pipeline()
      for (const [from, id] of stale) cleanup.srem(this.#keys.dlg(from), id)
      if (principal.format === 'jwt_id' && staleHolders.length > 0) cleanup.srem(this.#keys.jti(principal.jti), ...staleHolders)
      void cleanup.exec().catch(() => {})
    }
    return out
  }

  /** agent_ids of active agents whose expiry is at or before `now` (ms), soonest first. */
  async dueForExpiry(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.#keys.exp, '-inf', now, 'LIMIT', 0, limit)
  }

  /**
   * The expiry sweep: retires up to `limit` agents due at `now` (ms) with reason "expired", calls
   * `onRetired` for each this call retired and marks it notified once that resolved (safe to run in every
   * broker process at once). Returns the number of agents that were due.
   */
  async sweepExpired(now: number, limit: number, onRetired: (record: AgentRecord, reason: string) => Promise<void>): Promise<number> {
    const due = await this.dueForExpiry(now, limit)
    for (const id of due) {
      const record = await this.retire(id, 'expired')
      if (record) {
        await onRetired(record, 'expired')
        await this.notified(id)
      }
    }
    return due.length
  }

  /**
   * Every `intervalMs` (default 500 ms; an agent is retired at most about that long after its expiry):
   * retires what has expired, `batch` at a time until nothing is due, and re-sends retirement
   * notifications that were never confirmed. Safe in every broker process. Returns stop().
   */
  startExpirySweep(
    onRetired: (record: AgentRecord, reason: string) => Promise<void>,
    options: { intervalMs?: number; batch?: number; onError?: (err: unknown) => void } = {},
  ): () => void {
    const batch = options.batch ?? 500
    let running = false
    let stopped = false
    const tick = async () => {
      if (running || stopped) return
      running = true
      try {
        while (!stopped && (await this.sweepExpired(this.now(), batch, onRetired)) === batch) {
          // More were due: keep going.
        }
        for (const record of await this.claimUnnotified(this.now(), batch)) {
          if (stopped) break
          await onRetired(record, record.retired_reason ?? 'retired')
          await this.notified(record.agent_id)
        }
      } catch (err) {
        options.onError?.(err)
      } finally {
        running = false
      }
    }
    const timer = setInterval(() => void tick(), options.intervalMs ?? 500)
    timer.unref()
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }
}
