/**
 * Operational endpoints, served at the root path whatever the issuer path:
 *   GET /healthz  200 while the process runs; touches nothing else (liveness).
 *   GET /readyz   200 when Redis answers and the delivery loop is alive, else 503 (readiness).
 *   GET /metrics  Prometheus text exposition; Bearer SSF_BROKER_METRICS_TOKEN when that is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { Hono } from 'hono'
import type { Metrics } from './metrics.js'

export interface ReadinessDeps {
  /** Resolves when Redis answers (e.g. PING); rejects or hangs otherwise. */
  ping(): Promise<unknown>
  /** Whether the push delivery loop has run recently. */
  deliveryAlive(): boolean
  /** True once shutdown began: a load balancer should stop sending requests. */
  stopping(): boolean
}

const PING_TIMEOUT_MS = 500
const PING_CACHE_MS = 1000

export interface Check {
  ok: boolean
  error?: string
  latency_ms?: number
}

/** Redis reachability, probed at most once per PING_CACHE_MS with a short timeout. */
export function redisCheck(ping: () => Promise<unknown>): () => Promise<Check> {
  let last: Check | undefined
  let at = 0
  let inFlight: Promise<Check> | undefined
  return () => {
    if (last && Date.now() - at < PING_CACHE_MS) return Promise.resolve(last)
    inFlight ??= (async () => {
      const started = Date.now()
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([
          ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS)
          }),
        ])
        last = { ok: true, latency_ms: Date.now() - started }
      } catch (err) {
        last = { ok: false, error: (err as Error).message }
      } finally {
        clearTimeout(timer)
      }
      at = Date.now()
      return last
    })().finally(() => (inFlight = undefined))
    return inFlight
  }
}

const hash = (value: string) => createHash('sha256').update(value).digest()

export interface Readiness {
  ready: boolean
  checks: Record<string, Check>
}

/** The readiness verdict, shared by /readyz and the ssf_broker_ready gauge. */
export function readiness(deps: ReadinessDeps): () => Promise<Readiness> {
  const redis = redisCheck(deps.ping)
  return async () => {
    const checks: Record<string, Check> = { redis: await redis(), delivery: { ok: deps.deliveryAlive() } }
    if (deps.stopping()) checks.shutdown = { ok: false, error: 'shutting down' }
    return { ready: Object.values(checks).every((check) => check.ok), checks }
  }
}

export function opsRoutes(deps: { ready: () => Promise<Readiness>; metrics: Metrics; metricsToken?: string }): Hono {
  const app = new Hono()
  const tokenHash = deps.metricsToken !== undefined ? hash(deps.metricsToken) : undefined
  app.use('*', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })

  app.get('/healthz', (c) => c.json({ status: 'ok' }))

  app.get('/readyz', async (c) => {
    const { ready, checks } = await deps.ready()
    return c.json({ status: ready ? 'ready' : 'unavailable', checks }, ready ? 200 : 503)
  })

  app.get('/metrics', async (c) => {
    if (tokenHash) {
      const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(c.req.header('authorization') ?? '')
      if (!match || !timingSafeEqual(hash(match[1]!), tokenHash)) {
        c.header('WWW-Authenticate', 'Bearer realm="ssf-broker-metrics"')
        return c.json({ error: 'invalid_token', error_description: 'GET /metrics requires the metrics bearer token' }, 401)
      }
    }
    const body = await deps.metrics.exposition()
    return c.body(body, 200, { 'Content-Type': deps.metrics.contentType() })
  })
  return app
}
