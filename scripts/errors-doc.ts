/**
 * Renders docs/errors.md from ERROR_CODES (src/errors.ts), its single source.
 * `npx tsx scripts/errors-doc.ts --write` updates it; a test fails when they differ.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ERROR_CODES } from '../src/errors.js'

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url))

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, info]) =>
      `| \`${code}\` | ${info.status} | ${info.expose ? 'yes' : 'no'} | ${info.description} |`,
  )
  return [
    '# Error codes',
    '',
    'Every error the broker answers has the JSON body `{"error": <code>, "error_description": <text>}`',
    '(the RFC 8935 push endpoint for upstream transmitters, `POST /ssf/inbound/{upstream_id}`, answers',
    '`{"err": <code>, "description": <text>}` instead). The description names the member at fault, as',
    '`<member path>: <problem>`. Codes whose description is not exposed send a generic text; the detail is',
    'in the broker log.',
    '',
    '401 answers carry `WWW-Authenticate: Bearer realm="ssf-broker", error="invalid_token", ...` and',
    '`insufficient_scope` answers the scope the request needs (RFC 6750 §3); `too_many_requests`,',
    '`overloaded` and `temporarily_unavailable` carry `Retry-After`.',
    '',
    'This file is generated from `ERROR_CODES` in `src/errors.ts` (`npx tsx scripts/errors-doc.ts --write`).',
    '',
    '| Code | Status | Description exposed | Meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n')
}

if (process.argv.includes('--write')) writeFileSync(ERRORS_DOC, renderErrorsDoc())
else if (readFileSync(ERRORS_DOC, 'utf8') !== renderErrorsDoc()) process.exitCode = 1
