/**
 * Operational endpoints, served at the root path whatever the issuer path:
 *   GET /healthz  200 while the process runs; touches nothing else (liveness).
 *   GET /readyz   200 when Redis answers and the delivery loop is alive, else 503 (readiness).
 *   GET /metrics  Prometheus text exposition; Bearer SSF_BROKER_METRICS_TOKEN when that is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { OpenAPIHono } from '@hono/zod-openapi'
import { BrokerError } from '../errors.js'
import { operation } from '../http/route.js'
import { setResponseHeader } from '../http/response-header.js'
import { z } from '../http/schema.js'
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
            timer = setTimeout(
              () => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)),
              PING_TIMEOUT_MS,
            )
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
    const checks: Record<string, Check> = {
      redis: await redis(),
      delivery: { ok: deps.deliveryAlive() },
    }
    if (deps.stopping()) checks.shutdown = { ok: false, error: 'shutting down' }
    return { ready: Object.values(checks).every((check) => check.ok), checks }
  }
}

const CheckSchema = z.object({
  ok: z.boolean(),
  error: z.string().optional(),
  latency_ms: z.number().optional(),
})
const ReadinessSchema = z
  .object({ status: z.enum(['ready', 'unavailable']), checks: z.record(z.string(), CheckSchema) })
  .openapi('Readiness', {
    example: {
      status: 'ready',
      checks: { redis: { ok: true, latency_ms: 1 }, delivery: { ok: true } },
    },
  })
const TAG = 'Operations'

export function opsRoutes(deps: {
  ready: () => Promise<Readiness>
  metrics: Metrics
  metricsToken?: string
}): OpenAPIHono {
  const app = new OpenAPIHono()
  const tokenHash = deps.metricsToken !== undefined ? hash(deps.metricsToken) : undefined
  // Only on these paths: this app is mounted at the root, where '*' would reach every route of the broker.
  for (const path of ['/healthz', '/readyz', '/metrics'])
    app.use(path, async (c, next) => {
      await next()
      setResponseHeader(c, 'Cache-Control', 'no-store')
    })

  operation(
    app,
    {
      method: 'get',
      path: '/healthz',
      operationId: 'liveness',
      tag: TAG,
      summary: 'Liveness: 200 while the process runs (touches no Redis)',
      responses: {
        200: {
          description: 'Alive',
          schema: z.object({ status: z.literal('ok') }),
          example: { status: 'ok' },
        },
      },
      errors: [],
    },
    (c) => c.json({ status: 'ok' }),
  )

  operation(
    app,
    {
      method: 'get',
      path: '/readyz',
      operationId: 'readiness',
      tag: TAG,
      summary: 'Readiness: Redis answers and the delivery loop is alive',
      responses: {
        200: { description: 'Ready', schema: ReadinessSchema },
        503: {
          description: 'Not ready (Redis unreachable, delivery loop stuck, or shutting down)',
          schema: ReadinessSchema,
          example: {
            status: 'unavailable',
            checks: {
              redis: { ok: false, error: 'no answer within 500 ms' },
              delivery: { ok: true },
            },
          },
        },
      },
      errors: [],
    },
    async (c) => {
      const { ready, checks } = await deps.ready()
      return c.json({ status: ready ? 'ready' : 'unavailable', checks }, ready ? 200 : 503)
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      tag: TAG,
      summary: 'Prometheus metrics (text exposition format)',
      description:
        'Open unless SSF_BROKER_METRICS_TOKEN is set; then that bearer token is required.',
      // Its own token, checked here: documented as bearer-protected, answered as public when no token is set.
      auth: async (c, next) => {
        if (tokenHash) {
          const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(c.req.header('authorization') ?? '')
          if (!match || !timingSafeEqual(hash(match[1]!), tokenHash))
            throw new BrokerError(
              'invalid_token',
              'GET /metrics requires the metrics bearer token',
              { realm: 'ssf-broker-metrics' },
            )
        }
        await next()
      },
      responses: {
        200: {
          description: 'Metrics',
          contentType: 'text/plain; version=0.0.4',
          schema: z.string(),
          example: '# TYPE ssf_broker_ready gauge\nssf_broker_ready 1\n',
        },
      },
      errors: [401],
    },
    async (c) => {
      const body = await deps.metrics.exposition()
      return c.body(body, 200, { 'Content-Type': deps.metrics.contentType() })
    },
  )
  return app
}
