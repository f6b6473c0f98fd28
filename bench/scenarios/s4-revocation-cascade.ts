/**
 * Scenario 4: revocation cascade. One `caep/session-revoked` about a user with 1,000 delegated agents; the
 * time from sending the ingest request until the last of the 1,000 agent SETs has arrived at the receiver
 * process and been verified (and, for the record, the first). Target: at most 200 ms.
 *
 * Runs on a fresh broker with `SSF_BROKER_DEFAULT_SUBJECTS=NONE` and an emptied Redis (so a stream gets
 * exactly the subjects it added), and restarts the broker with the run's settings afterwards.
 *
 * How receivers subscribe (the realistic shape, measured with cold + warm trials like scenario 3): one push
 * stream per agent, as each agent session's runtime subscribes for its own agent. Stream i adds the subject
 * of agent i (`POST /ssf/subjects/add`, `{"format":"uri","uri":...}`) and so receives exactly that agent's
 * cascaded SET (`sub_id` `{"format":"complex","user":...,"agent":...}`); it never sees the user's own SET.
 * Each trial uses a new user and registers 1,000 new agents for it (`POST /agents`, emitter token), so no
 * trial's state touches another's; registration and subscription happen before the clock starts.
 *
 * The other shape, for comparison (a few trials): one push stream that added the user's subject, i.e.
 * one runtime hosting all 1,000 agents; it receives the user's SET and the 1,000 agent SETs.
 */
import { mapLimited } from '../lib/broker.js'
import { cpuBetween, snapshot } from '../lib/cpu.js'
import { now } from '../lib/emitter.js'
import { oneEventTrial, type OneEventTrial } from '../lib/one-event-trial.js'
import { commandCalls, commandsPer } from '../lib/probe.js'
import { median } from '../lib/stats.js'
import { createPushStreams, type PushStream } from '../lib/streams.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'

