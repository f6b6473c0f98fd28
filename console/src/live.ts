/**
 * The live feed: `GET /admin/live` read with fetch() and a stream reader. EventSource cannot send an
 * Authorization header, and the token must not go in the URL, so the Server-Sent Events framing is parsed
 * here. The connection is re-opened (with backoff) when it drops; a 401 signs the console out.
 */
import { BASE, authHeaders, signOut } from './api.js'

export interface LiveEvent {
  name: string
  data: Record<string, any>
}

/** Splits an SSE byte stream into events (`event:` + `data:` lines, blank-line separated). */
export function parseFrames(buffer: string, emit: (event: LiveEvent) => void): string {
  const frames = buffer.replace(/\r\n?/g, '\n').split('\n\n')
  const rest = frames.pop() ?? ''
  for (const frame of frames) {
    let name = 'message'
    const data: string[] = []
    for (const line of frame.split('\n')) {
      if (line.startsWith(':') || line === '') continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') name = value
      else if (field === 'data') data.push(value)
    }
    if (data.length === 0) continue
    try {
      emit({ name, data: JSON.parse(data.join('\n')) })
    } catch {
      // not JSON: not one of ours
    }
  }
  return rest
}

export function startLive(
  onEvent: (event: LiveEvent) => void,
  onState: (state: string) => void,
): () => void {
  const controller = new AbortController()
  let stopped = false
  void (async () => {
    let delay = 1000
    while (!stopped) {
      try {
        const res = await fetch(`${BASE}/admin/live`, {
          headers: { ...authHeaders(), accept: 'text/event-stream' },
          signal: controller.signal,
          cache: 'no-store',
        })
        if (res.status === 401) {
          signOut('The token stopped working (401). Sign in again.')
          return
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
        onState('connected')
        delay = 1000
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer = parseFrames(buffer + value, onEvent)
        }
      } catch {
        if (stopped) return
      }
      onState('reconnecting')
      await new Promise((r) => setTimeout(r, delay))
      delay = Math.min(delay * 2, 15_000)
    }
  })()
  return () => {
    stopped = true
    controller.abort()
  }
}
