/**
 * The subject index on a real Redis: matchAll() answers what matches() answers for each subject, and reads
 * an index term shared by several subjects once (a cascade's user, for every agent acting for it).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestRedis, type TestRedis } from './helpers/redis.js'
import { SubjectIndex } from '../src/subjects/index-store.js'
import { createKeyspace } from '../src/redis/keyspace.js'
import type { Subject } from '../src/subjects/subject.js'

let redis: TestRedis
const ks = createKeyspace('subidx-test')

before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis.stop()
})

async function smembersCalls(): Promise<number> {
  const info = await redis.client.info('commandstats')
  return Number(/cmdstat_smembers:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

test('matchAll: each subject its own matches, each shared term read once', async () => {
  const index = new SubjectIndex(redis.client, ks)
  const user = { format: 'email', email: 'alice@example.com' } as Subject
  const agent = (i: number) =>
    ({ format: 'uri', uri: `https://agents.example.com/a${i}` }) as Subject
  // Stream i added agent i; stream "all" added the user; stream "pair" added one complex {user, agent 3}.
  for (let i = 0; i < 20; i++) await index.add(`s${i}`, agent(i))
  await index.add('all', user)
  await index.add('pair', { format: 'complex', user, agent: agent(3) } as Subject)
  const subjects = Array.from(
    { length: 20 },
    (_, i) => ({ format: 'complex', user, agent: agent(i) }) as Subject,
  )
  const one = []
  for (const s of subjects) one.push([...(await index.matches(s))].sort())
  const before = await smembersCalls()
  const all = (await index.matchAll(subjects)).map((m) => [...m].sort())
  const calls = (await smembersCalls()) - before
  assert.deepEqual(all, one)
  assert.deepEqual(all[3], ['all', 'pair', 's3'])
  assert.deepEqual(all[7], ['all', 's7'])
  // Two terms for the user ("user" member and simple), two per agent: 2 + 2 × 20, not 4 × 20.
  assert.equal(calls, 2 + 2 * 20)
})
