/**
 * The console page at `GET /console` and its assets at `GET /console/assets/{file}`, built from console/
 * into dist/console/assets/ by `npm run build`. Everything comes from this origin, under a CSP that allows
 * no inline script or style and no other origin, so the page works offline and an injected string cannot
 * run. The page learns the issuer and the API's base path from two meta tags filled in here.
 */
import { readFileSync } from 'node:fs'
import type { MiddlewareHandler } from 'hono'
import { OpenAPIHono } from '@hono/zod-openapi'
import { BrokerError } from '../errors.js'
import { issuerPath } from '../http/metadata.js'
import { operation } from '../http/route.js'
import { z } from '../http/schema.js'

const ASSETS = new URL('../../dist/console/assets/', import.meta.url)
const ASSET_NAME = /^[a-z0-9-]+\.(js|css|svg)$/
const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
}

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const escapeAttr = (value: string) => value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)

function read(name: string): Buffer | undefined {
  try {
    return readFileSync(new URL(name, ASSETS))
  } catch {
    return undefined
  }
}

export function consolePageRoutes(issuer: string): OpenAPIHono {
  const app = new OpenAPIHono()
  const base = issuerPath(issuer)
  const cache = new Map<string, Buffer | undefined>()
  const asset = (name: string) =>
    cache.has(name) ? cache.get(name) : (cache.set(name, read(name)), cache.get(name))
  app.use('/console', secureHeaders)
  app.use('/console/*', secureHeaders)

  operation(
    app,
    {
      method: 'get',
      path: '/console',
      operationId: 'consolePage',
      tag: 'Console',
      summary: 'The web console (HTML): sign in with the admin token',
      description:
        'A single page served under a CSP that allows this origin only; it works offline.',
      responses: {
        200: {
          description: 'HTML page',
          contentType: 'text/html',
          schema: z.string(),
          example: '<!doctype html>...',
        },
      },
      errors: [503],
    },
    (c) => {
      const page = asset('index.html')
      if (!page)
        throw new BrokerError(
          'temporarily_unavailable',
          'the console is not built: run npm run build (dist/console/assets/ is missing)',
        )
      c.header('Cache-Control', 'no-store')
      return c.html(
        page
          .toString('utf8')
          .replaceAll('%ISSUER%', escapeAttr(issuer))
          .replaceAll('%BASE%', escapeAttr(base)),
      )
    },
  )

  operation(
    app,
    {
      method: 'get',
      path: '/console/assets/{file}',
      operationId: 'consoleAsset',
      tag: 'Console',
      summary: "One of the console's scripts, styles or images",
      params: z.object({
        file: z.string().openapi({ description: 'Asset name, e.g. main.js', example: 'main.js' }),
      }),
      responses: {
        200: {
          description: 'The asset (JavaScript, CSS or SVG)',
          contentType: 'text/javascript',
          schema: z.string(),
          example: '/* bundled */',
        },
      },
      errors: [404],
    },
    (c, { params }) => {
      const name = params.file
      const body = ASSET_NAME.test(name) ? asset(name) : undefined
      if (!body) throw new BrokerError('not_found', 'no such console asset')
      c.header('Cache-Control', 'no-cache')
      return c.body(new Uint8Array(body), 200, {
        'Content-Type': CONTENT_TYPES[name.split('.').pop()!]!,
      })
    },
  )
  return app
}

const secureHeaders: MiddlewareHandler = async (c, next) => {
  await next()
  c.header('Content-Security-Policy', CONSOLE_CSP)
  c.header('X-Content-Type-Options', 'nosniff')
  c.header('Referrer-Policy', 'no-referrer')
  c.header('X-Frame-Options', 'DENY')
}
