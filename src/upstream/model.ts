/**
 * An upstream transmitter this broker subscribes to as an SSF receiver: the stored record and the form
 * the admin API shows (never a secret, never the inbound authorization).
 */
export type UpstreamDelivery = 'push' | 'poll'
export type UpstreamStatus = 'enabled' | 'paused' | 'disabled'

/** How the broker authenticates to the upstream's management and poll endpoints. Secrets are sealed (secret-box.ts). */
export type StoredAuthorization =
  | { type: 'bearer'; token_sealed: string }
  | {
      type: 'client_credentials'
      token_endpoint: string
      client_id: string
      client_secret_sealed: string
      scope?: string | undefined
    }

export interface UpstreamRecord {
  upstream_id: string
  issuer: string
  delivery: UpstreamDelivery
  /** The stream's id at the upstream. */
  stream_id: string
  /** The `aud` the upstream puts on this stream's SETs. */
  audience: string | string[]
  /** Poll delivery: the upstream's poll URL for the stream. */
  poll_url?: string
  events_requested?: string[]
  events_delivered?: string[]
  description?: string
  authorization: StoredAuthorization
  /** Push delivery: SHA-256 (hex) of the Authorization value the upstream presents. */
  inbound_authorization_sha256?: string
  created_at: number
}

/** Counters and state that change while the upstream runs (a separate hash, updated field by field). */
export interface UpstreamStats {
  status: UpstreamStatus
  reason?: string
  events_received: number
  last_event_at?: number
  last_error?: string
  last_error_at?: number
  verified_at?: number
}

export function toWire(
  record: UpstreamRecord,
  stats: UpstreamStats,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    upstream_id: record.upstream_id,
    issuer: record.issuer,
    delivery: record.delivery,
    stream_id: record.stream_id,
    aud: record.audience,
    ...(record.events_requested !== undefined ? { events_requested: record.events_requested } : {}),
    ...(record.events_delivered !== undefined ? { events_delivered: record.events_delivered } : {}),
    ...(record.description !== undefined ? { description: record.description } : {}),
    authorization: authorizationWire(record.authorization),
    status: stats.status,
    ...(stats.reason !== undefined ? { reason: stats.reason } : {}),
    events_received: stats.events_received,
    last_event_at: stats.last_event_at ?? null,
    last_error: stats.last_error ?? null,
    ...(stats.last_error_at !== undefined ? { last_error_at: stats.last_error_at } : {}),
    ...(stats.verified_at !== undefined ? { verified_at: stats.verified_at } : {}),
    created_at: record.created_at,
    ...extra,
  }
}

/** The authorization without its secret. */
function authorizationWire(auth: StoredAuthorization): Record<string, unknown> {
  if (auth.type === 'bearer') return { type: 'bearer' }
  return {
    type: 'client_credentials',
    token_endpoint: auth.token_endpoint,
    client_id: auth.client_id,
    ...(auth.scope !== undefined ? { scope: auth.scope } : {}),
  }
}
