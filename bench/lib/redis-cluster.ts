/**
 * A private 3-master Redis Cluster for the scale-out scenario: the test suite's cluster (loopback ports,
 * own temporary directories, AOF with fsync every second, noeviction), with its processes and directories
 * tracked like every other child of the benchmark, so nothing outlives the run.
 */
import { startTestRedisCluster, type TestRedisCluster } from '../../test/helpers/redis-cluster.js'
import { track, trackDir } from './procs.js'

export type BenchRedisCluster = TestRedisCluster & { pids(): number[] }

export async function startRedisCluster(): Promise<BenchRedisCluster> {
  const pids: number[] = []
  const c = await startTestRedisCluster({
    extraArgs: ['--appendfsync', 'everysec'],
    onChild: (child, name) => {
      track(child, name)
      pids.push(child.pid!)
    },
    onDir: (dir) => void trackDir(dir),
  })
  // One pid per node: the benchmark never restarts a node.
  return Object.assign(c, { pids: () => pids.slice(-3) })
}
