/**
 * Lua scripts live in their own `.lua` files (each starts with a header naming its KEYS and ARGV) and are
 * registered on a client with `defineScripts`. A script is sent as EVALSHA and, only when Redis does not
 * know it yet (first use, or after a restart flushed its script cache), once more as EVAL: one round trip
 * in the usual case. On Redis Cluster every key a script touches must share one hash slot (see
 * keyspace.ts); a script that builds key names itself still declares one key of that slot.
 *
 * Not ioredis' defineCommand: ioredis copies every command so defined onto each pipeline it builds, and
 * auto-pipelining builds one per flush, so that copying grew with the number of scripts on every round
 * trip of the delivery path. EVALSHA is a plain command and costs a pipeline nothing.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

export interface ScriptDef {
  /** The .lua file, relative to the module that defines it: `new URL('./scripts/x.lua', import.meta.url)`. */
  file: URL
  numberOfKeys: number
}

type Arg = string | number | Buffer
type ScriptCall = (...args: Arg[]) => Promise<unknown>

const sources = new Map<string, string>()

function source(file: URL): string {
  let lua = sources.get(file.href)
  if (lua === undefined) sources.set(file.href, (lua = readFileSync(file, 'utf8')))
  return lua
}

const isNoScript = (err: unknown) => err instanceof Error && err.message.startsWith('NOSCRIPT')

/** A call of one script on one client: EVALSHA, then EVAL if Redis does not have it. */
function scriptCall(redis: Redis, lua: string, numberOfKeys: number): ScriptCall {
  const sha = createHash('sha1').update(lua).digest('hex')
  return async (...args) => {
    try {
      return await redis.evalsha(sha, numberOfKeys, ...args)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return redis.eval(lua, numberOfKeys, ...args)
    }
  }
}

/** Registers each script as a method of the client named after its key (once per client). */
export function defineScripts<N extends string>(
  redis: Redis,
  defs: Record<N, ScriptDef>,
): Redis & Record<N, ScriptCall> {
  for (const [name, def] of Object.entries(defs) as [N, ScriptDef][]) {
    if (!(name in redis))
      Object.defineProperty(redis, name, {
        value: scriptCall(redis, source(def.file), def.numberOfKeys),
        writable: true,
        configurable: true,
      })
  }
  return redis as Redis & Record<N, ScriptCall>
}
