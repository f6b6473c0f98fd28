/**
 * Writes openapi/openapi.json, generated from the routes' zod schemas (src/http/openapi-document.ts).
 * `npm run openapi`; a test fails when the committed file differs from what this writes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { openapiDocument } from '../src/http/openapi-document.js'

export const OPENAPI_FILE = fileURLToPath(new URL('../openapi/openapi.json', import.meta.url))

export function renderOpenapi(): string {
  const { version } = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
  ) as { version: string }
  return `${JSON.stringify(openapiDocument(version), null, 2)}\n`
}

if (process.argv.includes('--write')) writeFileSync(OPENAPI_FILE, renderOpenapi())
