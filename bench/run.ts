/**
 * `npm run bench [-- --quick]`: the broker's performance on this machine, next to two baselines measured
 * in the same run (raw signing rate, raw keep-alive HTTP POST rate). See README "Performance".
 *
 * Starts everything itself and stops it at the end, even on failure: a private redis-server, a receiver
 * process (push sinks and poll clients that verify every SET), the broker as `node dist/main.js`, and the
 * load generator (this process). Writes a table to the terminal and JSON to bench/results/.
 *
 * Options:
 *   --quick                 short runs (a few minutes), for development
 *   --only=1,3,priority     run only these scenarios (numbers or keys)
 *   --alg=ES256|EdDSA|RS256 signing algorithm of the receiver's streams (default ES256)
 *   --sink-ports=N          loopback ports the push sinks listen on (default 8)
 *   --broker-env=NAME=VALUE extra/overridden SSF_BROKER_* setting for the broker (repeatable)
 *   --broker-main=PATH      broker entry to run (default dist/main.js)
 *   --broker-node-arg=ARG   extra Node.js option for the broker, such as --max-semi-space-size=32 (repeatable)
 *   --subject-budget=SEC    scenario 7: longest time spent adding subjects (default 400; quick 4)
 *   --cpu-prof              run the broker with --cpu-prof; profiles go to bench/results/profiles/
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ADMIN_TOKEN,
  Api,
  freePort,
  NotSupported,
  refusedSettings,
  spawnBroker,
  type BrokerProcess,
} from './lib/broker.js'
import { combine, measureHttp, measureSign, ratiosFor, type BaselineRun } from './lib/baselines.js'
import { Emitter, overloaded } from './lib/emitter.js'
import { compareWithFloor, floorText } from './lib/floor-compare.js'
import { cpuBetween, snapshot } from './lib/cpu.js'
import { liveChildren } from './lib/procs.js'
import { Receivers } from './lib/receivers.js'
import { REDIS_ARGS, startRedis, type BenchRedis } from './lib/redis.js'
import { POLL } from './lib/streams.js'
import { baselineText, markdownTable, ratioText, terminalTable, valueText } from './lib/report.js'
import { round } from './lib/stats.js'
import type { BenchContext, Features, Scenario, ScenarioResult, Tokens } from './lib/types.js'
import { scenario as s1 } from './scenarios/s1-push-latency.js'
import { scenario as s2 } from './scenarios/s2-throughput.js'
import { scenario as s3 } from './scenarios/s3-fanout.js'
import { scenario as s4 } from './scenarios/s4-revocation-cascade.js'
import { scenario as s5 } from './scenarios/s5-poll-latency.js'
import { scenario as s6 } from './scenarios/s6-time-to-revoke.js'
import { scenario as s7 } from './scenarios/s7-memory.js'
import { scenario as s8 } from './scenarios/s8-priority.js'
import { scenario as s9 } from './scenarios/s9-fairness.js'
import { scenario as s10 } from './scenarios/s10-recovery.js'
import { scenario as s11 } from './scenarios/s11-scale-out.js'
import { scenario as s12 } from './scenarios/s12-floor.js'

const SCENARIOS: Scenario[] = [s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12]
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const RESULTS = join(ROOT, 'bench', 'results')

// ---- options --------------------------------------------------------------------------------------

interface Options {
  quick: boolean
  only: Set<string> | undefined
  alg: 'ES256' | 'EdDSA' | 'RS256'
  sinkPorts: number
  brokerEnv: Record<string, string>
  brokerMain: string
  brokerNodeArgs: string[]
  cpuProf: boolean
  subjectBudgetMs: number | undefined
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    quick: false,
    only: undefined,
    alg: 'ES256',
    sinkPorts: 8,
    brokerEnv: {},
    brokerMain: join(ROOT, 'dist', 'main.js'),
    brokerNodeArgs: [],
    cpuProf: false,
    subjectBudgetMs: undefined,
  }
  for (const arg of argv) {
    const [name, value = ''] = arg.split(/=(.*)/s) as [string, string?]
    if (name === '--quick') o.quick = true
    else if (name === '--cpu-prof') o.cpuProf = true
    else if (name === '--only') {
      o.only = new Set(
        value
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean),
      )
      const unknown = [...o.only].filter(
        (v) => !SCENARIOS.some((s) => String(s.id) === v || s.key === v),
      )
      if (unknown.length > 0 || o.only.size === 0) {
        process.stderr.write(
          `bench: --only: unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => `${s.id} (${s.key})`).join(', ')}\n`,
        )
        process.exit(2)
      }
    } else if (name === '--alg' && ['ES256', 'EdDSA', 'RS256'].includes(value))
      o.alg = value as Options['alg']
    else if (
      name === '--sink-ports' &&
      /^\d+$/.test(value) &&
      Number(value) >= 1 &&
      Number(value) <= 64
    )
      o.sinkPorts = Number(value)
    else if (name === '--broker-main' && value) o.brokerMain = resolve(value)
    else if (name === '--broker-node-arg' && value.startsWith('--')) o.brokerNodeArgs.push(value)
    else if (name === '--subject-budget' && /^\d+$/.test(value))
      o.subjectBudgetMs = Number(value) * 1000
    else if (name === '--broker-env' && /^SSF_BROKER_[A-Z0-9_]+=/.test(value)) {
      const [k, v = ''] = value.split(/=(.*)/s) as [string, string?]
      o.brokerEnv[k] = v
    } else {
      process.stderr.write(`bench: unknown or invalid option ${arg}\n`)
      process.exit(2)
    }
  }
  return o
}

// ---- machine facts --------------------------------------------------------------------------------

interface Machine {
  cpu: string
  cores: number
  available_parallelism: number
  memory_bytes: number
  os: string
  node: string
  redis: string
}

function machine(): Machine {
  const cpus = os.cpus()
  let redisVersion = 'unknown'
  try {
    redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()
  } catch {
    // reported as unknown
  }
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    available_parallelism: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: redisVersion,
  }
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2))
  const startedAt = new Date()
  const t0 = Date.now()
  const log = (m: string) =>
    process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}\n`)
  const facts = { ...machine(), load_average_start: os.loadavg().map((v) => round(v)) }
  log(
    `${opts.quick ? 'quick' : 'full'} run on ${facts.cpu} x${facts.cores}, Node ${process.version}, ${opts.alg}`,
  )

  let redis: BenchRedis | undefined
  let receivers: Receivers | undefined
  let broker: BrokerProcess | undefined
  let api: Api | undefined
  let emitter: Emitter | undefined
  const results: ScenarioResult[] = []
  const baselineRuns: BaselineRun[] = []
  let brokerEnv: Record<string, string> = {}
  let exitCode = 0
  let sampleSet = ''
  let idleCpu: Record<string, unknown> = {}

  // Whatever happens, nothing outlives the run.
  let aborting = false
  const watchdogMs = opts.quick ? 300_000 : 25 * 60_000
  const watchdog = setTimeout(() => {
    aborting = true
    log(`watchdog: the run took longer than ${watchdogMs / 1000} s; stopping everything`)
    void cleanup().finally(() => process.exit(3))
  }, watchdogMs)
  let cleaning: Promise<void> | undefined
  async function cleanup(): Promise<void> {
    cleaning ??= (async () => {
      await emitter?.close().catch(() => {})
      await api?.close().catch(() => {})
      await broker?.stop().catch(() => {})
      await receivers?.stop().catch(() => {})
      await redis?.stop().catch(() => {})
    })()
    return cleaning
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      aborting = true
      log(`${sig}: stopping everything`)
      void cleanup().finally(() => process.exit(130))
    })
  }
  // Work still in flight when the processes it talks to are stopped fails; that must not end the run
  // before everything is cleaned up.
  process.on('unhandledRejection', (err) => {
    if (aborting) return
    log(`unexpected error: ${(err as Error)?.stack ?? String(err)}`)
    aborting = true
    void cleanup().finally(() => process.exit(1))
  })

  const baselines = async (label: string) => {
    const ms = opts.quick ? 700 : 3000
    log(`baselines (${label}): signing`)
    const sign = await measureSign(redis!.scratch(15), opts.alg, ms)
    sampleSet ||= sign.sample
    log(`baselines (${label}): HTTP POST`)
    const http = await measureHttp(receivers!.baselineUrl(), sign.sample, ms)
    const { sample: _, ...signFigures } = sign
    baselineRuns.push({ at: label, sign: signFigures, http })
    log(
      `  sign ${Math.round(sign.ratePerSec)}/s (alone ${sign.serialMs.toFixed(3)} ms), POST ${Math.round(http.ratePerSec)}/s (alone ${http.serialMs.toFixed(3)} ms)`,
    )
  }

  try {
    redis = await startRedis()
    log(`redis-server pid ${redis.pid} on ${redis.url}`)
    receivers = await Receivers.start(opts.sinkPorts)
    log(
      `receiver process pid ${receivers.pid}, sinks on ports ${receivers.ports.join(', ')} (clock offset ${receivers.clockOffsetMs.toFixed(3)} ms)`,
    )
    await baselines('start')

    const port = await freePort()
    brokerEnv = {
      SSF_BROKER_PORT: String(port),
      SSF_BROKER_HOST: '127.0.0.1',
      SSF_BROKER_REDIS_URL: redis.url,
      SSF_BROKER_ADMIN_TOKEN: ADMIN_TOKEN,
      // Receivers are on loopback, which the SSRF guard refuses otherwise.
      SSF_BROKER_DANGEROUSLY_ALLOW_PRIVATE_PUSH: 'true',
      SSF_BROKER_LOG_LEVEL: 'warn',
      // Scenario 3 pushes to 1,000 streams at once; the default (256) would serve them in four rounds.
      SSF_BROKER_PUSH_STREAMS_IN_FLIGHT: '1024',
      // Scenarios 3, 4 and 7 give one receiver 1,000 to 10,000 streams; the default quota is 100.
      SSF_BROKER_MAX_STREAMS_PER_RECEIVER: '100000',
      ...opts.brokerEnv,
    }
    const nodeArgs = [
      ...opts.brokerNodeArgs,
      ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS, 'profiles')}`] : []),
    ]
    if (opts.cpuProf) mkdirSync(join(RESULTS, 'profiles'), { recursive: true })

    let tokens: Tokens = { receiver: '', emitter: '', audience: '' }
    let features: Features = { poll: false, addSubject: undefined, metadata: {} }
    let issuer = ''
    const startBroker = async (extra: Record<string, string> = {}) => {
      broker = await spawnBroker(opts.brokerMain, { ...brokerEnv, ...extra }, nodeArgs)
      api = new Api(broker.url, 64)
      const metadata = await api.must([200], 'GET', '/.well-known/ssf-configuration')
      issuer = metadata.issuer
      features = {
        poll:
          Array.isArray(metadata.delivery_methods_supported) &&
          metadata.delivery_methods_supported.includes(POLL),
        addSubject:
          typeof metadata.add_subject_endpoint === 'string'
            ? metadata.add_subject_endpoint
            : undefined,
        metadata,
      }
      const receiver = await api.must([201], 'POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'bench-receiver', roles: ['receiver'], signing_alg: opts.alg },
      })
      const emitterClient = await api.must([201], 'POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'bench-emitter', roles: ['emitter'] },
      })
      tokens = {
        receiver: receiver.token,
        emitter: emitterClient.token,
        audience: receiver.audience,
      }
      emitter = new Emitter(broker.url, tokens.emitter, 64)
      const keys = await receivers!.configure(issuer, [tokens.audience], `${broker.url}/jwks.json`)
      log(
        `broker pid ${broker.pid} at ${broker.url} (issuer ${issuer}); poll ${features.poll ? 'advertised' : 'not advertised'}, add_subject_endpoint ${features.addSubject ? 'advertised' : 'not advertised'}; ${keys} keys in the JWKS`,
      )
    }
    const stopBroker = async () => {
      await emitter?.close().catch(() => {})
      await api?.close().catch(() => {})
      await broker?.stop()
      broker = undefined
    }
    await startBroker()
    // What the broker costs doing nothing (timers, polling), over a quiet second or two.
    {
      const a = snapshot({ broker: broker!.pid, 'redis-server': redis.pid })
      await new Promise((r) => setTimeout(r, opts.quick ? 1000 : 2000))
      idleCpu = cpuBetween(a, snapshot({ broker: broker!.pid, 'redis-server': redis.pid }))
      log(`idle: ${JSON.stringify(idleCpu)}`)
    }

    let counter = 0
    const runId = `b${Date.now().toString(36)}`
    const ctx: BenchContext = {
      quick: opts.quick,
      subjectBudgetMs: opts.subjectBudgetMs,
      alg: opts.alg,
      redis,
      get broker() {
        return broker!
      },
      get api() {
        return api!
      },
      get emitter() {
        return emitter!
      },
      receivers,
      get tokens() {
        return tokens
      },
      get features() {
        return features
      },
      get issuer() {
        return issuer
      },
      txnPrefix: (tag) => `${runId}.${++counter}.${tag}`,
      log,
      async restartBroker(env = {}, keepData = false) {
        await stopBroker()
        if (!keepData) await redis!.flushAll()
        try {
          await startBroker(env)
        } catch (err) {
          const refused = refusedSettings(err, Object.keys(env))
          if (refused.length === 0) throw err
          // This broker does not know a setting the scenario needs: back to the run's settings.
          await startBroker()
          throw new NotSupported(
            `the broker refused ${refused.join(', ')} at start-up (${
              String((err as Error).message)
                .split('\n')
                .find((l) => refused.some((n) => l.includes(n)))
                ?.trim() ?? 'unknown setting'
            })`,
          )
        }
      },
      brokerMain: opts.brokerMain,
      brokerNodeArgs: nodeArgs,
      brokerEnv: () => ({ ...brokerEnv }),
      async reconfigureReceivers() {
        await receivers!.configure(issuer, [tokens.audience], `${broker!.url}/jwks.json`)
      },
      pids: () => ({ broker: broker!.pid, 'redis-server': redis!.pid, receivers: receivers!.pid }),
      root: ROOT,
    }

    for (const s of SCENARIOS) {
      if (opts.only && !opts.only.has(String(s.id)) && !opts.only.has(s.key)) continue
      log(`scenario ${s.id}: ${s.title}`)
      const st = Date.now()
      const cpuStart = snapshot(ctx.pids())
      const shedBefore = { ...overloaded }
      let r: Omit<ScenarioResult, 'id' | 'key' | 'title' | 'durationMs'>
      try {
        r = await s.run(ctx)
      } catch (err) {
        if (err instanceof NotSupported) {
          r = { status: 'not_available', reason: err.message, figures: [], details: {} }
        } else {
          log(`  failed: ${(err as Error).stack ?? String(err)}`)
          if (broker) log(`  broker stderr (tail):\n${broker.stderrTail()}`)
          r = {
            status: 'failed',
            reason: String((err as Error).message ?? err).split('\n')[0]!,
            figures: [],
            details: {},
          }
          exitCode = 1
        }
      }
      // A scenario that failed half-way may have left the broker stopped: the next one needs it.
      if (!broker && !aborting) {
        try {
          await startBroker()
        } catch (err) {
          log(`  the broker did not start again: ${(err as Error).message}`)
          throw err
        }
      }
      const cpu = broker ? cpuBetween(cpuStart, snapshot(ctx.pids()), undefined, r.childCpuMs) : {}
      // Admission control: requests the broker refused as overloaded, which the emitter waited out and sent again.
      const shed = {
        requests: overloaded.requests - shedBefore.requests,
        events: overloaded.events - shedBefore.events,
      }
      if (shed.requests > 0) {
        r.details = { ...r.details, overloaded_503_retried: shed }
        r.figures.push({
          name: 'ingest requests refused 503 overloaded, waited out and posted again',
          value: shed.requests,
          unit: 'count',
          ratio: { kind: 'none' },
          note: `${shed.events} events; latencies count the wait`,
        })
        log(
          `  503 overloaded (waited out and posted again): ${shed.requests} requests, ${shed.events} events`,
        )
      }
      results.push({
        id: s.id,
        key: s.key,
        title: s.title,
        durationMs: Date.now() - st,
        ...r,
        details: { ...r.details, cpu_whole_scenario: cpu },
      })
      const other = (cpu['other work'] as { cores?: number | null } | undefined)?.cores
      if (typeof other === 'number')
        log(`  other work on the machine during this scenario: ${other} cores`)
      // A full run measures the baselines again half-way (with the broker idle), and at the end.
      if (s.id === 3 && !opts.quick) await baselines('middle')
      // Ratios here use the baselines so far; the table and JSON use every baseline run.
      const soFar = combine(baselineRuns, sampleSet)
      for (const f of r.figures) {
        f.ratios = ratiosFor(soFar, f.ratio, f.value)
        log(
          `  ${f.name}: ${valueText(f)}${f.ratios.length ? ` (${ratioText(f)})` : ''}${f.note ? ` [${f.note}]` : ''}`,
        )
      }
      if (r.status !== 'ok') log(`  ${r.status}: ${r.reason}`)
    }

    await stopBroker() // also writes the CPU profile when --cpu-prof
    if (!opts.quick) await baselines('end')
  } catch (err) {
    log(`run failed: ${(err as Error).stack ?? String(err)}`)
    if (broker) log(`broker stderr (tail):\n${broker.stderrTail()}`)
    exitCode = 1
  } finally {
    clearTimeout(watchdog)
    await cleanup()
    const left = liveChildren()
    if (left.length > 0) log(`still running after cleanup (killed on exit): ${left.join(', ')}`)
  }

  if (baselineRuns.length === 0) return exitCode || 1
  const used = combine(baselineRuns, sampleSet)
  for (const r of results) {
    for (const f of r.figures) {
      f.ratios = ratiosFor(used, f.ratio, f.value)
      if (f.target?.minHttpRatio !== undefined)
        f.target.pass = f.target.pass && f.value / used.httpRate >= f.target.minHttpRatio
    }
  }
  const finishedAt = new Date()
  const targets = results.flatMap((r) =>
    r.figures
      .filter((f) => f.target)
      .map((f) => ({
        scenario: r.id,
        figure: f.name,
        target: f.target!.text,
        value: f.value,
        unit: f.unit,
        pass: f.target!.pass,
      })),
  )
  const floor = compareWithFloor(results, used.httpRate)
  const configuration = {
    mode: opts.quick ? 'quick' : 'full',
    ...(opts.only ? { only: [...opts.only] } : {}),
    alg: opts.alg,
    broker_env: Object.fromEntries(
      Object.entries(brokerEnv).filter(
        ([k]) => !['SSF_BROKER_ADMIN_TOKEN', 'SSF_BROKER_REDIS_URL', 'SSF_BROKER_PORT'].includes(k),
      ),
    ),
    broker_cpu_profile: opts.cpuProf,
    redis_args: REDIS_ARGS,
    sink_ports: opts.sinkPorts,
    processes:
      'redis-server, broker (node dist/main.js), receiver process (push sinks + poll clients, jose verification), load generator (this process)',
  }
  // The cost of one delivered SET at fan-out 10 (scenario 2), the figures the design is judged by.
  const fanout10 = (
    results.find((r) => r.id === 2)?.details.runs as Record<string, any>[] | undefined
  )?.find((d) => d.fanout === 10)
  const report = {
    schema: 'ssf-broker-bench/1',
    redis_commands_per_set: fanout10 ? fanout10.redis_commands_per_set.total_per_unit : null,
    cpu_ms_per_set: fanout10 ? fanout10.cpu_ms_per_set : null,
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    duration_s: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
    machine: { ...facts, load_average_end: os.loadavg().map((v) => round(v)) },
    idle_cpu: idleCpu,
    configuration,
    baselines: {
      runs: used.runs,
      used_for_ratios: {
        sign_rate_per_s: used.signRate,
        http_rate_per_s: used.httpRate,
        sign_alone_ms: used.signSerialMs,
        post_alone_ms: used.httpSerialMs,
      },
    },
    scenarios: results,
    targets,
    ...(floor.length ? { floor_comparison: floor } : {}),
  }
  mkdirSync(RESULTS, { recursive: true })
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  // Only a complete full run is named full-*; runs of some scenarios are partial-* (not kept in git).
  const file = join(
    RESULTS,
    `${opts.quick ? 'quick' : opts.only ? 'partial' : 'full'}-${stamp}.json`,
  )
  const json =
    JSON.stringify(
      report,
      (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
      2,
    ) + '\n'
  writeFileSync(file, json)
  const knobs = Object.entries(configuration.broker_env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  const header = [
    `Machine: ${facts.cpu}, ${facts.cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${facts.os}, Node ${process.version}, ${String(facts.redis).split(' ').slice(0, 3).join(' ')}; load average at start ${facts.load_average_start.join(' ')}`,
    `Broker settings: ${knobs}; signing ${opts.alg}; ${opts.sinkPorts} sink ports`,
    baselineText(used, opts.alg),
  ].join('\n')
  const unavailable = results
    .filter((r) => r.status !== 'ok' || r.reason)
    .map(
      (r) =>
        `  ${r.id}. ${r.status === 'ok' ? 'partly available' : r.status.replace('_', ' ')}: ${r.reason}`,
    )
  process.stdout.write(
    `\n${header}\n\n${terminalTable(results)}\n${unavailable.length ? `\nNot available or failed:\n${unavailable.join('\n')}\n` : ''}\n${floorText(floor)}`,
  )
  if (!opts.quick && !opts.only) {
    writeFileSync(join(RESULTS, 'latest.json'), json)
    writeFileSync(
      join(RESULTS, 'latest.md'),
      `${header
        .split('\n')
        .map((l) => (l.startsWith('  ') ? `- ${l.trim()}` : l))
        .join(
          '\n\n',
        )}\n\n${markdownTable(results)}\n${floor.length ? `\n${floorText(floor).replace(/^ {2}/gm, '- ')}` : ''}`,
    )
  }
  process.stdout.write(
    `Results: ${relative(process.cwd(), file)}${!opts.quick && !opts.only ? ' (and bench/results/latest.json, latest.md)' : ''}\n`,
  )
  const missed = targets.filter((t) => !t.pass)
  process.stdout.write(
    `Targets: ${targets.length - missed.length} of ${targets.length} met${missed.length ? `; missed: ${missed.map((t) => `scenario ${t.scenario} ${t.figure}`).join(', ')}` : ''}\n`,
  )
  return exitCode
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
