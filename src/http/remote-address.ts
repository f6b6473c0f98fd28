/** The peer address of a request served by @hono/node-server (for the audit trail), if known. */
import type { Context } from 'hono'
import type { IncomingMessage } from 'node:http'

export function remoteAddress(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  return incoming?.socket?.remoteAddress ?? undefined
}
