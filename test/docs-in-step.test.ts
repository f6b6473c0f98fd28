/**
 * Documentation cannot drift from the code: the README configuration table is rendered from the config
 * source, and the OpenAPI document describes exactly the routes the application serves.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { readmeConfigTable, renderConfigTable } from '../scripts/config-table.js'
import { routeTable } from '../src/http/route-table.js'

test('README configuration table matches CONFIG_VARIABLES (npx tsx scripts/config-table.ts --write)', () => {
  assert.equal(readmeConfigTable(), renderConfigTable())
})

test('openapi/openapi.json lists exactly the served routes and methods', () => {
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8')) as { openapi: string; paths: Record<string, Record<string, unknown>> }
  assert.equal(doc.openapi, '3.1.0')
  const documented = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) if (method !== 'parameters') documented.add(`${method.toUpperCase()} ${path}`)
  }
  const served = new Set(routeTable().map((r) => `${r.method} ${r.path}`))
  assert.deepEqual([...served].filter((r) => !documented.has(r)), [], 'served but not documented')
  assert.deepEqual([...documented].filter((r) => !served.has(r)), [], 'documented but not served')
})
