/**
 * Documentation cannot drift from the code: the README configuration table is rendered from the config
 * source, and openapi/openapi.json is what the routes' schemas generate (`npm run openapi`), valid for
 * swagger-parser and redocly's recommended rules, with an operationId, a tag, an example and the error
 * statuses of every operation.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import SwaggerParser from '@apidevtools/swagger-parser'
import { createConfig, lint } from '@redocly/openapi-core'
import { readmeConfigTable, renderConfigTable } from '../scripts/config-table.js'
import { OPENAPI_FILE, renderOpenapi } from '../scripts/openapi.js'
import { declaredRoutes } from '../src/http/openapi-document.js'

type Media = { example?: unknown; schema?: { $ref?: string; example?: unknown } }
type Operation = {
  operationId?: string
  tags?: string[]
  security?: unknown[]
  requestBody?: { content: Record<string, Media> }
  responses: Record<string, { $ref?: string; content?: Record<string, Media> }>
}
const committed = () =>
  JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as {
    openapi: string
    paths: Record<string, Record<string, Operation>>
  }
const schemaExample = (schema: { $ref?: string; example?: unknown } | undefined): unknown => {
  const components = (
    committed() as unknown as { components: { schemas: Record<string, { example?: unknown }> } }
  ).components.schemas
  return schema?.$ref ? components[schema.$ref.split('/').pop()!]?.example : schema?.example
}
const operations = () =>
  Object.entries(committed().paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  )

test('README configuration table matches CONFIG_VARIABLES (npx tsx scripts/config-table.ts --write)', () => {
  assert.equal(readmeConfigTable(), renderConfigTable())
})

test('openapi/openapi.json is what the route schemas generate (npm run openapi)', () => {
  assert.equal(
    readFileSync(OPENAPI_FILE, 'utf8'),
    renderOpenapi(),
    'stale: run npm run openapi and commit openapi/openapi.json',
  )
})

test('every served route is in the document, and nothing else', () => {
  const served = new Set(
    declaredRoutes()
      .routes.filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
  )
  const documented = new Set(
    operations().map(({ method, path }) => `${method.toUpperCase()} ${path}`),
  )
  assert.deepEqual(
    [...served].filter((r) => !documented.has(r)),
    [],
    'served but not documented',
  )
  assert.deepEqual(
    [...documented].filter((r) => !served.has(r)),
    [],
    'documented but not served',
  )
})

test('swagger-parser validates the document', async () => {
  await SwaggerParser.validate(structuredClone(committed()) as never)
})

test('redocly lint (recommended rules): 0 errors', async () => {
  const problems = await lint({
    ref: OPENAPI_FILE,
    config: await createConfig({ extends: ['recommended'] }),
  })
  const errors = problems
    .filter((p) => p.severity === 'error')
    .map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)
  assert.deepEqual(errors, [])
  // The public discovery and liveness endpoints have no 4XX answer: redocly warns about each.
  const warnings = problems.filter((p) => p.severity === 'warn')
  assert.ok(
    warnings.every((p) => p.ruleId === 'operation-4xx-response'),
    warnings.map((p) => `${p.ruleId}: ${p.message}`).join('\n'),
  )
})

test('every operation has an operationId, a tag, an example and the error statuses its steps can answer', () => {
  const ids = new Set<string>()
  for (const { path, method, op } of operations()) {
    const at = `${method.toUpperCase()} ${path}`
    assert.ok(op.operationId && !ids.has(op.operationId), `${at}: a unique operationId`)
    ids.add(op.operationId)
    assert.equal(op.tags?.length, 1, `${at}: one tag`)
    const successes = Object.entries(op.responses)
      .filter(([s]) => s.startsWith('2'))
      .map(([, r]) => r)
    const media = [
      ...Object.values(op.requestBody?.content ?? {}),
      ...successes.flatMap((r) => Object.values(r.content ?? {})),
    ]
    const hasExample = media.some(
      (m) => m.example !== undefined || schemaExample(m.schema) !== undefined,
    )
    assert.ok(hasExample || media.length === 0, `${at}: an example`)
    const statuses = new Set(Object.keys(op.responses))
    const authenticated = op.security === undefined
    if (authenticated && path !== '/metrics')
      for (const s of ['401', '403']) assert.ok(statuses.has(s), `${at}: documents ${s}`)
    if (op.requestBody?.content['application/json'])
      for (const s of ['400', '413', '415']) assert.ok(statuses.has(s), `${at}: documents ${s}`)
    for (const s of statuses)
      assert.match(s, /^(2\d\d|400|401|403|404|409|413|415|429|502|503)$/, `${at}: status ${s}`)
  }
})
