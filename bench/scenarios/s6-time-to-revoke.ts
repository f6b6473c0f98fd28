/**
 * Scenario 6: time to revoke. From sending the `caep/session-revoked` ingest request to the moment the
 * receiver SDK's enforcement middleware refuses the agent's next request (the agent receives the 401).
 *
 * - Resource server: its own process (bench/lib/resource-server-proc.ts) on a loopback port, built with the
 *   real SDK from `dist/receiver/index.js` (`ssf-broker/receiver`): `createReceiver` + `createHonoPushHandler`
 *   feeding a `createRevocationIndex`, `revocationMiddleware` on `/api/*`, its push stream created and
 *   verified through `createStreamClient`, with its own receiver client at the broker.
 * - Agent: this process, one keep-alive connection, `GET /api/data` one call at a time with a pause of
 *   `PAUSE_MS` between calls, bearing an ES256 access token from a bench IdP for the user, acting as the
 *   agent (RFC 8693 `act`).
 * - Each trial: a new user; the agent must be served (200) before the emit; the figure is the time from
 *   the emit to the first 401 `invalid_token` the agent receives. A trial with no refusal within 10 s
 *   counts as infinitely late. The SDK's own moment (the index recording the SET) is kept per trial.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { Pool } from 'undici'
import { ADMIN_TOKEN } from '../lib/broker.js'
import { cpuBetween, snapshot } from '../lib/cpu.js'
import { now } from '../lib/emitter.js'
import { ResourceServer } from '../lib/resource-server.js'
import { median, summarize } from '../lib/stats.js'
import { SESSION_REVOKED } from '../lib/streams.js'
import type { BenchContext, Figure, Scenario } from '../lib/types.js'

const IDP = 'https://idp.bench.example'
const RS_AUDIENCE = 'https://rs.bench.example'
const AGENT = 'spiffe://bench/agent/time-to-revoke'
const PAUSE_MS = 2
const REFUSAL_TIMEOUT_MS = 10_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Call {
  sent: number
  at: number
  status: number
  challenge: string
}

interface Trial {
  txn: string
  /** Emit → the agent received its first 401. */
  refusalMs: number
  /** Emit → the broker answered 202. */
  acceptedMs: number
  /** Emit → the resource server's revocation index recorded the SET (clock offset corrected). */
  appliedMs: number | null
  refusalStatus: number
  refusalChallenge: string
  /** Whether the refused call was sent after the index recorded the revocation (else it was on its way, or queued behind the push, meanwhile). */
  refusedCallSentAfterApply: boolean | null
  callsServedAfterEmit: number
  medianCallGapMs: number
}

