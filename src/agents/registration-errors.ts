/**
 * What a refused registration means, in the error family: the registration script answers with an outcome
 * word and its detail (agents/scripts/agent-register.lua); this says it to the caller.
 */
import { BrokerError } from '../errors.js'

export interface RefusalContext {
  agentId: string
  parent: string
  maxChainDepth: number
  subtreeCap: number
}

export function registrationRefused(
  outcome: string,
  a: unknown,
  b: unknown,
  ctx: RefusalContext,
): BrokerError {
  const { agentId, parent, maxChainDepth } = ctx
  switch (outcome) {
    case 'conflict':
      return new BrokerError(
        'agent_conflict',
        `agent ${agentId} is already registered and live with another delegator; retire it (DELETE /agents/${agentId}) or wait for it to expire before registering it for another delegator`,
      )
    case 'cycle':
      return new BrokerError(
        'delegation_cycle',
        `delegator: the delegation would form a cycle: agent ${agentId} is already in the delegator's chain (${[...(a as string[])].reverse().join(' → ')} → ${agentId})`,
      )
    case 'unknown_delegator':
      return new BrokerError(
        'unknown_delegator',
        `delegator_agent_id: no agent ${String(a)} is registered`,
      )
    case 'delegator_not_live':
      return new BrokerError(
        'unknown_delegator',
        `delegator: agent ${parent} is ${a === 'active' ? 'expired' : 'retired'}; only a live agent (or a user) can delegate`,
      )
    case 'too_deep':
      return new BrokerError(
        'delegation_too_deep',
        `delegator: the chain would be deeper than ${maxChainDepth} agents (the limit); register the agent under a delegator closer to the user`,
      )
    case 'too_deep_below':
      return new BrokerError(
        'delegation_too_deep',
        `agent: agents already registered below this agent's subject (${String(b)} levels) would make a chain of ${String(a)} agents, deeper than the limit of ${maxChainDepth}`,
      )
    case 'subtree_too_large':
      return new BrokerError(
        'delegation_too_deep',
        `agent: more than ${ctx.subtreeCap} agents are registered below this agent's subject`,
      )
    case 'relink_live':
      return new BrokerError(
        'agent_conflict',
        `agent ${agentId} was registered with another delegator and agents it delegated to are still live; register it with its previous delegator or wait until they expire`,
      )
    default:
      return new BrokerError('server_error', `agent registration script answered ${outcome}`)
  }
}
