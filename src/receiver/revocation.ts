/**
 * What a revocation is, which SETs cause one, and how it is matched against an access token.
 *
 * A SET's subject (SSF §3, RFC 9493) becomes one or more {@link Revocation}s. A complex subject is one
 * principal described by several members (SSF §3.2), so it becomes one revocation whose targets must
 * all match: `{user, session}` revokes that session only, `{user}` every token of the user (CAEP §3.1:
 * "every session derived from the matching combination"). `aliases` become one revocation per alias.
 *
 * | Subject (member)                         | Target kind | Matched against the token's                          |
 * |------------------------------------------|-------------|------------------------------------------------------|
 * | `iss_sub`, `email`, `phone_number`, `account`, `opaque` (member `user`) | `user`  | `sub`, `email`, every actor's `sub`      |
 * | `session` member                          | `session`   | `sid`                                                |
 * | `uri`, `did`, member `agent`              | `agent`     | `sub`, `client_id`, `azp`, every actor's `sub` / `client_id` |
 * | member `application`                      | `client`    | `client_id`, `azp`, every actor's `client_id` / `sub` |
 * | `jwt_id`                                  | `token`     | `jti`                                                |
 *
 * Targets carrying an issuer (`iss_sub`, `jwt_id`) match only tokens (or actors) from that issuer.
 * Emails compare case-insensitively. Members that cannot be matched against token claims (`device`,
 * `tenant`, `org_unit`, `group`, unknown ones) are left out, which makes a revocation broader, never
 * narrower; a subject with no matchable member revokes nothing.
 *
 * A token is refused when its `iat` is at or before the revocation's event time (CAEP `event_timestamp`,
 * capped at the SET's `iat`), or when it has no `iat`. A `token` (jti) revocation refuses that token
 * whatever its `iat`. The `act` chain (RFC 8693 §4.1) is walked to its end: every actor counts.
 *
 * @module
 */
import { isObject } from './http.js'
import type { ActorClaim, SubjectIdentifier, TokenClaims, VerifiedSet } from './types.js'

/** What a revocation target names. */
export type RevocationKind = 'user' | 'agent' | 'client' | 'session' | 'token'

/** One thing revoked: a principal, session, client or token, optionally scoped to an issuer. */
export interface RevocationTarget {
  kind: RevocationKind
  id: string
  iss?: string
}

/** A revocation to record: all `targets` must match a token for it to be refused. */
export interface Revocation {
  targets: RevocationTarget[]
  /** Event time in seconds: tokens issued at or before it are refused. */
  revokedAt: number
  /** The event type that caused it. */
  eventType?: string
  /** The SET's `jti` and `txn`, for audit. */
  setJti?: string
  txn?: string
  /** A short reason for logs (e.g. the `reason_admin` text). */
  reason?: string
}

/** A recorded revocation. */
export interface RevocationRecord extends Revocation {
  /** Canonical identity of the target set: recording the same targets again keeps the later time. */
  id: string
  /** When it was recorded (ms since the epoch). */
  recordedAt: number
  /** When the index forgets it (ms since the epoch). */
  expiresAt: number
}

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

/**
 * Event types that revoke by default: CAEP session-revoked and token-claims-change (cached decisions
 * must not outlive a claims change), CAEP credential-change when a credential is revoked or deleted,
 * and RISC account-disabled, account-purged, credential-compromise and (deprecated) sessions-revoked.
 */
export const REVOKING_EVENT_TYPES: readonly string[] = [
  `${CAEP}session-revoked`,
  `${CAEP}token-claims-change`,
  `${CAEP}credential-change`,
  `${RISC}account-disabled`,
  `${RISC}account-purged`,
  `${RISC}credential-compromise`,
  `${RISC}sessions-revoked`,
]

