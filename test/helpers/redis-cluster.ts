/**
 * A private three-node Redis Cluster (no replicas) on free loopback ports, each node in its own temp
 * directory. Stopped (and its files removed) by `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster } from 'ioredis'

export interface TestCluster {
  nodes: { host: string; port: number }[]
  client: Cluster
  /** Sends a signal to every node (SIGSTOP / SIGCONT to freeze and thaw the cluster). */
  signal(sig: NodeJS.Signals): void
  stop(): Promise<void>
}

/** Whether a loopback port can be bound now. */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Three ports whose cluster bus ports (+10000) are free as well. */
async function freePorts(): Promise<number[]> {
  const ports: number[] = []
  for (let port = 20_000 + Math.floor(Math.random() * 20_000); ports.length < 3 && port < 55_000; port++) {
    if ((await free(port)) && (await free(port + 10_000))) ports.push(port)
  }
  if (ports.length < 3) throw new Error('no free loopback ports for a test cluster')
  return ports
}

export async function startTestCluster(): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-broker-test-cluster-'))
  const ports = await freePorts()
  const children: ChildProcess[] = ports.map((port) => {
    const nodeDir = mkdtempSync(join(dir, `n${port}-`))
    return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' })
  })
  const stop = async () => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        return exited
      }),
    )
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const ping = (port: number) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], { encoding: 'utf8', timeout: 2000 }).stdout.trim() === 'PONG'
    const deadline = Date.now() + 10_000
    while (!ports.every(ping)) {
      if (Date.now() > deadline) throw new Error('test cluster nodes did not start')
      await new Promise((r) => setTimeout(r, 50))
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`)
    const state = (port: number) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'cluster', 'info'], { encoding: 'utf8', timeout: 2000 }).stdout
    while (!ports.every((p) => state(p).includes('cluster_state:ok'))) {
      if (Date.now() > deadline + 20_000) throw new Error('test cluster did not reach cluster_state:ok')
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    await stop()
    throw err
  }
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }))
  const client = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 3 } })
  client.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve())
    client.once('end', () => reject(new Error('cluster client ended before ready')))
  })
  return {
    nodes,
    client,
    signal: (sig) => children.forEach((child) => child.kill(sig)),
    async stop() {
      children.forEach((child) => child.kill('SIGCONT'))
      client.disconnect()
      await stop()
    },
  }
}
