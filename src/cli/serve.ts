/**
 * `ssf-broker serve`: runs the broker (one process, or SSF_BROKER_PROCESSES of them) until SIGINT/SIGTERM,
 * then shuts down within SSF_BROKER_SHUTDOWN_GRACE_SECONDS plus 2 s, whatever state Redis is in.
 */
import cluster from 'node:cluster'
import { ConfigError, loadConfig } from '../config/config.js'
import { createLogger } from '../lib/log.js'
import { DataDirInUseError, RedisServerMissingError } from '../redis/embedded.js'
import { startBroker } from '../broker.js'
import { supervise } from '../supervisor.js'

/** Past the grace period, the process exits anyway this much later (the contract is grace + 2 s). */
const HARD_EXIT_MARGIN_MS = 1800

export async function serve(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ssf-broker: invalid configuration: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)
  if (config.allowPrivatePush) {
    log.warn(
      '!!! SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH is on: push endpoints may be http: and loopback/private addresses. Never use this in production. !!!',
    )
  }
  if (config.processes > 1 && cluster.isPrimary) {
    try {
      await supervise(config, log)
    } catch (err) {
      if (err instanceof RedisServerMissingError || err instanceof DataDirInUseError) {
        process.stderr.write(`ssf-broker: ${err.message}\n`)
        process.exit(2)
      }
      throw err
    }
    return
  }
  let broker
  try {
    broker = await startBroker(config, log)
  } catch (err) {
    if (err instanceof RedisServerMissingError || err instanceof DataDirInUseError) {
      process.stderr.write(`ssf-broker: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  if (broker.generatedAdminToken) {
    process.stdout.write(
      `\nGenerated the admin token. It is shown only this once and only its hash is stored:\n\n  ${broker.generatedAdminToken}\n\n` +
        'Set SSF_BROKER_ADMIN_TOKEN to use a token of your own instead.\n\n',
    )
  }
  log.info('ssf-broker listening', {
    url: broker.url,
    port: broker.port,
    issuer: config.issuer,
    redis: config.redisUrl === undefined ? 'embedded' : 'external',
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    const graceMs = config.shutdownGraceSeconds * 1000
    log.info('shutting down', { signal, grace_seconds: config.shutdownGraceSeconds })
    setTimeout(() => {
      log.error('shutdown did not finish in time; exiting', {
        grace_seconds: config.shutdownGraceSeconds,
      })
      process.exit(1)
    }, graceMs + HARD_EXIT_MARGIN_MS).unref()
    broker.close().then(
      () => {
        log.info('shut down')
        process.exit(0)
      },
      (err: unknown) => {
        log.error('shutdown failed', { error: err })
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}
