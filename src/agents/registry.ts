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
 *   delegations(node)  set of agent_ids whose delegator is that node (the graph's edges). Survives
 *                  its node's record, so a user's subject needs no record of its own.
 *   expiry             zset agent_id -> exp (ms) of active agents: the expiry sweep.
 *   tokenJti(jti)      set of agent_ids registered with that token_jti: an event about a
 *                  `jwt_id` subject reaches the agent holding that token and everything below it.
 *
 * Rules (the request itself is checked by agents/registration.ts), checked and written by one Lua script
 * (agents/scripts/agent-register.lua) so that nothing is ever half-written and concurrent
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
 * The scripts read keys they build from the prefixes (the chain walk), all under the one {agents} tag, and
 * declare one key of that slot, so they run on Redis Cluster too. Who acts for a principal:
 * agents/dependents.ts; expiry: agents/expiry.ts.
 */
import type { Redis } from 'ioredis'
import { createKeyspace, type Keyspace } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import { BrokerError } from '../errors.js'
import type { Subject } from '../subjects/subject.js'
import {
  AGENT_ID,
  fromHash,
  nodeId,
  pairs,
  type AgentRecord,
  type Dependent,
  type RegisterResult,
  type Stored,
} from './model.js'
import { parseRegistration } from './registration.js'
import { registrationRefused } from './registration-errors.js'
import { DelegationGraph } from './dependents.js'
import { startExpirySweep, sweepExpired, type OnRetired } from './expiry.js'

export { AGENT_ID, nodeId, type AgentRecord, type Dependent, type RegisterResult } from './model.js'

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

/** How long a retirement may wait for its notification before a sweeper sends it (again). */
const NOTIFY_RETRY_MS = 30_000
/** Most nodes the registration script inspects below an agent's subject. */
const SUBTREE_CAP = 100_000

const SCRIPTS = {
  ssfAgentRegister: {
    file: new URL('./scripts/agent-register.lua', import.meta.url),
    numberOfKeys: 4,
  },
  ssfAgentRetire: { file: new URL('./scripts/agent-retire.lua', import.meta.url), numberOfKeys: 3 },
  ssfAgentClaimNotify: {
    file: new URL('./scripts/agent-claim-notify.lua', import.meta.url),
    numberOfKeys: 1,
  },
}

export class AgentRegistry {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>
  private readonly maxExpiresIn: number
  private readonly maxChainDepth: number
  private readonly retiredTtl: number
  readonly now: () => number
  readonly #keys: Keyspace['agents']
  readonly #graph: DelegationGraph

  constructor(redis: Redis, options: AgentRegistryOptions) {
    this.#keys = (options.keyspace ?? createKeyspace()).agents
    if (!Number.isInteger(options.maxExpiresIn) || options.maxExpiresIn < 1)
      throw new TypeError('AgentRegistry: maxExpiresIn must be a positive whole number of seconds')
    if (!Number.isInteger(options.maxChainDepth) || options.maxChainDepth < 1)
      throw new TypeError('AgentRegistry: maxChainDepth must be a positive whole number')
    this.maxExpiresIn = options.maxExpiresIn
    this.maxChainDepth = options.maxChainDepth
    this.retiredTtl = Math.max(options.maxExpiresIn, options.retiredRetentionSeconds ?? 86_400)
    this.now = options.now ?? Date.now
    this.redis = defineScripts(redis, SCRIPTS)
    this.#graph = new DelegationGraph(redis, this.#keys, this.maxChainDepth)
  }

  /**
   * Validates and stores a registration (see the module comment for the rules). Throws BrokerError:
   * 400 invalid_request / invalid_subject / delegation_cycle / delegation_too_deep, 404 unknown_delegator,
   * 409 agent_conflict.
   */
  async register(input: unknown, registeredBy: string): Promise<RegisterResult> {
    const reg = parseRegistration(input, this.maxExpiresIn)
    let delegator = reg.delegator
    if (delegator === undefined) {
      const found = await this.read(reg.delegatorAgentId!)
      if (!found)
        throw new BrokerError(
          'unknown_delegator',
          `delegator_agent_id: no agent ${reg.delegatorAgentId} is registered`,
        )
      delegator = found.record.agent
    }
    const agentId = nodeId(reg.agent)
    const parent = nodeId(delegator)
    if (parent === agentId)
      throw new BrokerError('delegation_cycle', 'delegator: an agent cannot delegate to itself')
    const now = this.now()
    const expMs = Math.ceil((now + reg.expiresIn * 1000) / 1000) * 1000
    const base = {
      agent: reg.agent,
      delegator,
      task: reg.task,
      scopes: reg.scopes,
      ...(reg.sid !== undefined ? { sid: reg.sid } : {}),
      ...(reg.tokenJti !== undefined ? { token_jti: reg.tokenJti } : {}),
      registered_by: registeredBy,
      created_at: Math.floor(now / 1000),
      expires_at: expMs / 1000,
    }
    const result = await this.redis.ssfAgentRegister(
      this.#keys.record(agentId),
      this.#keys.expiry,
      this.#keys.delegations(parent),
      this.#keys.tokenJti(reg.tokenJti ?? ''),
      agentId,
      parent,
      JSON.stringify(base),
      expMs,
      now,
      this.maxChainDepth,
      this.#keys.recPrefix,
      this.#keys.dlgPrefix,
      reg.tokenJti !== undefined ? 1 : 0,
      reg.delegatorAgentId !== undefined ? 1 : 0,
      SUBTREE_CAP,
    )
    const [outcome, a, b, c] = result as [string, unknown, unknown, unknown]
    if (outcome === 'exists') return { record: fromHash(agentId, pairs(a))!.record, created: false }
    if (outcome !== 'created')
      throw registrationRefused(outcome, a, b, {
        agentId,
        parent,
        maxChainDepth: this.maxChainDepth,
        subtreeCap: SUBTREE_CAP,
      })
    const stored = fromHash(agentId, {
      record: JSON.stringify(base),
      status: 'active',
      exp: String(expMs),
      parent,
      dagent: String(a),
    })!
    const old = Number(b) === 1 ? fromHash(agentId, pairs(c)) : undefined
    return {
      record: stored.record,
      created: true,
      ...(old
        ? {
            replaced: {
              ...old.record,
              status: 'retired',
              retired_at: Math.floor(now / 1000),
              retired_reason: 'expired',
            },
          }
        : {}),
    }
  }

  private async read(agentId: string): Promise<Stored | undefined> {
    if (!AGENT_ID.test(agentId)) return undefined
    return fromHash(agentId, await this.redis.hgetall(this.#keys.record(agentId)))
  }

  /**
   * One agent with its chain: `chain[0]` is the agent itself, then its delegator agent, and so on up to
   * the agent a user delegated to; `principal` is that user (the root of the chain). Retired agents in
   * the chain are included (with their status).
   */
  async get(
    agentId: string,
  ): Promise<{ record: AgentRecord; chain: AgentRecord[]; principal: Subject } | undefined> {
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

  /** Every live agent acting for `principal`, transitively, with its path (agents/dependents.ts). */
  dependents(principal: Subject): Promise<Dependent[]> {
    return this.#graph.dependents(principal, this.now())
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
      this.#keys.record(agentId),
      this.#keys.expiry,
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
    const ids = (await this.redis.ssfAgentClaimNotify(
      this.#keys.notify,
      now,
      limit,
      now + NOTIFY_RETRY_MS,
    )) as string[]
    const out: AgentRecord[] = []
    for (const id of ids) {
      const stored = await this.read(id)
      if (stored && stored.record.status === 'retired') out.push(stored.record)
      else await this.notified(id) // gone past its retention, or registered again: nothing to tell
    }
    return out
  }

  /** agent_ids of active agents whose expiry is at or before `now` (ms), soonest first. */
  async dueForExpiry(now: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.#keys.expiry, '-inf', now, 'LIMIT', 0, limit)
  }

  /** One expiry sweep at `now` (agents/expiry.ts). */
  sweepExpired(now: number, limit: number, onRetired: OnRetired): Promise<number> {
    return sweepExpired(this, now, limit, onRetired)
  }

  /** The periodic expiry sweep (agents/expiry.ts); returns stop(). */
  startExpirySweep(
    onRetired: OnRetired,
    options: { intervalMs?: number; batch?: number; onError?: (err: unknown) => void } = {},
  ): () => void {
    return startExpirySweep(this, onRetired, options)
  }
}
