/**
 * The Redis deployments the end-to-end tests run on: a real 3-master cluster that starts on loopback,
 * spreads keys of different slots over its masters, keeps data over a node restart (AOF), and leaves no
 * process or file behind; and how a test cluster is handed to the broker.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createConnection } from 'node:net'
import { testEnv } from './helpers/broker.js'
import { startTestRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js'

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })

describe('3-master Redis Cluster', () => {
  let cluster: TestRedisCluster
  const children: number[] = []

  before(async () => {
    cluster = await startTestRedisCluster({ onChild: (child) => children.push(child.pid!) })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('every master reports cluster_state:ok and owns a third of the slots', async () => {
    assert.equal(cluster.ports.length, 3)
    assert.equal(cluster.nodes, cluster.ports.map((p) => `127.0.0.1:${p}`).join(','))
    for (let i = 0; i < 3; i++) {
      const info = (await cluster.node(i).cluster('INFO')) as string
      assert.match(info, /^cluster_state:ok/m)
      assert.match(info, /^cluster_slots_assigned:16384/m)
      assert.match(info, /^cluster_known_nodes:3/m)
    }
    const ids = await Promise.all(
      [0, 1, 2].map(async (i) => (await cluster.node(i).cluster('MYID')) as string),
    )
    assert.equal(new Set(ids).size, 3)
  })

  test('keys of different slots land on different masters; one hash tag stays on one', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `spread:${i}`)
    for (const k of keys) await cluster.client.set(k, '1')
    const counts = await Promise.all([0, 1, 2].map((i) => cluster.node(i).dbsize()))
    assert.equal(
      counts.reduce((s, n) => s + n, 0),
      keys.length,
    )
    for (const n of counts)
      assert.ok(n > 0, `a master holds none of 60 spread keys: ${counts.join(', ')}`)

    // A multi-key command inside one tag works through the cluster client; across slots Redis refuses it.
    await cluster.client.mset('{t}:a', '1', '{t}:b', '2')
    assert.deepEqual(await cluster.client.mget('{t}:a', '{t}:b'), ['1', '2'])
    const owner = await cluster.nodeOf('{t}:a')
    assert.equal(await cluster.node(owner).exists('{t}:a', '{t}:b'), 2)
    assert.equal(await cluster.nodeOf('{t}:b'), owner)
    // Two keys of different slots on one master: refused as one command.
    const onOwner = keys.filter((k) => k !== '{t}:a')
    const sameNode: string[] = []
    for (const k of onOwner) if ((await cluster.nodeOf(k)) === owner) sameNode.push(k)
    assert.ok(sameNode.length >= 2)
    await assert.rejects(
      cluster.node(owner).mset(sameNode[0]!, 'x', sameNode[1]!, 'y'),
      /CROSSSLOT/,
    )
    // A key another master owns is redirected.
    const elsewhere = keys.find((k) => !sameNode.includes(k))!
    await assert.rejects(cluster.node(owner).get(elsewhere), /MOVED/)
    await cluster.flushAll()
    assert.deepEqual(await Promise.all([0, 1, 2].map((i) => cluster.node(i).dbsize())), [0, 0, 0])
  })

  test('a restarted master keeps its data (AOF) and the cluster is ok again', async () => {
    await cluster.client.set('kept', 'yes')
    const holder = await cluster.nodeOf('kept')
    const before = children.length
    await cluster.restartNode(holder)
    assert.equal(children.length, before + 1, 'the node was started again')
    assert.equal(await cluster.node(holder).get('kept'), 'yes')
    assert.equal(await cluster.client.get('kept'), 'yes')
  })

  test('commandStats sums the calls of every master', async () => {
    const a = await cluster.commandStats()
    for (let i = 0; i < 30; i++) await cluster.client.incr(`count:${i}`)
    const b = await cluster.commandStats()
    assert.equal((b.get('incr') ?? 0) - (a.get('incr') ?? 0), 30)
  })

  test('stop() ends every node and removes its files', async () => {
    const c = await startTestRedisCluster()
    const ports = c.ports
    const dirs = await Promise.all(
      [0, 1, 2].map(async (i) => ((await c.node(i).config('GET', 'dir')) as string[])[1]!),
    )
    for (const d of dirs) assert.ok(existsSync(d))
    await c.stop()
    for (const d of dirs) assert.equal(existsSync(d), false, `${d} left behind`)
    for (const p of ports) assert.ok(await refused(p), `port ${p} still accepts connections`)
  })
})

test('a test cluster reaches the broker as SSF_BROKER_REDIS_CLUSTER_NODES, one Redis as SSF_BROKER_REDIS_URL', () => {
  const cluster = testEnv('cluster://127.0.0.1:7001,127.0.0.1:7002', 8123)
  assert.equal(cluster.SSF_BROKER_REDIS_CLUSTER_NODES, '127.0.0.1:7001,127.0.0.1:7002')
  assert.equal(cluster.SSF_BROKER_REDIS_URL, undefined)
  const plain = testEnv('unix:///tmp/x.sock', 8123)
  assert.equal(plain.SSF_BROKER_REDIS_URL, 'unix:///tmp/x.sock')
  assert.equal(plain.SSF_BROKER_REDIS_CLUSTER_NODES, undefined)
})
