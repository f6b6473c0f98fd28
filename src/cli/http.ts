/** The client commands' HTTP client: JSON requests to the broker with the bearer token. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
  }
}

export class BrokerClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  async raw(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const h: Record<string, string> = { accept: 'application/json', ...headers }
    if (this.token) h.authorization = `Bearer ${this.token}`
    if (body !== undefined) h['content-type'] = 'application/json'
    try {
      return await fetch(this.base.replace(/\/+$/, '') + path, {
        method,
        headers: h,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })
    } catch (err) {
      throw new CliError(
        `cannot reach the broker at ${this.base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
      )
    }
  }

  async json<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body)
    const text = await res.text()
    let parsed: any
    try {
      parsed = text ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    if (!res.ok) {
      const detail = parsed?.error
        ? `${parsed.error}: ${parsed.error_description ?? ''}`
        : text.slice(0, 200)
      throw new CliError(`${method} ${path} failed: HTTP ${res.status} ${detail}`.trim())
    }
    return parsed as T
  }
}
