/**
 * Reading a test Redis (one server or every master of a test cluster) for what it holds about streams:
 * every key, and every index entry that names a given stream.
 */
import type { Redis } from 'ioredis'
import { SCHED_SHARDS } from '../../src/redis/keyspace.js'

/** Every key, on every master. */
export async function allKeys(client: Redis): Promise<Set<string>> {
  const nodes =
    typeof (client as any).nodes === 'function'
      ? ((client as any).nodes('master') as Redis[])
      : [client]
  const keys = new Set<string>()
  for (const node of nodes) for (const key of await node.keys('*')) keys.add(key)
  return keys
}

/**
 * What still refers to stream `sid`: its own keys (`{o:<sid>}`), its record, activity and per-client
 * entries, scheduling entries, subject-index entries. Empty for a stream that is wholly gone.
 */
export async function traces(
  client: Redis,
  sid: string,
  keys?: Set<string>,
  prefix = 'ssf',
): Promise<string[]> {
  const all = keys ?? (await allKeys(client))
  const found: string[] = []
  for (const key of all) if (key.includes(`{o:${sid}}`)) found.push(key)
  if ((await client.hexists(`${prefix}:{streams}:rec`, sid)) === 1) found.push('record')
  if ((await client.zscore(`${prefix}:{streams}:activity`, sid)) !== null) found.push('activity')
  for (const key of all) {
    if (key.startsWith(`${prefix}:{streams}:client:`) && (await client.sismember(key, sid)) === 1)
      found.push(key)
    if (
      key.startsWith(`${prefix}:subidx:`) &&
      (await client.smembers(key)).some((m) => m.startsWith(`${sid} `))
    )
      found.push(key)
  }
  for (let k = 0; k < SCHED_SHARDS; k++) {
    if ((await client.zscore(`${prefix}:{sched:${k}}:ready`, sid)) !== null)
      found.push(`sched ${k} ready`)
    if ((await client.hexists(`${prefix}:{sched:${k}}:lease`, sid)) === 1)
      found.push(`sched ${k} lease`)
    if ((await client.sismember(`${prefix}:{sched:${k}}:dirty`, sid)) === 1)
      found.push(`sched ${k} dirty`)
  }
  return found
}
