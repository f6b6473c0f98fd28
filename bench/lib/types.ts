/** What scenarios return and what they get. */
import type { Api, BrokerProcess } from './broker.js'
import type { Emitter } from './emitter.js'
import type { Receivers } from './receivers.js'
import type { BenchRedis } from './redis.js'

export type Unit = 'ms' | '/s' | 'B' | 'count'

export interface Ratio {
  /** What the figure is divided by, e.g. "HTTP POST rate". */
  against: string
  value: number
}

export interface Target {
  text: string
  /** For ratio targets: the conditions other than the ratio (e.g. no loss); the ratio is checked at the end. */
  pass: boolean
  /** The figure's ratio to the HTTP POST baseline must be at least this (checked once baselines are final). */
  minHttpRatio?: number
}

/** How a figure relates to the baselines; the ratios are computed at the end, from every baseline run. */
export type RatioSpec =
  | { kind: 'rate' }
  | { kind: 'http-rate' }
  | { kind: 'latency' }
  | { kind: 'batch'; sets: number }
  | { kind: 'relative'; base: number; against: string }
  | { kind: 'none' }

export interface Figure {
  name: string
  value: number
  unit: Unit
  ratio: RatioSpec
  /** Filled in at the end of the run. */
  ratios?: Ratio[]
  target?: Target
  note?: string
}

export interface ScenarioResult {
  id: number
  key: string
  title: string
  status: 'ok' | 'not_available' | 'failed'
  /** Why not available, or what failed. */
  reason?: string
  figures: Figure[]
  /** Everything else worth keeping: parameters, counts, loss checks. */
  details: Record<string, unknown>
  durationMs: number
  /** CPU time (ms) of processes the scenario started and stopped itself, for its whole-scenario accounting. */
  childCpuMs?: Record<string, number>
}

export interface Features {
  poll: boolean
  addSubject: string | undefined
  metadata: Record<string, unknown>
}

export interface Tokens {
  receiver: string
  emitter: string
  audience: string
}

export interface BenchContext {
  quick: boolean
  /** Scenario 7: longest time spent adding subjects (ms); --subject-budget overrides the default. */
  subjectBudgetMs: number | undefined
  alg: 'ES256' | 'EdDSA' | 'RS256'
  redis: BenchRedis
  broker: BrokerProcess
  api: Api
  emitter: Emitter
  receivers: Receivers
  tokens: Tokens
  features: Features
  issuer: string
  /** A txn prefix unique to this run and call: SETs from other scenarios never match it. */
  txnPrefix(tag: string): string
  log(message: string): void
  /**
   * Stops the broker and starts a fresh one with the same settings plus `env`, with new clients; Redis is
   * emptied first unless `keepData`. A broker that refuses a setting of `env` at start-up is started again
   * with the run's settings, and this throws `NotSupported` (the scenario is reported as not run).
   */
  restartBroker(env?: Record<string, string>, keepData?: boolean): Promise<void>
  /** The broker entry and node flags the run uses (for scenarios that start brokers of their own). */
  brokerMain: string
  brokerNodeArgs: string[]
  /** The run's broker settings (port and Redis included; callers replace those). */
  brokerEnv(): Record<string, string>
  /** Points the receiver process at the run's broker again (issuer, audience, JWKS). */
  reconfigureReceivers(): Promise<void>
  /** Pids of the processes whose CPU time is accounted (broker, redis-server, receiver process). */
  pids(): Record<string, number>
  /** Root of the repository (to look for built artefacts such as dist/receiver). */
  root: string
}

export interface Scenario {
  id: number
  key: string
  title: string
  run(ctx: BenchContext): Promise<Omit<ScenarioResult, 'id' | 'key' | 'title' | 'durationMs'>>
}
