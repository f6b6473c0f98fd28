/**
 * isRedisUnavailable recognises the errors ioredis really raises when Redis is away (produced here against
 * a real redis-server that is frozen or killed), and not ordinary errors or Redis's replies to bad commands.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { Redis, ReplyError, type RedisOptions } from 'ioredis'
import { isRedisUnavailable } from '../src/redis/connection.js'
import { startFaultRedis, type FaultRedis } from './helpers/fault-redis.js'

let redis: FaultRedis

before(async () => {
  redis = await startFaultRedis()
})

after(async () => {
  redis.resume()
  await redis.stop()
})

const client = (options: RedisOptions = {}) => {
  const c = new Redis({ path: redis.socket, ...options })
  c.on('error', () => {})
  return c
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected the command to fail')
}

test('a command to a frozen server times out: unavailable', async () => {
  const c = client({ commandTimeout: 200, maxRetriesPerRequest: null })
  await c.ping()
  redis.pause()
  try {
    const err = await failure(c.get('x'))
    assert.ok(isRedisUnavailable(err), String(err))
  } finally {
    redis.resume()
    c.disconnect()
  }
})

test('commands in flight when the server is killed, and commands to a dead server: unavailable', async () => {
  const inFlight = client({ maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false })
  const offline = client({ enableOfflineQueue: false, retryStrategy: () => null })
  await inFlight.ping()
  if (offline.status !== 'ready') await new Promise((r) => offline.once('ready', r))
  const blocked = failure(inFlight.blpop('never', 0))
  await redis.kill()
  try {
    const err = await blocked
    assert.ok(isRedisUnavailable(err), `in flight: ${String(err)} (${(err as Error).name})`)
    if (offline.status !== 'end') await new Promise((r) => offline.once('end', r))
    const refused = await failure(offline.get('x'))
    assert.ok(isRedisUnavailable(refused), `offline: ${String(refused)}`)
    const fresh = client({ maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 1 ? null : 10) })
    const gone = await failure(fresh.get('x'))
    fresh.disconnect()
    assert.ok(isRedisUnavailable(gone), `dead server: ${String(gone)} (${(gone as Error).name})`)
  } finally {
    inFlight.disconnect()
    offline.disconnect()
    await redis.restart()
  }
})

test('the ioredis error classes and Redis reply codes that mean unavailable; not other errors', async () => {
  // redis-errors is the package ioredis takes its error classes from.
  const redisErrors = createRequire(createRequire(import.meta.url).resolve('ioredis'))(
    'redis-errors',
  ) as { AbortError: new (m: string) => Error; InterruptError: new (m: string) => Error }
  assert.ok(
    isRedisUnavailable(new redisErrors.AbortError('Command aborted due to connection close')),
  )
  assert.ok(isRedisUnavailable(new redisErrors.InterruptError('interrupted')))
  const ReplyErrorClass = ReplyError as new (message: string) => Error
  for (const code of [
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing',
    'LOADING Redis is loading the dataset in memory',
  ]) {
    assert.ok(isRedisUnavailable(new ReplyErrorClass(code)), code)
  }
  assert.ok(
    isRedisUnavailable(
      new Error('job failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED /x'), { code: 'ECONNREFUSED' }),
      }),
    ),
    'wrapped',
  )
  // Not unavailability: a bad command, a programming error, a look-alike message on another class.
  const c = client()
  const wrongType = await failure(c.call('NOSUCHCOMMAND'))
  c.disconnect()
  assert.ok(!isRedisUnavailable(wrongType), String(wrongType))
  assert.ok(!isRedisUnavailable(new TypeError('Command timed out')))
  assert.ok(!isRedisUnavailable(new Error('ECONNREFUSED somewhere in a message')))
  assert.ok(!isRedisUnavailable(new RangeError('Maximum call stack size exceeded')))
  assert.ok(!isRedisUnavailable('Connection is closed.'))
})
