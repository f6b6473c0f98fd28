/**
 * The `sub_id` of a cascaded SET (SSF §3.2 complex subjects; ssf-spec.md §5.1): which agent the SET is for.
 *
 * - When the principal the original event was about is a *user* (not itself a registered agent) and both
 *   the principal and the agent are simple subjects: `{"format": "complex", "user": <principal>,
 *   "agent": <agent>}`. This reads as "agent acting for user", matches a receiver that added either the
 *   agent's subject or the user's (subjects/index-store.ts: a simple subject matches a complex one that
 *   holds it as a member), and lets a receiver that knows the agent's sessions per user revoke exactly
 *   those. `agent` is not an SSF §3.2 member name, so the broker lists it in `critical_subject_members`
 *   when agent subjects are enabled: a receiver that cannot process it drops the SET instead of
 *   over-applying it to every session of the user.
 * - Otherwise (the principal is itself an agent, or either subject is complex and so cannot be nested in
 *   a complex subject): the agent's own subject. Naming an agent principal `user` would be false, and the
 *   full path is in the payload's `act` chain anyway (act.ts).
 */
import type { Subject } from '../subjects/subject.js'

/** The complex-subject member that names an agent. */
export const AGENT_SUBJECT_MEMBER = 'agent'

export function dependentSubId(
  principal: Subject,
  agent: Subject,
  options: { principalIsAgent?: boolean } = {},
): Subject {
  if (options.principalIsAgent || principal.format === 'complex' || agent.format === 'complex')
    return agent
  return { format: 'complex', user: principal, [AGENT_SUBJECT_MEMBER]: agent }
}
