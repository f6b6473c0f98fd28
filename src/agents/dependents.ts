/**
 * Who acts for a principal: every live agent whose delegation chain contains it, transitively, each once,
 * with the path from the principal to it; breadth first (nearest first), at most maxChainDepth agents
 * deep, in one script call (agents/scripts/agent-walk.lua). Retired agents are not returned but are walked
 * through (agents they delegated to before retiring still act for the principal until they expire).
 *
 * Besides the principal's own node:
 * - a complex principal with an `agent` member reaches what is below that agent; with a `user` member
 *   (and no `agent`), what is below that user, and with a `session` member too, only the user's direct
 *   delegations registered with that `sid` (an `opaque` session id) or with no `sid` at all;
 * - an `aliases` principal reaches what is below each identifier;
 * - a `jwt_id` principal reaches the agents registered with that `token_jti`, and what is below them.
 */
import type { Redis } from 'ioredis'
import type { Keyspace } from '../redis/keyspace.js'
import { defineScripts } from '../redis/scripts.js'
import type { Subject } from '../subjects/subject.js'
import { fromHash, isLive, nodeId, type AgentRecord, type Dependent } from './model.js'

const SCRIPTS = {
  ssfAgentWalk: { file: new URL('./scripts/agent-walk.lua', import.meta.url), numberOfKeys: 1 },
}

export class DelegationGraph {
  private readonly redis: ReturnType<typeof defineScripts<keyof typeof SCRIPTS>>

  constructor(
    redis: Redis,
    private readonly keys: Keyspace['agents'],
    private readonly maxChainDepth: number,
  ) {
    this.redis = defineScripts(redis, SCRIPTS)
  }

  async dependents(principal: Subject, now: number): Promise<Dependent[]> {
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
        seed(
          user,
          session
            ? (record) => record.sid === undefined || sid === undefined || record.sid === sid
            : undefined,
        )
      }
    } else if (principal.format === 'aliases') {
      for (const identifier of principal.identifiers) seed(identifier)
    } else if (principal.format === 'jwt_id') {
      // The agents holding that token are dependents themselves (depth 1), then what is below them.
      for (const id of await this.redis.smembers(this.keys.tokenJti(principal.jti)))
        seeds.push([id, 1, 1])
    }
    const rows = (await this.redis.ssfAgentWalk(
      this.keys.anchor,
      this.maxChainDepth,
      this.keys.recPrefix,
      this.keys.dlgPrefix,
      nodeId(principal),
      ...seeds.flat(),
    )) as unknown[]
    const principalIsAgent = principal.format === 'jwt_id' || rows[0] === 1
    const paths = new Map<string, Subject[]>()
    for (const [id, , self] of seeds) if (self === 0) paths.set(id, [principal])
    const out: Dependent[] = []
    const stale: [string, string][] = []
    const holders = new Set<string>()
    for (const row of rows.slice(1) as string[][]) {
      const [id, parent, , record, status, exp, parentField, dagent, retiredAt, retiredReason] =
        row as [
          string,
          string,
          string,
          string,
          string?,
          string?,
          string?,
          string?,
          string?,
          string?,
        ]
      if (record === '') {
        stale.push([parent, id])
        continue
      }
      const stored = fromHash(id, {
        record,
        status: status!,
        exp: exp!,
        parent: parentField!,
        dagent: dagent!,
        ...(retiredAt ? { retired_at: retiredAt } : {}),
        ...(retiredReason ? { retired_reason: retiredReason } : {}),
      })
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
      if (isLive(stored, now))
        out.push({ agent_id: id, record: stored.record, path, principalIsAgent })
    }
    // Edges to records gone past their retention, token entries of agents gone or registered again with
    // another token: drop them (best effort, nothing depends on it).
    const staleHolders =
      principal.format === 'jwt_id'
        ? seeds.filter(([id, , self]) => self === 1 && !holders.has(id)).map(([id]) => id)
        : []
    if (stale.length > 0 || staleHolders.length > 0) {
      const cleanup = this.redis.pipeline()
      for (const [from, id] of stale) cleanup.srem(this.keys.delegations(from), id)
      if (principal.format === 'jwt_id' && staleHolders.length > 0)
        cleanup.srem(this.keys.tokenJti(principal.jti), ...staleHolders)
      void cleanup.exec().catch(() => {})
    }
    return out
  }
}
