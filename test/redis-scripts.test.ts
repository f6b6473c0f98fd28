/**
 * Lua scripts as client methods (src/redis/scripts.ts): EVALSHA, and EVAL only when Redis does not have the
 * script (first use, or after its script cache was flushed, as a restart does). Real Redis.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { defineScripts } from '../src/redis/scripts.js'

let redis: TestRedis

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})

const commandCalls = async (name: string) => {
  const info = await redis.client.info('commandstats')
  return Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
}

test('a script runs as EVALSHA once Redis has it, and again after its script cache is flushed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-scripts-'))
  const file = join(dir, 'incr-by.lua')
  writeFileSync(
    file,
    "-- KEYS[1] counter; ARGV[1] step\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])\n",
  )
  const client = defineScripts(redis.client, {
    testIncrBy: { file: pathToFileURL(file), numberOfKeys: 1 },
  })
  const key = `scripts-test-${Date.now()}`
  await redis.client.config('RESETSTAT')
  assert.equal(await client.testIncrBy(key, 2), 2)
  assert.equal(await commandCalls('eval'), 1, 'unknown to Redis at first: sent once more as EVAL')
  // Many calls in one turn share a pipeline; each is a plain EVALSHA.
  const results = await Promise.all(Array.from({ length: 10 }, () => client.testIncrBy(key, 1)))
  assert.deepEqual(
    results.sort((a, b) => Number(a) - Number(b)),
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  )
  assert.equal(await commandCalls('eval'), 1)
  assert.equal(await commandCalls('evalsha'), 11)
  await redis.client.script('FLUSH')
  assert.equal(await client.testIncrBy(key, 5), 17)
  assert.equal(await commandCalls('eval'), 2)
  // Defined once per client: defining again keeps the same method.
  const method = client.testIncrBy
  assert.equal(
    defineScripts(redis.client, { testIncrBy: { file: pathToFileURL(file), numberOfKeys: 1 } })
      .testIncrBy,
    method,
  )
  await redis.client.del(key)
})

test('a script error reaches the caller as it is (not retried as EVAL)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-scripts-'))
  const file = join(dir, 'fail.lua')
  writeFileSync(file, "-- KEYS[1] any\nreturn redis.error_reply('ERR refused by the script')\n")
  const client = defineScripts(redis.client, {
    testFail: { file: pathToFileURL(file), numberOfKeys: 1 },
  })
  await client.testFail('k').catch(() => {}) // loads it
  await redis.client.config('RESETSTAT')
  await assert.rejects(client.testFail('k'), /refused by the script/)
  assert.equal(await commandCalls('eval'), 0)
})
