/** Stream setup shared by the scenarios: push streams onto the receiver process's sinks, poll streams, cleanup. */
import { mapLimited } from './broker.js'
import type { BenchContext } from './types.js'

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const PUSH = 'urn:ietf:rfc:8935'
export const POLL = 'urn:ietf:rfc:8936'
export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'

export interface PushStream {
  streamId: string
  /** The sink path key: SETs for this stream are recorded under it. */
  key: string
}

/** Creates `n` push streams for session-revoked events (or `eventsRequested`), spread round-robin over the sink ports. */
export async function createPushStreams(
  ctx: BenchContext,
  n: number,
  keyPrefix: string,
  concurrency = 32,
  eventsRequested: string[] = [SESSION_REVOKED],
): Promise<PushStream[]> {
  return mapLimited(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async (i) => {
      const key = `${keyPrefix}${i}`
      const body = await ctx.api.must([201], 'POST', '/ssf/streams', {
        token: ctx.tokens.receiver,
        json: {
          delivery: { method: PUSH, endpoint_url: ctx.receivers.sinkUrl(key, i) },
          events_requested: eventsRequested,
        },
      })
      return { streamId: body.stream_id as string, key }
    },
  )
}

export async function createPollStream(
  ctx: BenchContext,
): Promise<{ streamId: string; url: string }> {
  const body = await ctx.api.must([201], 'POST', '/ssf/streams', {
    token: ctx.tokens.receiver,
    json: { delivery: { method: POLL }, events_requested: [SESSION_REVOKED] },
  })
  const url = body?.delivery?.endpoint_url
  if (typeof url !== 'string')
    throw new Error(`poll stream has no delivery.endpoint_url: ${JSON.stringify(body)}`)
  return { streamId: body.stream_id as string, url }
}

/** Deletes streams (best effort, bounded): nothing from one scenario is delivered during the next. */
export async function deleteStreams(
  ctx: BenchContext,
  ids: readonly string[],
  concurrency = 32,
): Promise<{ deleted: number; failed: number }> {
  let deleted = 0
  let failed = 0
  await mapLimited(ids, concurrency, async (id) => {
    try {
      const res = await ctx.api.request(
        'DELETE',
        `/ssf/streams?stream_id=${encodeURIComponent(id)}`,
        { token: ctx.tokens.receiver },
      )
      if (res.status === 204 || res.status === 404) deleted++
      else failed++
    } catch {
      failed++
    }
  })
  return { deleted, failed }
}

/** The broker's address for a poll URL (the issuer may name another host, e.g. localhost). */
export function localUrl(ctx: BenchContext, url: string): string {
  const u = new URL(url)
  return `${ctx.broker.url}${u.pathname}${u.search}`
}
