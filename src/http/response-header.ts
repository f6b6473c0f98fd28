/**
 * Sets a header on a response a middleware gets back from `next()`. Hono's `c.header` at that point
 * rebuilds the response (and @hono/node-server's light response becomes a full web Response with a body
 * stream), which costs more than the rest of a small request; the headers object can usually be changed
 * in place. Responses with immutable headers (a fetched one, say) fall back to `c.header`.
 */
/** What this needs of Hono's Context (any Env or path). */
interface ResponseContext {
  res: Response
  header(name: string, value: string): void
}

export function setResponseHeader(c: ResponseContext, name: string, value: string): void {
  try {
    c.res.headers.set(name, value)
  } catch {
    c.header(name, value)
  }
}
