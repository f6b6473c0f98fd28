/**
 * Request and response bodies of the SSF stream endpoints (SSF §8.1), as zod schemas: what the routes
 * validate and what the OpenAPI document describes.
 */
import { checkPushUrl } from '../delivery/address-guard.js'
import { identifier, subjectMember, text, z } from '../http/schema.js'
import { POLL_METHOD, PUSH_METHOD, STREAM_STATUSES } from './model.js'
import { TRANSMITTER_MEMBERS } from './request.js'

const MAX_DESCRIPTION = 1024
const MAX_AUTHORIZATION = 4096
export const MAX_REASON = 1024
export const MAX_STATE = 1024

const EXAMPLE_ID = '5f3c8a1e9b2d4c6f8a0b1c2d3e4f5a6b'
const EXAMPLE_PUSH = {
  method: PUSH_METHOD,
  endpoint_url: 'https://receiver.example/ssf/push',
  authorization_header: 'Bearer 8Jk2x',
}
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

export const streamId = z
  .string({ error: 'required' })
  .min(1, 'required')
  .openapi({ description: 'The stream id the transmitter assigned.', example: EXAMPLE_ID })

export const streamIdQuery = (required: boolean) => {
  const id = z
    .string()
    .min(1, 'must not be empty')
    .openapi({ description: 'The stream id.', example: EXAMPLE_ID })
  return z.object({
    stream_id: required ? z.string({ error: 'required query parameter' }).pipe(id) : id.optional(),
  })
}

const eventsRequested = z
  .array(z.string({ error: 'must be an array of event-type URIs' }), {
    error: 'must be an array of event-type URIs',
  })
  .max(200, 'at most 200 entries')
  .transform((uris) => [...new Set(uris)])
  .openapi({
    description:
      'Event-type URIs the receiver wants; `events_delivered` is their intersection with `events_supported`.',
    example: [SESSION_REVOKED],
  })

/** Push delivery (RFC 8935); the endpoint passes the address guard unless private pushes are allowed. */
export function pushDelivery(allowPrivate: boolean) {
  return z
    .strictObject({
      method: z.literal(PUSH_METHOD),
      endpoint_url: z
        .string({ error: 'required for push delivery' })
        .superRefine((url, ctx) => {
          const problem = checkPushUrl(url, allowPrivate)
          if (problem) ctx.addIssue({ code: 'custom', message: problem })
        })
        .openapi({
          format: 'uri',
          description: "The receiver's push endpoint (https, public address).",
        }),
      // Sent verbatim as an HTTP header: printable ASCII only, so it cannot inject other headers.
      authorization_header: z
        .string({
          error: `must be a non-empty printable ASCII string of at most ${MAX_AUTHORIZATION} characters`,
        })
        .regex(
          /^[\x20-\x7e]{1,4096}$/,
          `must be a non-empty printable ASCII string of at most ${MAX_AUTHORIZATION} characters`,
        )
        .optional()
        .openapi({ description: 'Sent as the Authorization header of every push.' }),
    })
    .openapi('PushDelivery', { example: EXAMPLE_PUSH })
}

export const PollDeliveryRequest = z
  .strictObject({
    method: z.literal(POLL_METHOD),
    endpoint_url: z.string({ error: 'must be a string' }).optional().openapi({
      format: 'uri',
      description: 'Minted by the transmitter; may be echoed back unchanged.',
    }),
    authorization_header: z
      .unknown()
      .refine(() => false, 'only for push delivery')
      .optional()
      .openapi({ description: 'Not allowed: only for push delivery.' }),
  })
  .openapi('PollDelivery', { example: { method: POLL_METHOD } })

export function deliveryRequest(allowPrivate: boolean) {
  return z
    .discriminatedUnion('method', [pushDelivery(allowPrivate), PollDeliveryRequest], {
      error: (issue) =>
        issue.code === 'invalid_union'
          ? `unsupported delivery method; supported: ${PUSH_METHOD}, ${POLL_METHOD}`
          : 'must be an object',
    })
    .openapi('Delivery', { description: 'Absent at creation (or in PUT) means poll.' })
}

const description = text(MAX_DESCRIPTION).openapi({
  description: 'Free text for people.',
  example: 'Session revocations for the help desk',
})

const receiverMembers = (allowPrivate: boolean) => ({
  events_requested: eventsRequested.optional(),
  delivery: deliveryRequest(allowPrivate).optional(),
  description: description.optional(),
})

