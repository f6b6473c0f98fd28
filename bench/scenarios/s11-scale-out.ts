/**
 * Scenario 11: scale-out on Redis Cluster. A private 3-master cluster on loopback, started here; 1, 2 and
 * then 3 broker processes on it (`SSF_BROKER_REDIS_CLUSTER_NODES`, one issuer, their own ports), the
 * emitter posting round-robin to all of them; at fan-out 10, the sustained rate of SETs delivered and
 * verified, Redis commands per SET (summed over the masters, idle subtracted) and broker CPU per SET. On
 * two cores this shows the cost of more processes, not a speed-up.
 *
 * For the estimate on paper: one master's capacity in commands per second of its CPU (commands it ran /
 * its CPU time), and from it the shards needed for 100,000 SETs/s at this run's commands per SET.
 * A broker that refuses the cluster setting is reported as not run.
 */
import {
  ADMIN_TOKEN,
  Api,
  freePort,
  NotSupported,
  refusedSettings,
  spawnBroker,
  type BrokerProcess,
} from '../lib/broker.js'
import { cpuMs } from '../lib/cpu.js'
import { Emitter } from '../lib/emitter.js'
import { startRedisCluster, type BenchRedisCluster } from '../lib/redis-cluster.js'
import { createPushStreams, deleteStreams } from '../lib/streams.js'
import { measureFanout } from '../lib/throughput.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'

const NODES_VAR = 'SSF_BROKER_REDIS_CLUSTER_NODES'
const FANOUT = 10
const GOAL_SETS_PER_S = 100_000

export const scenario: Scenario = {
  id: 11,
  key: 'scale-out',
  title: 'Scale-out: 1, 2 and 3 brokers on a 3-master Redis Cluster (fan-out 10)',
  async run(ctx) {
    let cluster: BenchRedisCluster | undefined
    const brokers: BrokerProcess[] = []
    let api: Api | undefined
    try {
      cluster = await startRedisCluster()
      ctx.log(`  redis cluster on ${cluster.nodes} (pids ${cluster.pids().join(', ')})`)
      const { SSF_BROKER_REDIS_URL: _url, ...base } = ctx.brokerEnv()
      const firstPort = await freePort()
      const issuer = `http://127.0.0.1:${firstPort}`
      const spawnOne = async () => {
        const port = brokers.length === 0 ? firstPort : await freePort()
        const env = {
          ...base,
          SSF_BROKER_PORT: String(port),
          SSF_BROKER_ISSUER: issuer,
          [NODES_VAR]: cluster!.nodes,
        }
        try {
          brokers.push(await spawnBroker(ctx.brokerMain, env, ctx.brokerNodeArgs))
        } catch (err) {
          if (refusedSettings(err, [NODES_VAR]).length > 0)
            throw new NotSupported(`the broker refused ${NODES_VAR} at start-up`)
          throw err
        }
      }
      await spawnOne()
      api = new Api(brokers[0]!.url, 32)
      const receiver = await api.must([201], 'POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'bench-receiver', roles: ['receiver'], signing_alg: ctx.alg },
      })
      const emitterClient = await api.must([201], 'POST', '/admin/clients', {
        token: ADMIN_TOKEN,
        json: { name: 'bench-emitter', roles: ['emitter'] },
      })
      await ctx.receivers.configure(issuer, [receiver.audience], `${brokers[0]!.url}/jwks.json`)
      // Stream setup helpers take the context's api and tokens: this cluster's.
      const local = {
        receivers: ctx.receivers,
        api,
        tokens: {
          receiver: receiver.token,
          emitter: emitterClient.token,
          audience: receiver.audience,
        },
      } as unknown as BenchContext

      const figures: Figure[] = []
      const runs: Record<string, unknown>[] = []
      for (const n of [1, 2, 3]) {
        while (brokers.length < n) await spawnOne()
        ctx.log(`  ${n} broker${n > 1 ? 's' : ''} (pids ${brokers.map((b) => b.pid).join(', ')})`)
        const emitters = brokers.map((b) => new Emitter(b.url, emitterClient.token, 32))
        const pids = () => ({
          ...Object.fromEntries(brokers.map((b, i) => [`broker ${i + 1}`, b.pid])),
          ...Object.fromEntries(cluster!.pids().map((pid, i) => [`redis-server ${i + 1}`, pid])),
          receivers: ctx.receivers.pid,
        })
        const redisCpu = () => cluster!.pids().reduce((s, pid) => s + cpuMs(pid), 0)
        const calls = async () =>
          [...(await cluster!.commandStats()).entries()]
            .filter(([c]) => c !== 'info')
            .reduce((s, [, v]) => s + v, 0)
        const cpu0 = redisCpu()
        const calls0 = await calls()
        try {
          const r = await measureFanout(
            {
              quick: ctx.quick,
              receivers: ctx.receivers,
              emitters,
              createStreams: (count, prefix) => createPushStreams(local, count, prefix),
              deleteStreams: (ids) => deleteStreams(local, ids),
              commandCalls: () => cluster!.commandStats(),
              pids,
              txnPrefix: (tag) => ctx.txnPrefix(`s11b${n}${tag}`),
            },
            FANOUT,
            `${n} broker${n > 1 ? 's' : ''}`,
          )
          const commandsPerCpuSecond = ((await calls()) - calls0) / ((redisCpu() - cpu0) / 1000)
          const shards = Math.ceil((GOAL_SETS_PER_S * r.redisCommandsPerSet) / commandsPerCpuSecond)
          figures.push(
            r.figures[0]!,
            {
              name: `${n} broker${n > 1 ? 's' : ''}: Redis commands per SET (idle subtracted)`,
              value: r.redisCommandsPerSet,
              unit: 'count',
              ratio: { kind: 'none' },
            },
            {
              name: `${n} broker${n > 1 ? 's' : ''}: broker CPU per SET`,
              value: r.cpuMsPerSet,
              unit: 'ms',
              ratio: { kind: 'none' },
            },
          )
          if (n === 1) {
            figures.push(
              {
                name: 'one master: commands per CPU-second',
                value: commandsPerCpuSecond,
                unit: '/s',
                ratio: { kind: 'none' },
                note: 'Redis commands run / redis-server CPU time, summed over the masters',
              },
              {
                name: `masters needed for ${GOAL_SETS_PER_S.toLocaleString('en-US')} SETs/s (estimate)`,
                value: shards,
                unit: 'count',
                ratio: { kind: 'none' },
                note: "commands per SET × 100,000 / one master's commands per CPU-second",
              },
            )
          }
          runs.push({
            ...r.details,
            redis_commands_per_cpu_second: Math.round(commandsPerCpuSecond),
            masters_needed_for_100k_sets_per_s: shards,
          })
        } finally {
          await Promise.all(emitters.map((e) => e.close().catch(() => {})))
        }
      }
      return {
        status: 'ok',
        figures,
        details: { masters: 3, cluster_nodes: cluster.nodes, fanout: FANOUT, runs },
      }
    } finally {
      await api?.close().catch(() => {})
      await Promise.all(brokers.map((b) => b.stop().catch(() => {})))
      await cluster?.stop().catch(() => {})
      await ctx.reconfigureReceivers().catch(() => {})
    }
  },
}
