/**
 * Declares an operation once: its OpenAPI description (from the zod schemas) and its handler, behind a
 * fixed sequence of steps so that error precedence is structure rather than habit:
 *
 *   1. authenticate (401, 403)
 *   2. read the JSON body under its media type and limits (415, 413, 400 `invalid_json`)
 *   3. validate path, query and body against their schemas (400 naming the member)
 *   4. load what the operation acts on, e.g. the caller's own stream (404)
 *   5. the handler
 */
import type { Context, MiddlewareHandler } from 'hono'
import type { OpenAPIHono, RouteConfig } from '@hono/zod-openapi'
import { readJsonBody } from './json-body.js'
import { parseOrThrow, z } from './schema.js'
import { ERROR_RESPONSES, type ErrorStatus } from './openapi-components.js'

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete'
type Obj = z.ZodType<Record<string, unknown>>

export interface ResponseDoc {
  description: string
  schema?: z.ZodType
  /** Default application/json. */
  contentType?: string
  example?: unknown
  headers?: Record<string, { description: string; schema: { type: 'string' | 'integer' } }>
}

export interface BodySpec<B extends z.ZodType> {
  schema: B
  maxBytes: number
  /** A request may come without a body (then it is validated as `{}`). */
  optional?: boolean
  /** Documented instead of `schema` when the handler checks more than the schema does (e.g. each event). */
  document?: z.ZodType
  description?: string
  example: unknown
}

export interface Operation<B extends z.ZodType, Q extends Obj, P extends Obj, L> {
  method: Method
  /** OpenAPI form: `/ssf/poll/{stream_id}`. */
  path: string
  operationId: string
  tag: string
  summary: string
  description?: string
  /** Step 1; absent for public operations. */
  auth?: MiddlewareHandler<any>
  body?: BodySpec<B>
  /** A body the handler reads itself (not JSON), documented only. */
  rawBody?: { contentType: string; description: string; example: string }
  query?: Q
  params?: P
  /** Step 4. */
  load?: (c: Context<any>, input: Input<B, Q, P>) => Promise<L>
  responses: Record<number, ResponseDoc>
  /** Every error status the operation can answer (documented through the shared responses). */
  errors: readonly ErrorStatus[]
}

export interface Input<B extends z.ZodType, Q extends Obj, P extends Obj> {
  body: z.output<B>
  query: z.output<Q>
  params: z.output<P>
}

export type Handler<B extends z.ZodType, Q extends Obj, P extends Obj, L> = (
  c: Context<any>,
  input: Input<B, Q, P>,
  loaded: L,
) => Response | Promise<Response>

const EMPTY = z.object({})
const rawBodies = new WeakMap<Request, unknown>()

function hasBody(c: Context): boolean {
  return (
    (c.req.header('content-length') ?? '0') !== '0' ||
    c.req.header('transfer-encoding') !== undefined
  )
}

function readBody(spec: BodySpec<z.ZodType>): MiddlewareHandler {
  return async function readBodyStep(c, next) {
    rawBodies.set(
      c.req.raw,
      spec.optional && !hasBody(c) ? {} : await readJsonBody(c, spec.maxBytes),
    )
    await next()
  }
}

function documentation(op: Operation<any, any, any, any>): RouteConfig {
  const responses: RouteConfig['responses'] = {}
  for (const [status, doc] of Object.entries(op.responses)) {
    responses[status] = {
      description: doc.description,
      ...(doc.headers ? { headers: doc.headers } : {}),
      ...(doc.schema || doc.example !== undefined
        ? {
            content: {
              [doc.contentType ?? 'application/json']: {
                schema: doc.schema ?? z.unknown(),
                ...(doc.example !== undefined ? { example: doc.example } : {}),
              },
            },
          }
        : {}),
    }
  }
  for (const status of op.errors)
    responses[String(status)] = { $ref: `#/components/responses/${ERROR_RESPONSES[status]}` }
  const request: NonNullable<RouteConfig['request']> = {}
  if (op.params) request.params = op.params as never
  if (op.query) request.query = op.query as never
  if (op.body) {
    request.body = {
      required: !op.body.optional,
      ...(op.body.description ? { description: op.body.description } : {}),
      content: {
        'application/json': {
          schema: op.body.document ?? op.body.schema,
          example: op.body.example,
        },
      },
    }
  }
  if (op.rawBody) {
    request.body = {
      required: true,
      description: op.rawBody.description,
      content: { [op.rawBody.contentType]: { schema: z.string(), example: op.rawBody.example } },
    }
  }
  return {
    method: op.method,
    path: op.path,
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(op.auth ? {} : { security: [] }),
    ...(Object.keys(request).length > 0 ? { request } : {}),
    responses,
  }
}

/** Registers `op` with `app` (routing and its OpenAPI description). */
export function operation<
  B extends z.ZodType = typeof EMPTY,
  Q extends Obj = typeof EMPTY,
  P extends Obj = typeof EMPTY,
  L = undefined,
>(app: OpenAPIHono<any>, op: Operation<B, Q, P, L>, handler: Handler<B, Q, P, L>): void {
  app.openAPIRegistry.registerPath(documentation(op))
  const steps: MiddlewareHandler[] = []
  if (op.auth) steps.push(op.auth)
  if (op.body) steps.push(readBody(op.body))
  const honoPath = op.path.replace(/\{([^}]+)\}/g, ':$1')
  const router = app as unknown as {
    on(method: string, path: string, ...handlers: MiddlewareHandler[]): void
  }
  router.on(op.method.toUpperCase(), honoPath, ...steps, async (c: Context) => {
    const input = {
      params: op.params ? parseOrThrow(op.params, c.req.param(), 'path') : {},
      query: op.query ? parseOrThrow(op.query, c.req.query(), 'query') : {},
      body: op.body ? parseOrThrow(op.body.schema, rawBodies.get(c.req.raw), 'body') : undefined,
    } as Input<B, Q, P>
    const loaded = op.load ? await op.load(c, input) : (undefined as L)
    return handler(c, input, loaded)
  })
}
