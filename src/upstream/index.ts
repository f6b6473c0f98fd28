/**
 * Wiring of the upstream receiver side of one broker process: the service, the poll leases and loops,
 * and the routes. `close()` stops polling (releasing leases so another process takes over at once).
 */
import type { Hono } from 'hono'
import type { AuthEnv } from '../auth/middleware.js'
import type { BootstrapAdmin, ClientRegistry } from '../auth/clients.js'
import type { Config } from '../config/config.js'
import { UpstreamLeases } from './lease.js'
import { UpstreamPoller } from './poller.js'
import { upstreamRoutes } from './routes.js'
import { UpstreamService, type UpstreamServiceOptions } from './service.js'

export type { EventAcceptor } from './acceptor.js'

export interface Upstreams {
  service: UpstreamService
  poller: UpstreamPoller
  routes: Hono<AuthEnv>
  close(): Promise<void>
}

/** The settings the upstream side takes from the broker configuration. */
export function upstreamOptions(config: Config) {
  return {
    issuer: config.issuer,
    allowPrivate: config.allowPrivatePush,
    connectTimeoutMs: config.pushConnectTimeoutMs,
    requestTimeoutMs: config.pushTimeoutMs,
    leaseMs: config.leaseMs,
    secretsKey: config.secretsKey,
  }
}

export function startUpstreams(
  options: UpstreamServiceOptions & {
    leaseMs: number
    clients: ClientRegistry
    admin: BootstrapAdmin
  },
): Upstreams {
  const service = new UpstreamService(options)
  const leases = new UpstreamLeases(
    options.redis,
    service.keys,
    Math.max(250, Math.floor(options.leaseMs / 2)),
  )
  const poller = new UpstreamPoller(service, leases, options.log)
  poller.start()
  return {
    service,
    poller,
    routes: upstreamRoutes({ service, leases, clients: options.clients, admin: options.admin }),
    async close() {
      await poller.stop()
      await service.close()
    },
  }
}