/** Transmitter-supplied members in a create request: refused. */
const refusedMembers = Object.fromEntries(
  TRANSMITTER_MEMBERS.map((name) => [
    name,
    z
      .unknown()
      .refine(() => false, 'is set by the transmitter')
      .optional()
      .openapi({ description: 'Set by the transmitter: refused here.' }),
  ]),
) as unknown as Record<(typeof TRANSMITTER_MEMBERS)[number], z.ZodOptional<z.ZodUnknown>>

/** Transmitter-supplied members in an update: allowed when equal to the current value (checked after loading). */
const echoedMembers = Object.fromEntries(
  TRANSMITTER_MEMBERS.map((name) => [
    name,
    z.unknown().optional().openapi({
      description: 'Set by the transmitter: may be echoed, and must then equal its current value.',
    }),
  ]),
) as unknown as Record<(typeof TRANSMITTER_MEMBERS)[number], z.ZodOptional<z.ZodUnknown>>

export function streamCreateRequest(allowPrivate: boolean) {
  return z
    .strictObject(
      { ...receiverMembers(allowPrivate), ...refusedMembers },
      { error: 'request body must be a JSON object' },
    )
    .openapi('StreamCreateRequest', {
      description: 'Receiver-supplied members (SSF §8.1.1.1). No delivery means poll.',
    })
}

export function streamUpdateRequest(allowPrivate: boolean) {
  return z
    .strictObject(
      { stream_id: streamId, ...receiverMembers(allowPrivate), ...echoedMembers },
      { error: 'request body must be a JSON object' },
    )
    .openapi('StreamUpdateRequest', {
      description:
        'PATCH: the members given replace theirs. PUT: receiver-supplied members left out are removed, no delivery means poll. Transmitter-supplied members may appear but must equal the current values.',
    })
}

export const STREAM_EXAMPLE = {
  stream_id: EXAMPLE_ID,
  iss: 'https://broker.example',
  aud: 'rx-1',
  events_supported: [SESSION_REVOKED],
  events_requested: [SESSION_REVOKED],
  events_delivered: [SESSION_REVOKED],
  delivery: EXAMPLE_PUSH,
  min_verification_interval: 30,
}

export const StreamConfiguration = z
  .object({
    stream_id: z.string(),
    iss: z.string().openapi({ format: 'uri' }),
    aud: z.union([z.string(), z.array(z.string())]),
    events_supported: z.array(z.string()),
    events_requested: z.array(z.string()).optional(),
    events_delivered: z.array(z.string()),
    delivery: z.object({
      method: z.enum([PUSH_METHOD, POLL_METHOD]),
      endpoint_url: z.string().openapi({ format: 'uri' }),
      authorization_header: z.string().optional(),
    }),
    description: z.string().optional(),
    min_verification_interval: z
      .number()
      .int()
      .openapi({ description: 'Seconds between verification requests.' }),
    inactivity_timeout: z.number().int().optional().openapi({
      description:
        'Seconds without receiver activity after which the stream is paused; absent when streams never time out.',
    }),
  })
  .openapi('StreamConfiguration', { example: STREAM_EXAMPLE })

export const StreamStatus = z
  .object({
    stream_id: z.string(),
    status: z.enum(STREAM_STATUSES as ['enabled', 'paused', 'disabled']),
    reason: z.string().optional(),
  })
  .openapi('StreamStatus', {
    example: { stream_id: EXAMPLE_ID, status: 'paused', reason: 'maintenance' },
  })

export const StatusRequest = z
  .strictObject(
    {
      stream_id: streamId,
      status: z.enum(STREAM_STATUSES as ['enabled', 'paused', 'disabled'], {
        error: `must be one of ${STREAM_STATUSES.join(', ')}`,
      }),
      reason: text(MAX_REASON).optional(),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('StatusRequest', {
    description: 'enabled: deliver; paused: hold SETs; disabled: drop them.',
  })

export const AddSubjectRequest = z
  .strictObject(
    {
      stream_id: streamId,
      subject: subjectMember,
      verified: z.boolean({ error: 'must be a boolean' }).optional(),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('AddSubjectRequest')

export const RemoveSubjectRequest = z
  .strictObject(
    { stream_id: streamId, subject: subjectMember },
    { error: 'request body must be a JSON object' },
  )
  .openapi('RemoveSubjectRequest')

export const VerificationRequest = z
  .strictObject(
    {
      stream_id: streamId,
      state: text(MAX_STATE)
        .optional()
        .openapi({ description: 'Echoed in the verification event.' }),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('VerificationRequest')

export const SUBJECT_EXAMPLE = {
  stream_id: EXAMPLE_ID,
  subject: { format: 'email', email: 'alice@example.com' },
}
export const EXAMPLES = { streamId: EXAMPLE_ID, push: EXAMPLE_PUSH, eventType: SESSION_REVOKED }
export { identifier }
