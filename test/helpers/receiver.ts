/**
 * A real SSF push receiver on loopback (RFC 8935): records every request, answers 202 by default, or
 * whatever `respond` decides (an error status, a hang, a delay).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedPush {
  body: string
  headers: IncomingMessage['headers']
  at: number
}

export type Responder = (push: ReceivedPush, res: ServerResponse) => void | Promise<void>

export interface TestReceiver {
  url: string
  /** Pushes answered with a 2xx. */
  received: ReceivedPush[]
  /** Every request, whatever the answer. */
  attempts: ReceivedPush[]
  respond: Responder
  /** Resolves once `count` pushes arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedPush[]>
  close(): Promise<void>
}

export const accept: Responder = (_push, res) => {
  res.writeHead(202).end()
}

export async function startReceiver(path = '/events'): Promise<TestReceiver> {
  const received: ReceivedPush[] = []
  const attempts: ReceivedPush[] = []
  const waiters: { count: number; resolve: () => void }[] = []
  const receiver: TestReceiver = {
    url: '',
    received,
    attempts,
    respond: accept,
    async waitFor(count, timeoutMs = 15_000) {
      if (received.length >= count) return received
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`receiver got ${received.length} of ${count} pushes in ${timeoutMs} ms`),
            ),
          timeoutMs,
        )
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        })
      })
      return received
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const push: ReceivedPush = {
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
        at: Date.now(),
      }
      attempts.push(push)
      void Promise.resolve(receiver.respond(push, res)).then(() => {
        if (res.statusCode < 300 && res.writableEnded) {
          received.push(push)
          for (const w of [...waiters])
            if (received.length >= w.count) {
              waiters.splice(waiters.indexOf(w), 1)
              w.resolve()
            }
        }
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`
  return receiver
}
