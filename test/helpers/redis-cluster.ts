/**
 * A private 3-master Redis Cluster on loopback for one test file (or one benchmark run): three
 * `redis-server --cluster-enabled yes` processes on free ports, each in its own temporary directory, joined
 * with `redis-cli --cluster create`, ready once every node reports `cluster_state:ok`. `stop()` stops the
 * nodes and removes their files.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'

export interface TestRedisCluster {
  /** Seed nodes as SSF_BROKER_REDIS_CLUSTER_NODES takes them: `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`. */
  nodes: string
  ports: number[]
  client: Cluster
  /** A plain connection to master i (for per-node reads such as INFO or DBSIZE). */
  node(i: number): Redis
  /** Which master (index into `ports`) holds `key`'s slot. */
  nodeOf(key: string): Promise<number>
  /** Stops master i (SIGTERM: the AOF is written) and starts it again on the same port and files; resolves once the cluster is ok again. */
  restartNode(i: number): Promise<void>
  /** Freezes every node (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void
  resume(): void
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>
  /** Calls per command summed over the masters (INFO commandstats). */
  commandStats(): Promise<Map<string, number>>
  stop(): Promise<void>
}

export interface ClusterOptions {
  masters?: number
  /** Called with each redis-server child (for callers that track their processes). */
  onChild?: (child: ChildProcess, name: string) => void
  /** Called with each node's temporary directory (removed by `stop()`). */
  onDir?: (dir: string) => void
  /** Extra redis-server arguments, e.g. `['--appendfsync', 'everysec']`. */
  extraArgs?: string[]
  /** How long start-up may take in all (ms). */
  timeoutMs?: number
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

interface Node {
  port: number
  busPort: number
  dir: string
  child: ChildProcess
  exited: Promise<void>
  conn: Redis
}

function exitedPromise(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const late = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000))),
  ])
  clearTimeout(timer)
  if (late) {
    child.kill('SIGKILL')
    await exited
  }
}

class Fatal extends Error {}

/** Resolves once `check` holds, trying every `everyMs`; throws with `what` after `deadline`. */
async function until(
  check: () => Promise<boolean>,
  deadline: number,
  what: string,
  everyMs = 50,
): Promise<void> {
  for (;;) {
    try {
      if (await check()) return
    } catch (err) {
      if (err instanceof Fatal) throw err
    }
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within the time allowed`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export async function startTestRedisCluster(
  options: ClusterOptions = {},
): Promise<TestRedisCluster> {
  const masters = options.masters ?? 3
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  const nodes: Node[] = []
  const launch = (n: Omit<Node, 'child' | 'exited' | 'conn'> & { conn?: Redis }): Node => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(n.port),
        '--cluster-port',
        String(n.busPort),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '2000',
        '--dir',
        n.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        join(n.dir, 'redis.log'),
        '--daemonize',
        'no',
        ...(options.extraArgs ?? []),
      ],
      { stdio: 'ignore' },
    )
    child.on('error', () => {})
    options.onChild?.(child, `redis-server :${n.port}`)
    const conn =
      n.conn ??
      new Redis({
        host: '127.0.0.1',
        port: n.port,
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        retryStrategy: () => 100,
      })
    conn.on('error', () => {})
    return { ...n, child, exited: exitedPromise(child), conn }
  }
  let client: Cluster | undefined
  const stopAll = async () => {
    for (const n of nodes) n.child.kill('SIGCONT')
    client?.disconnect()
    for (const n of nodes) n.conn.disconnect()
    await Promise.all(nodes.map((n) => stopProcess(n.child, n.exited)))
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true })
  }
  // A node that exits at start (a port taken meanwhile) fails at once rather than at the deadline.
  const answering = (n: Node, by: number) =>
    until(
      async () => {
        if (n.child.exitCode !== null || n.child.signalCode !== null)
          throw new Fatal(
            `redis-server on port ${n.port} exited at start (see ${join(n.dir, 'redis.log')})`,
          )
        return (await n.conn.ping()) === 'PONG'
      },
      by,
      `node ${n.port} did not answer PING`,
    )
  const clusterOk = (n: Node) => async () =>
    /^cluster_state:ok/m.test((await n.conn.cluster('INFO')) as string)
  try {
    const ports = new Set<number>()
    while (ports.size < masters * 2) ports.add(await freePort())
    const list = [...ports]
    for (let i = 0; i < masters; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'ssf-redis-cluster-'))
      options.onDir?.(dir)
      nodes.push(launch({ port: list[i]!, busPort: list[masters + i]!, dir }))
    }
    for (const n of nodes) await answering(n, deadline)
    await new Promise<void>((resolve, reject) => {
      execFile(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: Math.max(1000, deadline - Date.now()) },
        (err, _stdout, stderr) =>
          err
            ? reject(new Error(`redis-cli --cluster create failed: ${stderr || err.message}`))
            : resolve(),
      )
    })
    for (const n of nodes)
      await until(clusterOk(n), deadline, `node ${n.port} did not reach cluster_state:ok`)
    client = new Cluster(
      nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { redisOptions: { maxRetriesPerRequest: 3 }, lazyConnect: true },
    )
    client.on('error', () => {})
    await client.connect()
    await until(
      async () => (await client!.ping()) === 'PONG',
      deadline,
      'the cluster client did not connect',
    )
  } catch (err) {
    await stopAll()
    throw err
  }
  const cluster = client
  return {
    nodes: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    ports: nodes.map((n) => n.port),
    client: cluster,
    node: (i) => nodes[i]!.conn,
    async nodeOf(key) {
      const slot = Number(await nodes[0]!.conn.cluster('KEYSLOT', key))
      const ranges = await nodes[0]!.conn.cluster('SLOTS')
      const range = ranges.find(([lo, hi]) => slot >= lo && slot <= hi)
      const i = range?.[2] ? nodes.findIndex((n) => n.port === Number(range[2]![1])) : -1
      if (i < 0) throw new Error(`redis cluster: no master owns slot ${slot}`)
      return i
    },
    async restartNode(i) {
      const n = nodes[i]
      if (!n) throw new RangeError(`no node ${i}`)
      await stopProcess(n.child, n.exited)
      const again = launch({ port: n.port, busPort: n.busPort, dir: n.dir, conn: n.conn })
      nodes[i] = again
      const restartDeadline = Date.now() + (options.timeoutMs ?? 30_000)
      await answering(again, restartDeadline)
      for (const m of nodes)
        await until(
          clusterOk(m),
          restartDeadline,
          `node ${m.port} did not reach cluster_state:ok after the restart`,
        )
    },
    pause: () => nodes.forEach((n) => n.child.kill('SIGSTOP')),
    resume: () => nodes.forEach((n) => n.child.kill('SIGCONT')),
    async flushAll() {
      await Promise.all(nodes.map((n) => n.conn.flushall()))
    },
    async commandStats() {
      const calls = new Map<string, number>()
      for (const n of nodes) {
        const info = await n.conn.info('commandstats')
        for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
          calls.set(m[1]!, (calls.get(m[1]!) ?? 0) + Number(m[2]))
      }
      return calls
    },
    stop: stopAll,
  }
}
