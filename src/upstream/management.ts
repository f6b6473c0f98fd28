/**
 * The broker's calls to an upstream's SSF management API (SSF §8.1), as a receiver: create the stream
 * (with this broker's push endpoint, or poll), read its status, trigger a verification, delete it.
 * Endpoints come from the upstream's discovered metadata, never fixed paths. A 401 with a
 * client-credentials token fetches a new token and tries once more.
 */
import { ReceiverError } from '../receiver/errors.js'
import {
  httpRequest,
  isObject,
  parseJson,
  transmitterHttpError,
  type HttpResponse,
  type HttpSettings,
} from '../receiver/http.js'
import { DELIVERY_METHODS, type TransmitterMetadata } from '../receiver/types.js'
import type { TokenProvider } from './token.js'

export interface CreatedStream {
  stream_id: string
  aud: string | string[]
  poll_url?: string
  events_delivered?: string[]
}

export interface ManagementContext {
  issuer: string
  metadata: TransmitterMetadata
  token: TokenProvider
  http: HttpSettings
  /** SSRF check for URLs the upstream hands back (the poll URL). */
  check(url: string): string | undefined
}

type Endpoint = 'configuration_endpoint' | 'status_endpoint' | 'verification_endpoint'

function endpoint(ctx: ManagementContext, name: Endpoint): string {
  const url = ctx.metadata[name]
  if (typeof url !== 'string')
    throw new ReceiverError('ERR_ENDPOINT_UNSUPPORTED', `the upstream does not advertise ${name}`)
  return url
}

async function call(
  ctx: ManagementContext,
  url: string,
  method: 'GET' | 'POST' | 'DELETE',
  json?: unknown,
): Promise<HttpResponse> {
  const send = async () =>
    httpRequest(
      url,
      {
        method,
        headers: { authorization: `Bearer ${await ctx.token.get()}` },
        ...(json !== undefined ? { json } : {}),
      },
      ctx.http,
    )
  let res = await send()
  if (res.status === 401) {
    ctx.token.invalidate()
    res = await send()
  }
  return res
}

const withQuery = (url: string, params: Record<string, string>) => {
  const u = new URL(url)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

export async function createStream(
  ctx: ManagementContext,
  request: {
    delivery: { method: string; endpoint_url?: string; authorization_header?: string }
    events_requested: string[]
    description?: string
  },
): Promise<CreatedStream> {
  const res = await call(ctx, endpoint(ctx, 'configuration_endpoint'), 'POST', request)
  if (res.status !== 201 && res.status !== 200)
    throw transmitterHttpError('creating the stream at the upstream', res)
  const body = parseJson(res.text)
  const invalid = (why: string) =>
    new ReceiverError(
      'ERR_TRANSMITTER_RESPONSE_INVALID',
      `the upstream's stream configuration ${why}`,
    )
  if (!isObject(body)) throw invalid('is not a JSON object')
  if (typeof body.stream_id !== 'string' || body.stream_id === '' || body.stream_id.length > 256)
    throw invalid('has no stream_id')
  if (body.iss !== ctx.issuer)
    throw invalid(
      `names iss ${JSON.stringify(String(body.iss).slice(0, 200))}, not the upstream's issuer`,
    )
  const aud = body.aud
  if (
    !(typeof aud === 'string' && aud !== '') &&
    !(Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string' && a !== ''))
  )
    throw invalid('has no aud')
  const delivery = isObject(body.delivery) ? body.delivery : undefined
  if (delivery && delivery.method !== request.delivery.method)
    throw invalid(
      `uses delivery ${JSON.stringify(String(delivery.method).slice(0, 100))}, not the one requested`,
    )
  const created: CreatedStream = { stream_id: body.stream_id, aud: aud as string | string[] }
  if (
    Array.isArray(body.events_delivered) &&
    body.events_delivered.every((e) => typeof e === 'string')
  )
    created.events_delivered = body.events_delivered as string[]
  if (request.delivery.method === DELIVERY_METHODS.poll) {
    const url = delivery?.endpoint_url
    if (typeof url !== 'string') throw invalid('has no poll endpoint_url')
    const problem = ctx.check(url)
    if (problem) throw invalid(`has a poll endpoint_url that is not allowed: ${problem}`)
    created.poll_url = url
  }
  return created
}

/** The stream's status at the upstream, or undefined when it has no status endpoint. */
export async function streamStatus(
  ctx: ManagementContext,
  streamId: string,
): Promise<{ status: string; reason?: string } | undefined> {
  if (typeof ctx.metadata.status_endpoint !== 'string') return undefined
  const res = await call(
    ctx,
    withQuery(ctx.metadata.status_endpoint, { stream_id: streamId }),
    'GET',
  )
  if (res.status !== 200)
    throw transmitterHttpError('reading the stream status at the upstream', res)
  const body = parseJson(res.text)
  if (!isObject(body) || typeof body.status !== 'string')
    throw new ReceiverError(
      'ERR_TRANSMITTER_RESPONSE_INVALID',
      "the upstream's status answer has no status",
    )
  return {
    status: body.status,
    ...(typeof body.reason === 'string' ? { reason: body.reason } : {}),
  }
}

/** Asks for a verification event (SSF §8.1.4.2); false when the upstream has no verification endpoint. */
export async function requestVerification(
  ctx: ManagementContext,
  streamId: string,
  state: string,
): Promise<boolean> {
  if (typeof ctx.metadata.verification_endpoint !== 'string') return false
  const res = await call(ctx, ctx.metadata.verification_endpoint, 'POST', {
    stream_id: streamId,
    state,
  })
  if (res.status !== 204 && res.status !== 200)
    throw transmitterHttpError('requesting a verification at the upstream', res)
  return true
}

/** Deletes the stream at the upstream; one already gone (404) counts as deleted. */
export async function deleteStream(ctx: ManagementContext, streamId: string): Promise<void> {
  const res = await call(
    ctx,
    withQuery(endpoint(ctx, 'configuration_endpoint'), { stream_id: streamId }),
    'DELETE',
  )
  if (res.status === 204 || res.status === 200 || res.status === 404) return
  throw transmitterHttpError('deleting the stream at the upstream', res)
}