async function trial(
  ctx: BenchContext,
  rs: ResourceServer,
  pool: Pool,
  privateKey: CryptoKey,
  txn: string,
  sub: string,
  addSubject: boolean,
): Promise<Trial> {
  const token = await new SignJWT({
    sid: `sess-${sub}`,
    client_id: 'bench-agent-runtime',
    act: { sub: AGENT },
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
    .setIssuer(IDP)
    .setSubject(sub)
    .setAudience(RS_AUDIENCE)
    .setJti(txn)
    .setIssuedAt(Math.floor(Date.now() / 1000) - 1)
    .setExpirationTime('10m')
    .sign(privateKey)
  const subject = { format: 'iss_sub', iss: IDP, sub }
  if (addSubject) await rs.addSubject(subject)

  // The agent: one call at a time, bounded in time whatever happens.
  const calls: Call[] = []
  let emittedAt = Infinity
  let stop = false
  let onRefusal: () => void = () => {}
  const refused = new Promise<void>((r) => (onRefusal = r))
  const loop = (async () => {
    const deadline = now() + REFUSAL_TIMEOUT_MS + 10_000
    while (!stop && now() < deadline) {
      const sent = now()
      let call: Call
      try {
        const res = await pool.request({
          method: 'GET',
          path: '/api/data',
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(5000),
        })
        await res.body.text()
        call = {
          sent,
          at: now(),
          status: res.statusCode,
          challenge: String(res.headers['www-authenticate'] ?? ''),
        }
      } catch (err) {
        call = { sent, at: now(), status: 0, challenge: String(err) }
      }
      calls.push(call)
      if (call.status !== 200 && call.at > emittedAt) onRefusal()
      await sleep(PAUSE_MS)
    }
  })()
  try {
    const ready = now() + 5000
    while (calls.length < 5 && now() < ready) await sleep(2)
    if (calls.length < 5 || calls.some((c) => c.status !== 200))
      throw new Error(
        `the agent is not served before the revocation: ${JSON.stringify(calls.slice(0, 5).map((c) => c.status))}`,
      )

    emittedAt = now()
    const status = await ctx.emitter.post([
      {
        type: 'caep/session-revoked',
        subject,
        txn,
        event: {
          initiating_entity: 'admin',
          reason_admin: { en: 'Session revoked by ssf-broker benchmark' },
        },
      },
    ])
    const acceptedAt = now()
    if (status !== 202) throw new Error(`POST /events answered ${status}`)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([refused, new Promise((r) => (timer = setTimeout(r, REFUSAL_TIMEOUT_MS)))])
    clearTimeout(timer)
    stop = true
    await loop
    const after = calls.filter((c) => c.at > emittedAt)
    const refusal = after.find((c) => c.status !== 200)
    const applied = await rs.appliedAt(txn)
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at)
    return {
      txn,
      refusalMs: refusal ? refusal.at - emittedAt : Infinity,
      acceptedMs: acceptedAt - emittedAt,
      appliedMs: applied === null ? null : applied - emittedAt,
      refusalStatus: refusal?.status ?? 0,
      refusalChallenge: refusal?.challenge ?? '',
      refusedCallSentAfterApply: refusal && applied !== null ? refusal.sent >= applied : null,
      callsServedAfterEmit: after.filter((c) => c.status === 200).length,
      medianCallGapMs: median(gaps),
    }
  } finally {
    stop = true
    await loop
  }
}

export const scenario: Scenario = {
  id: 6,
  key: 'time-to-revoke',
  title: "Time to revoke: emit to the SDK middleware's first refusal",
  async run(ctx) {
    const sdkPath = join(ctx.root, 'dist', 'receiver', 'index.js')
    if (!existsSync(sdkPath))
      return {
        status: 'not_available',
        reason: 'the receiver SDK is not built (dist/receiver/index.js missing)',
        figures: [],
        details: {},
      }
    const n = ctx.quick ? 5 : 30
    const idp = await generateKeyPair('ES256', { extractable: true })
    const client = await ctx.api.must([201], 'POST', '/admin/clients', {
      token: ADMIN_TOKEN,
      json: { name: 'bench-resource-server', roles: ['receiver'], signing_alg: ctx.alg },
    })
    // On a NONE broker the stream must add each user; on ALL (the run's default) it gets every subject.
    const addSubject =
      ctx.features.metadata.default_subjects === 'NONE' && ctx.features.addSubject !== undefined
    let rs: ResourceServer | undefined
    let pool: Pool | undefined
    try {
      rs = await ResourceServer.start({
        sdkUrl: pathToFileURL(sdkPath).href,
        issuer: ctx.issuer,
        audience: client.audience,
        receiverToken: client.token,
        eventsRequested: [SESSION_REVOKED],
        idp: {
          issuer: IDP,
          audience: RS_AUDIENCE,
          jwk: { ...(await exportJWK(idp.publicKey)), alg: 'ES256' },
        },
      })
      ctx.log(
        `  resource server pid ${rs.pid} at ${rs.url} (stream verified in ${rs.verificationMs.toFixed(1)} ms); ${n} trials`,
      )
      pool = new Pool(rs.url, {
        connections: 1,
        pipelining: 1,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      })
      const pids = () => ({ ...ctx.pids(), 'resource server': rs!.pid })
      const cpu0 = snapshot(pids())
      const prefix = ctx.txnPrefix('ttr-')
      const trials: Trial[] = []
      for (let j = 0; j < n; j++) {
        trials.push(
          await trial(
            ctx,
            rs,
            pool,
            idp.privateKey,
            `${prefix}${j}`,
            `user.${prefix}${j}`,
            addSubject,
          ),
        )
        await sleep(50)
      }
      const cpu = cpuBetween(cpu0, snapshot(pids()))
      const rsStats = await rs.stats()
      const s = summarize(trials.map((t) => t.refusalMs))
      const applied = trials.map((t) => t.appliedMs ?? Infinity)
      const late = trials.filter((t) => !Number.isFinite(t.refusalMs)).length
      const wrong = trials.filter(
        (t) =>
          Number.isFinite(t.refusalMs) &&
          (t.refusalStatus !== 401 ||
            !t.refusalChallenge.startsWith('Bearer error="invalid_token"')),
      ).length
      const notes: string[] = []
      if (late > 0)
        notes.push(
          `${late} of ${n} trials not refused within ${REFUSAL_TIMEOUT_MS / 1000} s (counted as infinite)`,
        )
      if (wrong > 0) notes.push(`${wrong} refusals were not 401 invalid_token`)
      const note = notes.length > 0 ? notes.join('; ') : undefined
      const fig = (name: string, value: number): Figure => ({
        name,
        value,
        unit: 'ms',
        ratio: { kind: 'latency' },
        ...(note ? { note } : {}),
      })
      return {
        status: 'ok',
        figures: [
          fig(`emit → first 401, p50 of ${n}`, s.p50),
          fig('emit → first 401, p95', s.p95),
          fig('emit → first 401, max', s.max),
          fig('emit → SET applied at the resource server, p50', median(applied)),
        ],
        details: {
          sdk: 'dist/receiver/index.js (ssf-broker/receiver): createReceiver, createHonoPushHandler, createRevocationIndex, revocationMiddleware, createStreamClient',
          resource_server:
            'own process, hono on @hono/node-server, loopback; push stream with authorization_header; verification round trip before the trials',
          agent: `this process, one keep-alive connection, GET /api/data one at a time, ${PAUSE_MS} ms pause between calls; ES256 token for the user with act.sub ${AGENT}`,
          subject: 'iss_sub of the bench IdP, a new user per trial',
          stream_subjects_added_per_trial: addSubject,
          trials_count: n,
          refusal_ms: s,
          applied_ms: summarize(applied),
          accepted_ms: summarize(trials.map((t) => t.acceptedMs)),
          median_call_gap_ms: median(trials.map((t) => t.medianCallGapMs)),
          refused_call_sent_before_apply: trials.filter(
            (t) => t.refusedCallSentAfterApply === false,
          ).length,
          resource_server_clock_offset_ms: rs.clockOffsetMs,
          resource_server_stats: rsStats,
          stream_verification_ms: rs.verificationMs,
          cpu,
          trials,
        },
      }
    } finally {
      await pool?.close().catch(() => {})
      await rs?.stop()
    }
  },
}
