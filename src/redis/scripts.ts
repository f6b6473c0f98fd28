/**
 * Lua scripts live in their own `.lua` files (each starts with a header naming its KEYS and ARGV) and are
 * registered on a client with `defineScripts`. ioredis sends EVALSHA and falls back to EVAL once, so a
 * script costs one round trip. On Redis Cluster every key a script touches must share one hash slot
 * (see keyspace.ts); a script that builds key names itself still declares one key of that slot.
 */
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

export interface ScriptDef {
  /** The .lua file, relative to the module that defines it: `new URL('./scripts/x.lua', import.meta.url)`. */
  file: URL
  numberOfKeys: number
}

const sources = new Map<string, string>()

function source(file: URL): string {
  let lua = sources.get(file.href)
  if (lua === undefined) sources.set(file.href, (lua = readFileSync(file, 'utf8')))
  return lua
}

/** Registers each script as a command named after its key (once per client). */
export function defineScripts<N extends string>(
  redis: Redis,
  defs: Record<N, ScriptDef>,
): Redis & Record<N, (...args: (string | number | Buffer)[]) => Promise<unknown>> {
  for (const [name, def] of Object.entries(defs) as [N, ScriptDef][]) {
    if (!(name in redis))
      redis.defineCommand(name, { numberOfKeys: def.numberOfKeys, lua: source(def.file) })
  }
  return redis as Redis & Record<N, (...args: (string | number | Buffer)[]) => Promise<unknown>>
}
