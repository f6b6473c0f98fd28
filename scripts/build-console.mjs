// Builds the console (console/) into dist/console/assets/: one bundled, minified script and the static
// files. The broker serves them at /console (src/console/page.ts).
import { build } from 'esbuild'
import { cpSync, mkdirSync } from 'node:fs'

const out = 'dist/console/assets'
mkdirSync(out, { recursive: true })
await build({
  entryPoints: { console: 'console/src/main.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome120', 'firefox120', 'safari17'],
  outdir: out,
  logLevel: 'warning',
})
for (const [from, to] of [
  ['console/index.html', 'index.html'],
  ['console/styles.css', 'console.css'],
  ['console/icon.svg', 'icon.svg'],
])
  cpSync(from, `${out}/${to}`)
