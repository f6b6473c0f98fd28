/**
 * `GET /admin/activity` (admin role): this process's delivery outcomes as they happen, as Server-Sent
 * Events (`event: delivered|failed|dropped`, `data:` the activity event as JSON), optionally only one
 * stream's (`?stream_id=`). Behind several broker processes each feed shows the process it reached.
 * The same feed with other event names serves `GET /admin/live` (src/console/routes.ts).
 */
import type { Context } from 'hono'
import type { Activity, ActivityEvents, ActivityName } from '../observe/activity.js'

const KEEPALIVE_MS = 15_000
const FEED_EVENTS: readonly ActivityName[] = ['delivered', 'failed', 'dropped']

export class ActivityFeed {
  #open = new Set<() => void>()

  constructor(
    private readonly activity: Activity,
    private readonly events: readonly ActivityName[] = FEED_EVENTS,
  ) {}

  respond(c: Context): Response {
    const streamId = c.req.query('stream_id')
    const encoder = new TextEncoder()
    let finish = () => {}
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text))
          } catch {
            finish()
          }
        }
        const offs = this.events.map((name) =>
          this.activity.on(name, (event: ActivityEvents[ActivityName]) => {
            if (streamId !== undefined && (!('stream_id' in event) || event.stream_id !== streamId))
              return
            send(`event: ${name}\ndata: ${JSON.stringify(event)}\n\n`)
          }),
        )
        const keepalive = setInterval(() => send(': keepalive\n\n'), KEEPALIVE_MS)
        finish = () => {
          if (!this.#open.delete(finish)) return
          clearInterval(keepalive)
          offs.forEach((off) => off())
          try {
            controller.close()
          } catch {
            // already closed by the client
          }
        }
        this.#open.add(finish)
        send(': connected\n\n')
      },
      cancel: () => finish(),
    })
    return new Response(body, {
      status: 200,
      headers: {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
      },
    })
  }

  /** Ends every open feed (shutdown). */
  closeAll(): void {
    for (const finish of [...this.#open]) finish()
  }
}
