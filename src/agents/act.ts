/**
 * The delegation path of a cascaded SET as an RFC 8693-style nested `act` object (RFC 8693 §4.1;
 * ssf-spec.md §5.2), carried in the event payload as the member `act`.
 *
 * Given the path from the principal the original event was about to the dependent agent,
 * `[principal, agent1, agent2, ..., agentN]`, the shape is:
 *
 *     {
 *       "sub_id": <agentN>,                 // outermost: the agent this SET is for, the current actor
 *       "act": {
 *         "sub_id": <agentN-1>,             // the agent that delegated to agentN
 *         "act": {
 *           ...
 *           "act": {
 *             "sub_id": <agent1>,           // the agent the principal delegated to
 *             "act": { "sub_id": <principal> }   // innermost: where the delegation started
 *           }
 *         }
 *       }
 *     }
 *
 * - Every level names its actor with `sub_id`, an SSF/RFC 9493 subject identifier exactly as registered,
 *   rather than RFC 8693's bare `sub` string, because agents are identified by subject identifiers here
 *   (usually `uri` SPIFFE/WIMSE IDs). A level whose subject is `iss_sub` also carries RFC 8693's own `iss`
 *   and `sub`, so a receiver that already reads token `act` claims finds them where it expects.
 * - As in RFC 8693, the outermost actor is the current one and the nested ones are history; only
 *   identity claims appear (no `exp`, `aud`, ...).
 * - The innermost level is the principal. In an RFC 8693 token that principal would be the token's `sub`
 *   and not an actor; it is kept at the bottom of the chain here so that the payload alone carries the
 *   whole path, whatever form the SET's `sub_id` takes (see subjects.ts): a receiver walks `act` to the
 *   innermost level to learn whom the agent ultimately acted for.
 * - A path of one element (the principal alone) has no actor and yields `{ "sub_id": <principal> }`.
 */
import type { Subject } from '../subjects/subject.js'

export interface ActLevel {
  sub_id: Subject
  iss?: string
  sub?: string
  act?: ActLevel
}

function level(subject: Subject, inner: ActLevel | undefined): ActLevel {
  const out: ActLevel = { sub_id: subject }
  if (subject.format === 'iss_sub') {
    out.iss = subject.iss
    out.sub = subject.sub
  }
  if (inner) out.act = inner
  return out
}

/** The nested `act` for `path` = [principal, ..., agent] (see the module comment). Throws on an empty path. */
export function buildActChain(path: readonly Subject[]): ActLevel {
  if (path.length === 0) throw new TypeError('buildActChain: the path needs at least the principal')
  let chain: ActLevel | undefined
  for (const subject of path) chain = level(subject, chain)
  return chain!
}

/** The path back out of an `act` chain, principal first (the inverse of buildActChain). */
export function actChainPath(chain: ActLevel): Subject[] {
  const out: Subject[] = []
  for (let cur: ActLevel | undefined = chain; cur; cur = cur.act) out.unshift(cur.sub_id)
  return out
}
