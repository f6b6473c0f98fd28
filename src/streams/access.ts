/**
 * How receiver routes reach a stream: bearer authentication with the receiver role, then the caller's
 * own stream or 404 (another receiver's stream is indistinguishable from a missing one, SSF §8). Every
 * such access counts as activity for the stream's inactivity timeout.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { requireRole, type AuthEnv, type Principal } from '../auth/middleware.js'
import type { BootstrapAdmin, Client, ClientRegistry } from '../auth/clients.js'
import { BrokerError } from '../errors.js'
import { unsafeIdentifier } from '../lib/safe-text.js'
import type { StreamStore } from './store.js'
import type { StreamRecord } from './model.js'
import type { OAuthVerifier } from '../auth/oauth.js'

export interface StreamAccess {
  auth: MiddlewareHandler<AuthEnv>
  ownStream(c: Context<AuthEnv>, id: string): Promise<StreamRecord>
}

export function clientOf(principal: Principal): Client {
  if (principal.kind !== 'client') throw new Error('receiver routes need a client principal')
  return principal.client
}

export function streamAccess(
  streams: StreamStore,
  clients: ClientRegistry,
  admin: BootstrapAdmin,
  oauth?: OAuthVerifier,
): StreamAccess {
  return {
    auth: requireRole(clients, admin, 'receiver', oauth),
    async ownStream(c, id) {
      const problem = unsafeIdentifier(id)
      if (problem) throw new BrokerError('invalid_request', `stream_id: ${problem}`)
      const stream = await streams.get(id)
      if (!stream || stream.client_id !== clientOf(c.get('principal')).client_id)
        throw new BrokerError('not_found', `stream "${id.slice(0, 100)}" not found`)
      await streams.touch(id)
      return stream
    },
  }
}

export function streamIdMember(body: Record<string, unknown>): string {
  if (typeof body.stream_id !== 'string' || body.stream_id === '')
    throw new BrokerError('invalid_request', 'stream_id: required')
  return body.stream_id
}
