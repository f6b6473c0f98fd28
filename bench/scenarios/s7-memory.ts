/**
 * Scenario 7: memory. Broker RSS and Redis memory (`used_memory`) with 10,000 streams and 1,000,000
 * subjects, on a fresh broker process and an emptied Redis, created through the API the way receivers
 * would (`POST /ssf/streams`, `POST /ssf/subjects/add`). Each figure is compared with the same process
 * idle (fresh, no streams). The subject part runs only if the broker advertises `add_subject_endpoint`,
 * and within a time budget; if the budget ends first, the figures say how many subjects they cover.
 */
import { Api, mapLimited } from '../lib/broker.js'
import { now } from '../lib/emitter.js'
import { createPushStreams, localUrl } from '../lib/streams.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'

const CONNECTIONS = 64
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function sample(
  ctx: BenchContext,
): Promise<{ rss: number; redis: number; redisRss: number; keys: number }> {
  await sleep(ctx.quick ? 500 : 2000) // let the broker settle (GC, timers) before reading
  const m = await ctx.redis.memory()
  return {
    rss: ctx.broker.rssBytes(),
    redis: m.usedMemory,
    redisRss: m.usedMemoryRss,
    keys: m.keys,
  }
}

export const scenario: Scenario = {
  id: 7,
  key: 'memory',
  title: 'Memory: 10,000 streams and 1,000,000 subjects',
  async run(ctx) {
    const nStreams = ctx.quick ? 300 : 10_000
    const nSubjects = ctx.quick ? 5000 : 1_000_000
    const subjectBudgetMs = ctx.subjectBudgetMs ?? (ctx.quick ? 4000 : 400_000)
    // NONE: a stream holds exactly the subjects added to it (on an ALL stream, adding a subject only
    // lifts an exclusion and stores nothing).
    ctx.log('  fresh broker (SSF_BROKER_DEFAULT_SUBJECTS=NONE), empty Redis')
    await ctx.restartBroker({ SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' })
    const idle = await sample(ctx)

    ctx.log(`  creating ${nStreams} streams`)
    const t0 = now()
    const streams = await createPushStreams(ctx, nStreams, ctx.txnPrefix('s7-'), CONNECTIONS)
    const streamMs = now() - t0
    const withStreams = await sample(ctx)

    const mem = (name: string, value: number, base: number, what: string): Figure => ({
      name,
      value,
      unit: 'B',
      ratio: { kind: 'relative', base, against: `idle ${what}` },
    })
    const figures: Figure[] = [
      mem(
        `broker RSS, ${nStreams.toLocaleString('en-US')} streams`,
        withStreams.rss,
        idle.rss,
        'broker RSS',
      ),
      mem(
        `Redis used_memory, ${nStreams.toLocaleString('en-US')} streams`,
        withStreams.redis,
        idle.redis,
        'Redis',
      ),
      {
        name: `stream creation (POST /ssf/streams, ${CONNECTIONS} in flight)`,
        value: (nStreams * 1000) / streamMs,
        unit: '/s',
        ratio: { kind: 'http-rate' },
      },
    ]
    const details: Record<string, unknown> = {
      broker_env: { SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' },
      streams: nStreams,
      idle,
      with_streams: withStreams,
      redis_bytes_per_stream: (withStreams.redis - idle.redis) / nStreams,
      stream_create_ms: streamMs,
    }

    const endpoint = ctx.features.addSubject
    if (!endpoint) {
      return {
        status: 'ok',
        reason: 'subjects part not available: the broker does not advertise add_subject_endpoint',
        figures,
        details: { ...details, subjects: 'not available: no add_subject_endpoint in the metadata' },
      }
    }
    ctx.log(
      `  adding up to ${nSubjects.toLocaleString('en-US')} subjects (budget ${subjectBudgetMs / 1000} s)`,
    )
    const url = new URL(localUrl(ctx, endpoint))
    const path = url.pathname + url.search
    const deadline = now() + subjectBudgetMs
    let added = 0
    let failed = 0
    let firstError: string | undefined
    const t1 = now()
    const api = new Api(ctx.broker.url, CONNECTIONS)
    await mapLimited(
      Array.from({ length: nSubjects }, (_, j) => j),
      CONNECTIONS,
      async (j) => {
        if (now() > deadline) return
        try {
          const res = await api.request('POST', path, {
            token: ctx.tokens.receiver,
            json: {
              stream_id: streams[j % nStreams]!.streamId,
              subject: { format: 'email', email: `member${j}@bench.example.com` },
            },
          })
          if (res.status >= 200 && res.status < 300) added++
          else {
            failed++
            firstError ??= `${res.status} ${res.text.slice(0, 200)}`
          }
        } catch (err) {
          failed++
          firstError ??= String(err)
        }
      },
    )
    const subjectMs = now() - t1
    await api.close()
    const withSubjects = await sample(ctx)
    // The same data, a broker process started afresh on it: what the broker keeps, without the garbage
    // of the million requests above.
    ctx.log('  fresh broker process on the same data')
    await ctx.restartBroker({ SSF_BROKER_DEFAULT_SUBJECTS: 'NONE' }, true)
    const restarted = await sample(ctx)
    const label =
      added === nSubjects
        ? nSubjects.toLocaleString('en-US')
        : `${added.toLocaleString('en-US')} of ${nSubjects.toLocaleString('en-US')} (time budget)`
    const note =
      added < nSubjects
        ? `only ${added} of ${nSubjects} subjects added within ${subjectBudgetMs / 1000} s${failed ? `; ${failed} failed: ${firstError}` : ''}`
        : undefined
    figures.push(
      {
        ...mem(`broker RSS, + ${label} subjects`, withSubjects.rss, idle.rss, 'broker RSS'),
        ...(note ? { note } : {}),
      },
      {
        ...mem(`Redis used_memory, + ${label} subjects`, withSubjects.redis, idle.redis, 'Redis'),
        ...(note ? { note } : {}),
      },
      mem(`broker RSS, fresh process on that data`, restarted.rss, idle.rss, 'broker RSS'),
      {
        name: `subject adds (POST /ssf/subjects/add, ${CONNECTIONS} in flight)`,
        value: (added * 1000) / subjectMs,
        unit: '/s',
        ratio: { kind: 'http-rate' },
      },
    )
    return {
      status: added > 0 ? 'ok' : 'failed',
      ...(added === 0 ? { reason: `no subject could be added: ${firstError}` } : {}),
      figures,
      details: {
        ...details,
        subjects_requested: nSubjects,
        subjects_added: added,
        subjects_failed: failed,
        subject_first_error: firstError,
        subject_add_ms: subjectMs,
        with_subjects: withSubjects,
        fresh_broker_on_same_data: restarted,
        redis_bytes_per_subject:
          added > 0 ? (withSubjects.redis - withStreams.redis) / added : null,
      },
    }
  },
}
