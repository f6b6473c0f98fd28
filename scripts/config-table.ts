/**
 * Renders the README configuration table from CONFIG_VARIABLES (its single source).
 * `npx tsx scripts/config-table.ts --write` updates README.md; a test fails when they differ.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CONFIG_VARIABLES } from '../src/config/config.js'

const START = '<!-- config-table:start -->'
const END = '<!-- config-table:end -->'
export const README = fileURLToPath(new URL('../README.md', import.meta.url))

export function renderConfigTable(): string {
  const rows = CONFIG_VARIABLES.map((v) => `| \`${v.name}\` | \`${v.default}\` | ${v.meaning} |`)
  return [START, '| Variable | Default | Meaning |', '|---|---|---|', ...rows, END].join('\n')
}

export function readmeConfigTable(text = readFileSync(README, 'utf8')): string {
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  return start < 0 || end < 0 ? '' : text.slice(start, end + END.length)
}

if (process.argv.includes('--write')) {
  const text = readFileSync(README, 'utf8')
  writeFileSync(README, text.replace(readmeConfigTable(text), renderConfigTable()))
}
