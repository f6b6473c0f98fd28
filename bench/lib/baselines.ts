/**
 * The two baselines every figure is compared with, measured on this machine in the same run:
 *
 * 1. Signing: the broker's own `signSet` with a `KeyStore` (from src/keys), with the configured algorithm,
 *    in this one process, with as many signatures in flight as the broker's fan-out keeps (256); plus the
 *    time of one signature alone.
 * 2. HTTP: plain keep-alive POSTs of a SET-sized body from an undici Pool (as many connections as the
 *    broker keeps per receiver origin) to the same kind of sink the push receivers run, in the receiver
 *    process, answering 202 without verifying; plus the round trip of one POST alone.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import type { Redis } from 'ioredis'
import { KeyStore } from '../../src/keys/keystore.js'
import { signSet, type SetClaims } from '../../src/keys/sign-set.js'
import { median } from './stats.js'
import type { Ratio, RatioSpec } from './types.js'

export interface SignBaseline {
  alg: string
  inFlight: number
  ratePerSec: number
  serialMs: number
  setBytes: number
}

export interface HttpBaseline {
  connections: number
  inFlight: number
  bodyBytes: number
  ratePerSec: number
  serialMs: number
}

export interface BaselineRun {
  at: string
  sign: SignBaseline
  http: HttpBaseline
}

export interface Baselines {
  runs: BaselineRun[]
  /** The figures ratios use: the median over the runs (robust to one disturbed run on a shared machine). */
  signRate: number
  httpRate: number
  signSerialMs: number
  httpSerialMs: number
  sampleSet: string
}

const SIGN_IN_FLIGHT = 256 // as src/ingest/fan-out.ts keeps
export const HTTP_CONNECTIONS = 16 // as src/broker.ts gives the push client per origin (max(concurrency, 8))
const HTTP_IN_FLIGHT = 64

function claims(i: number): SetClaims {
  return {
    iss: 'http://localhost:8080',
    aud: 'Yb3kq9d1LrK2mVtx0e7s-w',
    jti: `bench-${i}-aF3kq9d1LrK2mVtx0e7sw`,
    txn: `bench-baseline-${i}`,
    sub_id: { format: 'email', email: `user${i % 10_000}@bench.example.com` },
    eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
    event: {
      initiating_entity: 'policy',
      reason_admin: { en: 'Session revoked by ssf-broker benchmark' },
      event_timestamp: Math.floor(Date.now() / 1000),
    },
  }
}

export async function measureSign(
  redis: Redis,
  alg: 'ES256' | 'EdDSA' | 'RS256',
  durationMs: number,
): Promise<SignBaseline & { sample: string }> {
  const keys = new KeyStore(redis, 604_800)
  await keys.init()
  let sample = ''
  for (let i = 0; i < 50; i++) sample = await signSet(keys, alg, claims(i)) // warm-up
  const serial: number[] = []
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now()
    await signSet(keys, alg, claims(i))
    serial.push(performance.now() - t0)
  }
  let count = 0
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    Array.from({ length: SIGN_IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await signSet(keys, alg, claims(count))
        count++
      }
    }),
  )
  const elapsed = performance.now() - start
  return {
    alg,
    inFlight: SIGN_IN_FLIGHT,
    ratePerSec: (count * 1000) / elapsed,
    serialMs: median(serial),
    setBytes: Buffer.byteLength(sample),
    sample,
  }
}

export async function measureHttp(
  sinkUrl: string,
  body: string,
  durationMs: number,
): Promise<HttpBaseline> {
  const url = new URL(sinkUrl)
  const pool = new Pool(url.origin, {
    connections: HTTP_CONNECTIONS,
    pipelining: 1,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const post = async () => {
    const res = await pool.request({
      method: 'POST',
      path: url.pathname,
      headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
      body,
    })
    await res.body.text()
    if (res.statusCode !== 202) throw new Error(`baseline sink answered ${res.statusCode}`)
  }
  try {
    for (let i = 0; i < 200; i++) await post() // warm-up, connections open
    const serial: number[] = []
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now()
      await post()
      serial.push(performance.now() - t0)
    }
    let count = 0
    const start = performance.now()
    const end = start + durationMs
    await Promise.all(
      Array.from({ length: HTTP_IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          await post()
          count++
        }
      }),
    )
    const elapsed = performance.now() - start
    return {
      connections: HTTP_CONNECTIONS,
      inFlight: HTTP_IN_FLIGHT,
      bodyBytes: Buffer.byteLength(body),
      ratePerSec: (count * 1000) / elapsed,
      serialMs: median(serial),
    }
  } finally {
    await pool.close()
  }
}

export function combine(runs: BaselineRun[], sampleSet: string): Baselines {
  const mid = (f: (r: BaselineRun) => number) => {
    const v = runs.map(f).sort((a, b) => a - b)
    const h = Math.floor(v.length / 2)
    return v.length % 2 === 1 ? v[h]! : (v[h - 1]! + v[h]!) / 2
  }
  return {
    runs,
    signRate: mid((r) => r.sign.ratePerSec),
    httpRate: mid((r) => r.http.ratePerSec),
    signSerialMs: mid((r) => r.sign.serialMs),
    httpSerialMs: mid((r) => r.http.serialMs),
    sampleSet,
  }
}

// ---- ratios ---------------------------------------------------------------------------------------

export function ratiosFor(b: Baselines, spec: RatioSpec, value: number): Ratio[] {
  switch (spec.kind) {
    case 'rate':
      // A delivery rate (SETs/s) against both rate baselines.
      return [
        { against: 'HTTP POST rate', value: value / b.httpRate },
        { against: 'sign rate', value: value / b.signRate },
      ]
    case 'http-rate':
      return [{ against: 'HTTP POST rate', value: value / b.httpRate }]
    case 'latency':
      // A per-SET latency against one signature plus one POST, each done alone.
      return [{ against: 'one sign + one POST', value: value / (b.signSerialMs + b.httpSerialMs) }]
    case 'batch': {
      // The time to deliver n SETs against signing and posting n SETs at the baseline rates, one after the other.
      const ideal = spec.sets * (1000 / b.signRate + 1000 / b.httpRate)
      return [
        {
          against: `sign+POST ${spec.sets} at baseline rates (${ideal.toFixed(1)} ms)`,
          value: value / ideal,
        },
      ]
    }
    case 'relative':
      return [{ against: spec.against, value: value / spec.base }]
    case 'none':
      return []
  }
}
