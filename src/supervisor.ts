/**
 * SSF_BROKER_PROCESSES > 1: this (primary) process starts the embedded Redis if there is one, then runs
 * that many broker processes (node:cluster workers sharing the listening port). They coordinate through
 * Redis only, exactly like brokers on separate machines. A worker that dies is replaced; one that keeps
 * dying at start stops the whole broker instead of looping.
 */
import cluster, { type Worker } from 'node:cluster'
import type { Config } from './config/config.js'
import type { Logger } from './lib/log.js'
import { startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js'
import { serveClusterMetrics } from './ops/cluster-metrics.js'

const EARLY_EXIT_MS = 5000
const MAX_EARLY_EXITS = 5

export async function supervise(config: Config, log: Logger): Promise<void> {
  const env: Record<string, string> = {}
  let embedded: EmbeddedRedis | undefined
  if (config.redisUrl === undefined) {
    embedded = await startEmbeddedRedis(config.dataDir, { log })
    env.SSF_BROKER_REDIS_URL = embedded.url
    log.info('embedded redis-server running', { url: embedded.url })
  }
  serveClusterMetrics()
  let stopping = false
  let earlyExits = 0
  const startedAt = new Map<Worker, number>()
  const fork = () => startedAt.set(cluster.fork(env), Date.now())
  for (let i = 0; i < config.processes; i++) fork()

  const finish = async (code: number) => {
    await embedded?.stop()
    process.exit(code)
  }
  const stopAll = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    log.info('shutting down broker processes', { signal })
    for (const worker of startedAt.keys()) worker.process.kill('SIGTERM')
  }
  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? 0)
    startedAt.delete(worker)
    if (stopping) {
      if (startedAt.size === 0) void finish(0)
      return
    }
    log.error('broker process exited; starting another', { pid: worker.process.pid, code, signal })
    if (lived < EARLY_EXIT_MS && ++earlyExits >= MAX_EARLY_EXITS) {
      log.error('broker processes keep failing at start; giving up')
      stopAll('SIGTERM')
      if (startedAt.size === 0) void finish(1)
      return
    }
    fork()
  })
  process.on('SIGINT', () => stopAll('SIGINT'))
  process.on('SIGTERM', () => stopAll('SIGTERM'))
}
