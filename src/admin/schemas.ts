/**
 * Request and response bodies of the operator API (`/admin/...`), as zod schemas.
 */
import { ROLES, type Role } from '../auth/clients.js'
import { SIGNING_ALGS, type SigningAlg } from '../config/config.js'
import { identifier, limitQuery, text, z } from '../http/schema.js'
import { STREAM_STATUSES, type StreamStatus } from '../streams/model.js'

export const MAX_REDRIVE = 10_000
const MAX_REASON = 1024
const CLIENT_ID = 'c_7f3a9d2e41b8'
const STREAM_ID = '5f3c8a1e9b2d4c6f8a0b1c2d3e4f5a6b'

const statusEnum = (problem: string) =>
  z.enum(STREAM_STATUSES as [StreamStatus, ...StreamStatus[]], { error: problem })

export const ClientCreateRequest = z
  .strictObject(
    {
      name: text(200, 'required, a string of 1 to 200 characters')
        .refine((name) => name.trim() !== '', 'required, a string of 1 to 200 characters')
        .openapi({ description: 'For people.', example: 'Help desk' }),
      roles: z
        .array(
          z.string().refine((role) => ROLES.includes(role as Role), {
            error: (issue) =>
              `unknown role ${JSON.stringify(issue.input)}; roles are ${ROLES.join(', ')}`,
            abort: true,
          }),
          { error: `required, a non-empty array of ${ROLES.join(', ')}` },
        )
        .min(1, `required, a non-empty array of ${ROLES.join(', ')}`)
        .openapi({ description: `Any of ${ROLES.join(', ')}.`, example: ['receiver'] }),
      signing_alg: z
        .enum(SIGNING_ALGS as [SigningAlg, ...SigningAlg[]], {
          error: `must be one of ${SIGNING_ALGS.join(', ')}`,
        })
        .default('RS256')
        .openapi({ description: "Algorithm of the SETs minted for this client's streams." }),
      audience: identifier(512).optional().openapi({
        description: "The `aud` of SETs minted for this client's streams (default: the client id).",
      }),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('ClientCreateRequest', {
    example: { name: 'Help desk', roles: ['receiver'], signing_alg: 'ES256' },
  })

const clientShape = {
  client_id: z.string(),
  name: z.string(),
  roles: z.array(z.enum(ROLES as [Role, ...Role[]])),
  signing_alg: z.enum(SIGNING_ALGS as [SigningAlg, ...SigningAlg[]]),
  audience: z.string(),
  created_at: z.number().int().openapi({ description: 'Seconds since the epoch.' }),
}
const CLIENT_EXAMPLE = {
  client_id: CLIENT_ID,
  name: 'Help desk',
  roles: ['receiver'],
  signing_alg: 'ES256',
  audience: CLIENT_ID,
  created_at: 1767225600,
}

export const Client = z.object(clientShape).openapi('Client', { example: CLIENT_EXAMPLE })
export const CreatedClient = z
  .object({
    ...clientShape,
    token: z.string().openapi({ description: 'The bearer token; returned once, never again.' }),
  })
  .openapi('CreatedClient', {
    example: { ...CLIENT_EXAMPLE, token: `ssf_${CLIENT_ID}.Q2hhbmdlIG1l` },
  })
export const ClientList = z
  .object({ clients: z.array(Client) })
  .openapi({ example: { clients: [CLIENT_EXAMPLE] } })
export const ClientIdParams = z.object({
  client_id: z.string().openapi({ description: 'The client id.', example: CLIENT_ID }),
})

const Key = z
  .object({
    kid: z.string(),
    alg: z.enum(SIGNING_ALGS as [SigningAlg, ...SigningAlg[]]),
    created_at: z.number().int(),
    retired_at: z.number().int().optional(),
  })
  .openapi('SigningKey', {
    description: 'A signing key (never its private material).',
    example: { kid: 'k_3c9e1a7b5d20', alg: 'ES256', created_at: 1767225600 },
  })
export const KeyList = z
  .object({ keys: z.array(Key) })
  .openapi({ example: { keys: [{ kid: 'k_3c9e1a7b5d20', alg: 'ES256', created_at: 1767225600 }] } })

export const RotateRequest = z
  .strictObject(
    {
      algs: z
        .array(z.enum(SIGNING_ALGS as [SigningAlg, ...SigningAlg[]]), {
          error: `must be a non-empty array of ${SIGNING_ALGS.join(', ')}`,
        })
        .min(1, `must be a non-empty array of ${SIGNING_ALGS.join(', ')}`)
        .transform((algs) => [...new Set(algs)])
        .optional()
        .openapi({ description: 'The algorithms whose keys rotate (default: all).' }),
      immediate: z
        .boolean({
          error: 'must be a boolean (true rotates at once, without publishing the new key ahead)',
        })
        .optional()
        .openapi({
          description:
            'Sign with the new key at once, without publishing it ahead (key compromise).',
        }),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('RotateRequest')
export const Rotated = z.object({ rotated: z.array(z.looseObject({})), keys: z.array(Key) })

const millis = (problem: string) => z.string().regex(/^\d+$/, problem).transform(Number)

export const DeadLetterQuery = z.object({
  limit: limitQuery(1000, 'Page size, 1 to 1000 (default 100).'),
  before: millis(
    'must be a time in milliseconds (the failed_at of the last letter of the previous page)',
  )
    .optional()
    .openapi({ description: 'failed_at (ms) of the last letter of the previous page.' }),
  stream_id: z.string().optional().openapi({ description: "Only this stream's letters." }),
})

export const DeadLetter = z
  .object({
    id: z.string(),
    stream_id: z.string(),
    jti: z.string(),
    txn: z.string(),
    type: z.string(),
    set: z.string().openapi({ description: 'The compact SET, redriven unchanged (same jti).' }),
    reason: z.string(),
    status: z.number().int().optional(),
    err: z.string().optional(),
    description: z.string().optional(),
    attempts: z.number().int(),
    failed_at: z.number().int().openapi({ description: 'Milliseconds since the epoch.' }),
  })
  .openapi('DeadLetter')
export const DeadLetterList = z.object({ dead_letters: z.array(DeadLetter) }).openapi({
  example: {
    dead_letters: [
      {
        id: '1767225600123-0',
        stream_id: STREAM_ID,
        jti: '4d3559ec67504aaba65d40b0363faad8',
        txn: 'txn-8d0e',
        type: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
        set: 'eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiI0ZDM1In0.c2ln',
        reason: 'max age exceeded',
        status: 503,
        attempts: 9,
        failed_at: 1767225600123,
      },
    ],
  },
})

const idsProblem = `must be a non-empty array of dead-letter ids (at most ${MAX_REDRIVE})`
const redriveLimit = `must be a whole number from 1 to ${MAX_REDRIVE}`
export const RedriveRequest = z
  .strictObject(
    {
      ids: z
        .array(z.string({ error: idsProblem }).max(64, idsProblem), { error: idsProblem })
        .min(1, idsProblem)
        .max(MAX_REDRIVE, idsProblem)
        .optional()
        .openapi({ description: `Dead-letter ids (at most ${MAX_REDRIVE}).` }),
      stream_id: z.string({ error: 'must be a string' }).optional(),
      before: z
        .number({
          error: 'must be a time in milliseconds; letters that failed before it are redriven',
        })
        .int('must be a time in milliseconds; letters that failed before it are redriven')
        .min(0, 'must be a time in milliseconds; letters that failed before it are redriven')
        .optional(),
      limit: z
        .number({ error: redriveLimit })
        .int(redriveLimit)
        .min(1, redriveLimit)
        .max(MAX_REDRIVE, redriveLimit)
        .optional(),
    },
    { error: 'request body must be a JSON object' },
  )
  .superRefine((body, ctx) => {
    if (body.ids !== undefined && (body.before !== undefined || body.limit !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ids'],
        message: 'give either ids or a filter (stream_id, before, limit), not both',
      })
    }
  })
  .openapi('RedriveRequest')

export const RedriveResult = z.object({
  redriven: z.array(z.string()),
  skipped: z.array(z.object({ id: z.string(), reason: z.string() })),
  more: z
    .boolean()
    .optional()
    .openapi({ description: 'The filter filled its limit: repeat the request for the rest.' }),
})

export const StreamListQuery = z.strictObject({
  status: statusEnum(`must be one of ${STREAM_STATUSES.join(', ')}`).optional(),
  client_id: z.string().optional(),
  cursor: z.string().optional().openapi({ description: 'next_cursor of the previous page.' }),
  limit: limitQuery(1000, 'Page size, 1 to 1000 (default 100).'),
})

export const AdminStream = z
  .object({
    stream_id: z.string(),
    client_id: z.string(),
    status: statusEnum(''),
    reason: z.string().optional(),
    delivery_method: z.string(),
    endpoint_url: z.string().optional(),
    backlog: z.number().int().openapi({ description: 'SETs queued for the stream.' }),
    description: z.string().optional(),
    created_at: z.number().int(),
    updated_at: z.number().int(),
  })
  .openapi('AdminStream')
export const StreamPage = z
  .object({ streams: z.array(AdminStream), next_cursor: z.string().optional() })
  .openapi({
    example: {
      streams: [
        {
          stream_id: STREAM_ID,
          client_id: CLIENT_ID,
          status: 'enabled',
          delivery_method: 'urn:ietf:rfc:8935',
          endpoint_url: 'https://receiver.example/ssf/push',
          backlog: 0,
          created_at: 1767225600,
          updated_at: 1767225600,
        },
      ],
      next_cursor: STREAM_ID,
    },
  })

export const StreamIdParams = z.object({
  stream_id: z.string().openapi({ description: 'The stream id.', example: STREAM_ID }),
})

export const AdminStatusRequest = z
  .strictObject(
    {
      status: statusEnum(`must be one of ${STREAM_STATUSES.join(', ')}`),
      reason: text(MAX_REASON).optional(),
    },
    { error: 'request body must be a JSON object' },
  )
  .openapi('AdminStatusRequest')

export const ActivityQuery = z.object({
  stream_id: z.string().optional().openapi({ description: "Only this stream's outcomes." }),
})

export const DeliveriesQuery = z.object({
  limit: limitQuery(1000, 'Most outcomes, 1 to 1000 (default 100).'),
})
export const Deliveries = z
  .object({
    stream_id: z.string(),
    pending: z.number().int(),
    deliveries: z.array(
      z.object({
        jti: z.string(),
        at: z.number().int(),
        outcome: z.enum(['delivered', 'retry', 'failed', 'dead_letter', 'acked', 'set_error']),
        attempt: z.number().int(),
        status: z.number().int().optional(),
        latency_ms: z.number().optional(),
        error: z.string().optional(),
        description: z.string().optional(),
      }),
    ),
  })
  .openapi({
    example: {
      stream_id: STREAM_ID,
      pending: 0,
      deliveries: [
        {
          jti: '4d3559ec67504aaba65d40b0363faad8',
          at: 1767225600123,
          outcome: 'delivered',
          attempt: 1,
          status: 202,
          latency_ms: 11,
        },
      ],
    },
  })