const AGENTS = 1000
const TARGET_MS = 200
const CONNECTIONS = 64
const NONE = { SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' }

const userSubject = (tag: string) => ({ format: 'email', email: `user.${tag}@bench.example` })
const agentSubject = (tag: string, i: number) => ({
  format: 'uri',
  uri: `spiffe://bench/agent/${tag}/${i}`,
})

/** Registers `AGENTS` agents for a new user; returns the user, the agents' subjects and the time taken. */
async function registerFleet(
  ctx: BenchContext,
  tag: string,
): Promise<{ user: Record<string, string>; agents: Record<string, string>[]; ms: number }> {
  const user = userSubject(tag)
  const agents = Array.from({ length: AGENTS }, (_, i) => agentSubject(tag, i))
  const t0 = now()
  await mapLimited(agents, CONNECTIONS, (agent) =>
    ctx.api.must([201], 'POST', '/agents', {
      token: ctx.tokens.emitter,
      json: {
        agent,
        delegator: user,
        task: 'ssf-broker benchmark task',
        scopes: [],
        expires_in: 3600,
      },
    }),
  )
  return { user, agents, ms: now() - t0 }
}

async function addSubjects(
  ctx: BenchContext,
  pairs: { streamId: string; subject: Record<string, string> }[],
): Promise<number> {
  const t0 = now()
  await mapLimited(pairs, CONNECTIONS, ({ streamId, subject }) =>
    ctx.api.must([200, 204], 'POST', '/ssf/subjects/add', {
      token: ctx.tokens.receiver,
      json: { stream_id: streamId, subject },
    }),
  )
  return now() - t0
}

/** Posts one session-revoked about `user` and waits (bounded) until `expect` SETs of its txn arrived. */
function emitAndTime(
  ctx: BenchContext,
  txn: string,
  user: Record<string, string>,
  expect: number,
): Promise<OneEventTrial> {
  return oneEventTrial(
    ctx.receivers,
    ctx.emitter,
    {
      type: 'caep/session-revoked',
      subject: user,
      txn,
      event: {
        initiating_entity: 'policy',
        reason_admin: { en: 'Session revoked by ssf-broker benchmark' },
      },
    },
    expect,
  )
}

export const scenario: Scenario = {
  id: 4,
  key: 'revocation-cascade',
  title: `Revocation cascade: one user, ${AGENTS.toLocaleString('en-US')} delegated agents`,
  async run(ctx) {
    const warmTrials = ctx.quick ? 2 : 10
    const sharedTrials = ctx.quick ? 1 : 3
    ctx.log('  fresh broker (SSF_BROKER_DEFAULT_SUBJECTS=NONE), empty Redis')
    await ctx.restartBroker(NONE)
    try {
      await ctx.receivers.reset()
      const t0 = now()
      const streams: PushStream[] = await createPushStreams(
        ctx,
        AGENTS,
        ctx.txnPrefix('s4a-'),
        CONNECTIONS,
      )
      const [shared] = await createPushStreams(ctx, 1, ctx.txnPrefix('s4s-'))
      const createMs = now() - t0

      // Shape 1: one push stream per agent. Trial 0 is cold (the broker's first pushes to these streams).
      ctx.log(
        `  one stream per agent: 1 cold + ${warmTrials} warm trials (each: a new user, ${AGENTS} agents registered and subscribed)`,
      )
      const prefix = ctx.txnPrefix('rc-')
      const trials: (OneEventTrial & { registerMs: number; subscribeMs: number })[] = []
      // CPU and Redis commands of the last warm trial only: from just before its emit until its last SET
      // arrived (the registrations and subscriptions before it are not counted).
      let cpu: Record<string, unknown> = {}
      let redisCommands: ReturnType<typeof commandsPer> | undefined
      let registerMs = 0
      for (let j = 0; j <= warmTrials; j++) {
        const fleet = await registerFleet(ctx, `${prefix}${j}`)
        registerMs += fleet.ms
        const subscribeMs = await addSubjects(
          ctx,
          streams.map((s, i) => ({ streamId: s.streamId, subject: fleet.agents[i]! })),
        )
        await new Promise((r) => setTimeout(r, 250)) // let the setup's requests settle
        const last = j === warmTrials
        const cpu0 = last ? snapshot(ctx.pids()) : undefined
        const calls0 = last ? await commandCalls(ctx.redis.client) : undefined
        trials.push({
          ...(await emitAndTime(ctx, `${prefix}${j}`, fleet.user, AGENTS)),
          registerMs: fleet.ms,
          subscribeMs,
        })
        if (cpu0 && calls0) {
          cpu = cpuBetween(cpu0, snapshot(ctx.pids()), { count: AGENTS, unit: 'SET' })
          redisCommands = commandsPer(calls0, await commandCalls(ctx.redis.client), AGENTS)
        }
      }
      const all = await ctx.receivers.collect({
        txnPrefix: prefix,
        expectKeys: streams.map((s) => s.key),
        expectTxns: trials.map((t) => t.txn),
      })

      // Shape 2: one stream for the whole fleet (it added the user: the user's SET + 1,000 agent SETs).
      ctx.log(`  one stream for all ${AGENTS} agents: ${sharedTrials} trials`)
      const sharedPrefix = ctx.txnPrefix('rcs-')
      const sharedTrialsOut: OneEventTrial[] = []
      for (let k = 0; k < sharedTrials; k++) {
        const fleet = await registerFleet(ctx, `${sharedPrefix}${k}`)
        registerMs += fleet.ms
        await addSubjects(ctx, [{ streamId: shared!.streamId, subject: fleet.user }])
        await new Promise((r) => setTimeout(r, 100))
        sharedTrialsOut.push(await emitAndTime(ctx, `${sharedPrefix}${k}`, fleet.user, AGENTS + 1))
      }
      const sharedAll = await ctx.receivers.collect({ txnPrefix: sharedPrefix, byTxn: true })

      const cold = trials[0]!
      const warm = trials.slice(1)
      const warmLast = warm.map((t) => t.lastMs)
      const med = median(warmLast)
      const registrations = (trials.length + sharedTrialsOut.length) * AGENTS
      const sharedMissing = sharedTrialsOut.reduce(
        (s, t) => s + Math.max(0, AGENTS + 1 - t.arrived),
        0,
      )
      const lossNote =
        all.missing > 0 || all.failures > 0
          ? `LOSS: ${all.missing} missing, ${all.failures} failed verification`
          : undefined
      const fig = (
        name: string,
        value: number,
        target?: Figure['target'],
        note = lossNote,
      ): Figure => ({
        name,
        value,
        unit: 'ms',
        ratio: { kind: 'batch', sets: AGENTS },
        ...(target ? { target } : {}),
        ...(note ? { note } : {}),
      })
      const sharedNote =
        sharedMissing > 0 || sharedAll.failures > 0
          ? `LOSS: ${sharedMissing} missing, ${sharedAll.failures} failed verification`
          : undefined
      return {
        status: 'ok',
        figures: [
          fig(`1 stream per agent: last agent SET, warm median of ${warm.length}`, med, {
            text: `≤ ${TARGET_MS} ms`,
            pass: med <= TARGET_MS && all.missing === 0 && all.failures === 0,
          }),
          fig('1 stream per agent: last agent SET, warm max', Math.max(...warmLast)),
          fig('1 stream per agent: last agent SET, cold (first event)', cold.lastMs),
          fig(
            '1 stream per agent: first agent SET, warm median',
            median(warm.map((t) => t.firstMs)),
          ),
          fig(
            `1 stream for all agents: last of ${AGENTS + 1} SETs (user + agents), median of ${sharedTrialsOut.length}`,
            median(sharedTrialsOut.map((t) => t.lastMs)),
            undefined,
            sharedNote,
          ),
          {
            name: `agent registrations (POST /agents, ${CONNECTIONS} in flight)`,
            value: (registrations * 1000) / registerMs,
            unit: '/s',
            ratio: { kind: 'http-rate' },
          },
        ],
        details: {
          broker_env: NONE,
          agents_per_user: AGENTS,
          subscription: {
            measured:
              "one push stream per agent (each agent session runtime subscribes for its own agent); stream i added agent i's uri subject, so it receives exactly that agent's cascaded SET",
            compared:
              "one push stream that added the user's subject: the user's SET plus all 1,000 agent SETs",
          },
          agent_subjects:
            'spiffe://bench/agent/<trial>/<i>: a new user and 1,000 new agents per trial',
          sink_ports: ctx.receivers.ports.length,
          stream_create_ms: createMs,
          trials,
          shared_stream_trials: sharedTrialsOut,
          registrations,
          register_ms_total: registerMs,
          cpu_last_warm_trial: cpu,
          redis_commands_per_set_last_warm_trial: redisCommands,
          received: {
            distinct: all.distinct,
            duplicates: all.duplicates,
            extra_jti_per_pair: all.extraPerPair,
            missing: all.missing,
            missing_sample: all.missingSample,
            unexpected: all.unexpected,
            other: all.other,
            verify_failures: all.failures,
          },
          shared_stream_received: {
            distinct: sharedAll.distinct,
            duplicates: sharedAll.duplicates,
            missing: sharedMissing,
            verify_failures: sharedAll.failures,
          },
        },
      }
    } finally {
      // The restart empties Redis: the streams and agents go with it.
      ctx.log("  restarting the broker with the run's settings")
      await ctx.restartBroker()
    }
  },
}
