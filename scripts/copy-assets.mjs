// Copies the non-TypeScript files the broker reads at run time (Lua scripts) from src/ to dist/.
import { cpSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
for (const file of walk('src').filter((f) => f.endsWith('.lua')))
  cpSync(file, join('dist', relative('src', file)))