/** The default policy: does this verified SET revoke its subject? */
export function isRevokingEvent(set: Pick<VerifiedSet, 'type' | 'event'>): boolean {
  if (!REVOKING_EVENT_TYPES.includes(set.type)) return false
  if (set.type === `${CAEP}credential-change`)
    return set.event.change_type === 'revoke' || set.event.change_type === 'delete'
  return true
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

/** The identifying value of a simple subject identifier. */
function identifier(subject: unknown): { id: string; iss?: string; email?: true } | undefined {
  if (!isObject(subject)) return undefined
  switch (subject.format) {
    case 'iss_sub': {
      const sub = str(subject.sub)
      const iss = str(subject.iss)
      return sub ? { id: sub, ...(iss ? { iss } : {}) } : undefined
    }
    case 'jwt_id': {
      const jti = str(subject.jti)
      const iss = str(subject.iss)
      return jti ? { id: jti, ...(iss ? { iss } : {}) } : undefined
    }
    case 'email': {
      const email = str(subject.email)
      return email ? { id: email.toLowerCase(), email: true } : undefined
    }
    case 'opaque':
      return str(subject.id) ? { id: subject.id as string } : undefined
    case 'phone_number':
      return str(subject.phone_number) ? { id: subject.phone_number as string } : undefined
    case 'account':
    case 'uri':
      return str(subject.uri) ? { id: subject.uri as string } : undefined
    case 'did':
      return str(subject.url) ? { id: subject.url as string } : undefined
    default:
      return undefined
  }
}

function target(kind: RevocationKind, subject: unknown): RevocationTarget | undefined {
  const value = identifier(subject)
  if (!value) return undefined
  // A jwt_id anywhere names a token.
  if (isObject(subject) && subject.format === 'jwt_id') kind = 'token'
  return { kind, id: value.id, ...(value.iss ? { iss: value.iss } : {}) }
}

const SIMPLE_KIND: Record<string, RevocationKind> = {
  iss_sub: 'user',
  email: 'user',
  phone_number: 'user',
  account: 'user',
  opaque: 'user',
  uri: 'agent',
  did: 'agent',
  jwt_id: 'token',
}

const MEMBER_KIND: Record<string, RevocationKind> = {
  user: 'user',
  agent: 'agent',
  session: 'session',
  application: 'client',
}

/** The target sets a subject revokes (one per alias; a complex subject is one set). */
export function targetsFromSubject(subject: SubjectIdentifier): RevocationTarget[][] {
  if (subject.format === 'aliases') {
    const ids = Array.isArray(subject.identifiers) ? subject.identifiers : []
    return ids.flatMap((id) =>
      isObject(id) && id.format !== 'aliases' ? targetsFromSubject(id as SubjectIdentifier) : [],
    )
  }
  if (subject.format === 'complex') {
    const targets: RevocationTarget[] = []
    for (const [member, value] of Object.entries(subject)) {
      const kind = MEMBER_KIND[member]
      if (!kind) continue
      const t = target(kind, value)
      if (t) targets.push(t)
    }
    return targets.length > 0 ? [targets] : []
  }
  const kind = SIMPLE_KIND[subject.format]
  const t = kind ? target(kind, subject) : undefined
  return t ? [[t]] : []
}

function reasonOf(event: Record<string, unknown>): string | undefined {
  const r = event.reason_admin
  if (isObject(r)) {
    const text =
      typeof r.en === 'string' ? r.en : Object.values(r).find((v) => typeof v === 'string')
    if (typeof text === 'string') return text.slice(0, 200)
  }
  return undefined
}

/**
 * The revocations a verified SET asks for (empty when its type does not revoke or its subject cannot
 * be matched against tokens). The event time is `event_timestamp`, else `toe`, else `iat`, and never
 * later than the SET's `iat` (an event cannot happen after the SET describing it was issued).
 */
export function revocationsFromSet(
  set: VerifiedSet,
  isRevocation: (set: VerifiedSet) => boolean = isRevokingEvent,
): Revocation[] {
  if (!isRevocation(set)) return []
  const ts =
    typeof set.event.event_timestamp === 'number'
      ? set.event.event_timestamp
      : typeof set.claims.toe === 'number'
        ? set.claims.toe
        : set.iat
  const revokedAt = Math.min(ts, set.iat)
  const reason = reasonOf(set.event)
  return targetsFromSubject(set.subject).map((targets) => ({
    targets,
    revokedAt,
    eventType: set.type,
    setJti: set.jti,
    ...(set.txn !== undefined ? { txn: set.txn } : {}),
    ...(reason !== undefined ? { reason } : {}),
  }))
}

const NS: Record<RevocationKind, string> = {
  user: 'u',
  agent: 'a',
  client: 'c',
  session: 's',
  token: 'j',
}

/** The lookup key of a target. */
export function targetKey(t: RevocationTarget): string {
  return `${NS[t.kind]}|${t.iss ?? ''}|${t.id}`
}

/** Canonical id of a target set. */
export function revocationId(targets: readonly RevocationTarget[]): string {
  return [...new Set(targets.map(targetKey))].sort().join('\n')
}

const ANCHOR_ORDER: readonly RevocationKind[] = ['token', 'session', 'client', 'agent', 'user']

/** The single key a revocation is stored under: its most selective target. */
export function anchorKey(targets: readonly RevocationTarget[]): string {
  for (const kind of ANCHOR_ORDER) {
    const t = targets.find((x) => x.kind === kind)
    if (t) return targetKey(t)
  }
  throw new TypeError('a revocation needs at least one target')
}

/** The actors of an RFC 8693 `act` chain, outermost (current) first; depth is capped. */
export function actorChain(act: unknown): ActorClaim[] {
  const chain: ActorClaim[] = []
  let current = act
  while (isObject(current) && chain.length < 16) {
    chain.push(current as ActorClaim)
    current = current.act
  }
  return chain
}

/** Every key under which a revocation could refuse this token. */
export function tokenKeys(claims: TokenClaims): Set<string> {
  const keys = new Set<string>()
  const tokenIss = str(claims.iss)
  const add = (kind: RevocationKind, iss: string | undefined, id: unknown) => {
    const v = str(id)
    if (!v) return
    keys.add(`${NS[kind]}||${v}`)
    if (iss) keys.add(`${NS[kind]}|${iss}|${v}`)
  }
  add('user', tokenIss, claims.sub)
  // Email subjects are stored lower-cased; a sub that is an email address matches them too.
  if (typeof claims.sub === 'string' && claims.sub.includes('@'))
    add('user', undefined, claims.sub.toLowerCase())
  const email = str(claims.email)
  if (email) add('user', undefined, email.toLowerCase())
  add('agent', tokenIss, claims.sub)
  add('session', tokenIss, claims.sid)
  add('token', tokenIss, claims.jti)
  for (const id of [claims.client_id, claims.azp]) {
    add('client', tokenIss, id)
    add('agent', tokenIss, id)
  }
  for (const actor of actorChain(claims.act)) {
    const iss = str(actor.iss) ?? tokenIss
    add('user', iss, actor.sub)
    add('agent', iss, actor.sub)
    add('agent', iss, actor.client_id)
    add('client', iss, actor.client_id)
    add('client', iss, actor.sub)
  }
  return keys
}

/** Whether `record` refuses a token with these keys and `iat`. */
export function refuses(record: Revocation, keys: ReadonlySet<string>, iat: unknown): boolean {
  if (!record.targets.every((t) => keys.has(targetKey(t)))) return false
  if (record.targets.some((t) => t.kind === 'token')) return true
  return typeof iat !== 'number' || !Number.isFinite(iat) || iat <= record.revokedAt
}

/** Checks a revocation given by application code; throws `TypeError` when it is malformed. */
export function checkRevocation(r: Revocation): void {
  if (!isObject(r) || !Array.isArray(r.targets) || r.targets.length === 0)
    throw new TypeError('revocation: targets must be a non-empty array')
  for (const t of r.targets) {
    if (
      !isObject(t) ||
      !(t.kind in NS) ||
      typeof t.id !== 'string' ||
      t.id === '' ||
      (t.iss !== undefined && typeof t.iss !== 'string')
    ) {
      throw new TypeError(
        'revocation: each target needs a kind (user, agent, client, session, token) and a non-empty id',
      )
    }
  }
  if (typeof r.revokedAt !== 'number' || !Number.isFinite(r.revokedAt))
    throw new TypeError('revocation: revokedAt must be seconds since the epoch')
}
