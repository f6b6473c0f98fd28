/**
 * `ssf-broker` command line: parses arguments (node:util parseArgs, strict) and runs one command.
 * `serve` (or no command) is answered with 'serve' so the caller starts the broker; every other command
 * is a client of a running broker over its HTTP API. Usage errors exit 2 with the usage printed.
 */
import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { USAGE } from './usage.js'
import { table } from './table.js'
import { BrokerClient, CliError } from './http.js'

export interface CliIo {
  env: Record<string, string | undefined>
  out(text: string): void
  err(text: string): void
  /** Calls back when the user interrupts (Ctrl-C); `tail` stops then. */
  onInterrupt?(callback: () => void): void
}

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>
const COMMON: Options = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
}

/** What an option or a run of short options looks like; any other word starting with a dash is an argument. */
const OPTION_LIKE = /^--?[a-z][a-z-]*(=.*)?$/

/**
 * Ids are base64url and may start with a dash (`--stream -Xa9…`, `streams status -Xa9… enabled`), which
 * parseArgs would take for an option: such words are passed through as placeholders and put back after
 * (a placeholder starts with NUL, which no command-line argument can hold).
 */
function parse(args: string[], options: Options = {}): Parsed {
  const held: string[] = []
  const hold = (arg: string) =>
    arg.startsWith('-') && arg !== '--' && !OPTION_LIKE.test(arg)
      ? `\u0000${held.push(arg) - 1}`
      : arg
  const putBack = <T>(v: T) =>
    typeof v === 'string' && v.startsWith('\u0000') ? held[Number(v.slice(1))]! : v
  try {
    const { values, positionals } = parseArgs({
      args: args.map(hold),
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    })
    for (const [name, v] of Object.entries(values))
      values[name] = Array.isArray(v) ? v.map(putBack) : putBack(v)
    return { values: values as Parsed['values'], positionals: positionals.map(putBack) }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

function required(p: Parsed, name: string): string {
  const v = str(p.values[name])
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`)
  return v
}

function positiveInt(p: Parsed, name: string): number | undefined {
  const v = str(p.values[name])
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new UsageError(`--${name} must be a positive whole number`)
  return Number(v)
}

function noPositionals(p: Parsed, count = 0): void {
  if (p.positionals.length > count)
    throw new UsageError(`unexpected argument "${p.positionals[count]}"`)
}

function client(p: Parsed, io: CliIo): BrokerClient {
  const url = str(p.values.url) ?? io.env.SSF_BROKER_URL ?? 'http://localhost:8080'
  try {
    new URL(url)
  } catch {
    throw new UsageError(`--url: not a URL: ${url}`)
  }
  return new BrokerClient(url, str(p.values.token) ?? io.env.SSF_BROKER_TOKEN)
}

const query = (params: Record<string, string | number | undefined>) => {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

const time = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString())
const seconds = (s: number | undefined) => (s === undefined ? '' : new Date(s * 1000).toISOString())
const keyStatus = (k: {
  active?: boolean
  pending?: boolean
  retired_at?: number
  activates_at?: number
}) =>
  k.active
    ? 'active'
    : k.pending
      ? `signs from ${seconds(k.activates_at)}`
      : k.retired_at !== undefined
        ? 'retired'
        : ''
const method = (urn: string) =>
  urn === 'urn:ietf:rfc:8935' ? 'push' : urn === 'urn:ietf:rfc:8936' ? 'poll' : urn

function subjectArg(raw: string): unknown {
  if (raw.startsWith('email:')) return { format: 'email', email: raw.slice('email:'.length) }
  try {
    return JSON.parse(raw)
  } catch {
    throw new UsageError(
      '--subject must be subject JSON such as {"format":"email","email":"a@example.com"}, or email:ADDRESS',
    )
  }
}

type Command = (p: Parsed, io: CliIo) => Promise<number>

const print = (io: CliIo, p: Parsed, json: unknown, human: () => string) =>
  io.out(p.values.json ? `${JSON.stringify(json, null, 2)}\n` : human())

const COMMANDS: Record<string, { options?: Options; run: Command }> = {
  emit: {
    options: {
      type: { type: 'string' },
      subject: { type: 'string' },
      event: { type: 'string' },
      txn: { type: 'string' },
    },
    async run(p, io) {
      noPositionals(p)
      const body: Record<string, unknown> = {
        type: required(p, 'type'),
        subject: subjectArg(required(p, 'subject')),
      }
      const event = str(p.values.event)
      if (event !== undefined) {
        try {
          body.event = JSON.parse(event)
        } catch {
          throw new UsageError('--event must be JSON')
        }
      }
      const txn = str(p.values.txn)
      if (txn !== undefined) body.txn = txn
      const res = await client(p, io).json<{ txn: string }>('POST', '/events', body)
      io.out(`${JSON.stringify({ txn: res.txn })}\n`)
      return 0
    },
  },

  verify: {
    options: {
      issuer: { type: 'string' },
      audience: { type: 'string' },
      'allow-insecure': { type: 'boolean' },
    },
    async run(p, io) {
      const issuer = required(p, 'issuer')
      const audience = required(p, 'audience')
      if (p.positionals.length !== 1) throw new UsageError('verify takes exactly one SET')
      // Loaded only here: the other commands start faster without the receiver SDK.
      const { createReceiver, isReceiverError } = await import('../receiver/index.js')
      let receiver
      try {
        receiver = createReceiver({
          issuer,
          audience,
          allowInsecureIssuer: p.values['allow-insecure'] === true,
        })
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
      try {
        const set = await receiver.verify(p.positionals[0]!.trim())
        print(
          io,
          p,
          { valid: true, header: set.header, claims: set.claims },
          () =>
            `valid SET\n${JSON.stringify({ header: set.header, claims: set.claims }, null, 2)}\n`,
        )
        return 0
      } catch (err) {
        const code = isReceiverError(err) ? err.code : 'error'
        print(
          io,
          p,
          { valid: false, error: code, message: (err as Error).message },
          () => `invalid SET: ${code}: ${(err as Error).message}\n`,
        )
        return 1
      }
    },
  },

  'streams list': {
    options: {
      status: { type: 'string' },
      client: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json<{ streams: any[]; next_cursor?: string }>(
        'GET',
        `/admin/streams${query({ status: str(p.values.status), client_id: str(p.values.client), limit: positiveInt(p, 'limit'), cursor: str(p.values.cursor) })}`,
      )
      print(
        io,
        p,
        res,
        () =>
          table(
            ['stream_id', 'client_id', 'status', 'method', 'backlog', 'reason'],
            res.streams.map((s) => [
              s.stream_id,
              s.client_id,
              s.status,
              method(s.delivery_method),
              s.backlog,
              s.reason,
            ]),
          ) + (res.next_cursor ? `more: --cursor ${res.next_cursor}\n` : ''),
      )
      return 0
    },
  },

  'streams status': {
    options: { reason: { type: 'string' } },
    async run(p, io) {
      const [id, status] = p.positionals
      if (id === undefined || status === undefined || p.positionals.length > 2)
        throw new UsageError('streams status takes a stream id and a status')
      if (!['enabled', 'paused', 'disabled'].includes(status))
        throw new UsageError('status must be enabled, paused or disabled')
      const reason = str(p.values.reason)
      const res = await client(p, io).json(
        'POST',
        `/admin/streams/${encodeURIComponent(id)}/status`,
        { status, ...(reason !== undefined ? { reason } : {}) },
      )
      print(
        io,
        p,
        res,
        () => `${res.stream_id}: ${res.status}${res.reason ? ` (${res.reason})` : ''}\n`,
      )
      return 0
    },
  },

  'clients create': {
    options: { name: { type: 'string' }, role: { type: 'string', multiple: true } },
    async run(p, io) {
      noPositionals(p)
      const roles = ((p.values.role as string[] | undefined) ?? [])
        .flatMap((r) => r.split(','))
        .filter(Boolean)
      if (roles.length === 0)
        throw new UsageError('--role is required (receiver, emitter or admin; repeat for several)')
      const res = await client(p, io).json('POST', '/admin/clients', {
        name: required(p, 'name'),
        roles,
      })
      print(
        io,
        p,
        res,
        () =>
          `${table(['client_id', 'name', 'roles', 'audience'], [[res.client_id, res.name, res.roles.join(','), res.audience]])}token (shown once): ${res.token}\n`,
      )
      return 0
    },
  },

  'clients list': {
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json<{ clients: any[] }>('GET', '/admin/clients')
      print(io, p, res, () =>
        table(
          ['client_id', 'name', 'roles', 'audience', 'created_at'],
          res.clients.map((c) => [
            c.client_id,
            c.name,
            c.roles?.join(','),
            c.audience,
            seconds(c.created_at),
          ]),
        ),
      )
      return 0
    },
  },

  'keys list': {
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json<{ keys: any[] }>('GET', '/admin/keys')
      print(io, p, res, () =>
        table(
          ['kid', 'alg', 'status', 'created_at'],
          res.keys.map((k) => [k.kid, k.alg, keyStatus(k), seconds(k.created_at)]),
        ),
      )
      return 0
    },
  },

  'keys rotate': {
    options: { immediate: { type: 'boolean' } },
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json<{ rotated: unknown; keys: any[] }>(
        'POST',
        '/admin/keys/rotate',
        p.values.immediate === true ? { immediate: true } : {},
      )
      print(
        io,
        p,
        res,
        () =>
          `rotated\n${table(
            ['kid', 'alg', 'status', 'created_at'],
            res.keys.map((k) => [k.kid, k.alg, keyStatus(k), seconds(k.created_at)]),
          )}`,
      )
      return 0
    },
  },

  'dead-letters list': {
    options: { stream: { type: 'string' }, limit: { type: 'string' } },
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json<{ dead_letters: any[] }>(
        'GET',
        `/admin/dead-letters${query({ stream_id: str(p.values.stream), limit: positiveInt(p, 'limit') })}`,
      )
      print(io, p, res, () =>
        table(
          ['id', 'stream_id', 'jti', 'attempts', 'status', 'reason', 'failed_at'],
          res.dead_letters.map((d) => [
            d.id,
            d.stream_id,
            d.jti,
            d.attempts,
            d.status,
            d.reason,
            time(d.failed_at),
          ]),
        ),
      )
      return 0
    },
  },

  'dead-letters redrive': {
    options: { all: { type: 'boolean' }, stream: { type: 'string' } },
    async run(p, io) {
      const all = p.values.all === true
      if (all === p.positionals.length > 0)
        throw new UsageError('dead-letters redrive takes dead-letter ids or --all (not both)')
      const stream = str(p.values.stream)
      const body = {
        ...(all ? {} : { ids: p.positionals }),
        ...(stream !== undefined ? { stream_id: stream } : {}),
      }
      const res = await client(p, io).json<{
        redriven: string[]
        skipped: { id: string; reason: string }[]
      }>('POST', '/admin/dead-letters/redrive', body)
      print(
        io,
        p,
        res,
        () =>
          `redriven: ${res.redriven.length}${
            res.skipped.length
              ? `\n${table(
                  ['skipped', 'reason'],
                  res.skipped.map((s) => [s.id, s.reason]),
                )}`
              : '\n'
          }`,
      )
      return 0
    },
  },

  'audit verify': {
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).json('GET', '/admin/audit/verify')
      print(io, p, res, () =>
        res.ok
          ? `ok: ${res.checked} records; head ${res.head?.seq}:${res.head?.hash}\n`
          : `broken at record ${res.brokenAt}: ${res.reason} (${res.checked} records verified before it)\n`,
      )
      return res.ok ? 0 : 1
    },
  },

  'audit export': {
    options: { txn: { type: 'string' } },
    async run(p, io) {
      noPositionals(p)
      const res = await client(p, io).raw(
        'GET',
        `/admin/audit${query({ format: 'jsonl', txn: str(p.values.txn) })}`,
      )
      if (!res.ok)
        throw new CliError(
          `GET /admin/audit failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`,
        )
      const reader = res.body!.getReader()
      const decoder = new TextDecoder()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        io.out(decoder.decode(value, { stream: true }))
      }
      return 0
    },
  },

  tail: {
    options: { stream: { type: 'string' }, count: { type: 'string' } },
    async run(p, io) {
      noPositionals(p)
      const count = positiveInt(p, 'count')
      const res = await client(p, io).raw(
        'GET',
        `/admin/activity${query({ stream_id: str(p.values.stream) })}`,
        undefined,
        { accept: 'text/event-stream' },
      )
      if (!res.ok)
        throw new CliError(
          `GET /admin/activity failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`,
        )
      const reader = res.body!.getReader()
      io.onInterrupt?.(() => void reader.cancel().catch(() => {}))
      const decoder = new TextDecoder()
      let buffer = ''
      let seen = 0
      if (!p.values.json)
        io.out(table(['time', 'event', 'stream_id', 'jti', 'outcome', 'status', 'latency_ms'], []))
      for (;;) {
        const { value, done } = await reader
          .read()
          .catch(() => ({ value: undefined, done: true as const }))
        if (done) return 0
        buffer += decoder.decode(value, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const name = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (!name || !data) continue
          const e = JSON.parse(data)
          if (p.values.json) io.out(`${JSON.stringify({ event: name, ...e })}\n`)
          else {
            const outcome =
              name === 'delivered'
                ? 'delivered'
                : name === 'failed'
                  ? e.outcome
                  : `dropped ${e.count}`
            io.out(
              `${[time(e.at), name, e.stream_id, e.jti ?? '', outcome, e.status ?? '', e.latency_ms ?? e.push_ms ?? ''].join('  ')}\n`,
            )
          }
          if (count !== undefined && ++seen >= count) {
            await reader.cancel().catch(() => {})
            return 0
          }
        }
      }
    },
  },
}

const GROUPS = new Set(['streams', 'clients', 'keys', 'dead-letters', 'audit'])

/** Runs the command line; 'serve' means: start the broker. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | 'serve'> {
  const args = [...argv]
  if (args.length === 0) return 'serve'
  const first = args[0]!
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(USAGE)
    return 0
  }
  if (first === '--version' || first === '-v') {
    io.out(`${version()}\n`)
    return 0
  }
  try {
    if (first === 'serve') {
      const p = parse(args.slice(1), {})
      if (p.values.help) {
        io.out(USAGE)
        return 0
      }
      noPositionals(p)
      return 'serve'
    }
    const name = GROUPS.has(first) ? `${first} ${args[1] ?? ''}`.trim() : first
    const command = COMMANDS[name]
    if (!command)
      throw new UsageError(
        GROUPS.has(first)
          ? `unknown ${first} command "${args[1] ?? ''}"`
          : `unknown command "${first}"`,
      )
    const p = parse(args.slice(name.split(' ').length), command.options)
    if (p.values.help) {
      io.out(USAGE)
      return 0
    }
    return await command.run(p, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`ssf-broker: ${err.message}\n\n${USAGE}`)
      return 2
    }
    if (err instanceof CliError) {
      io.err(`ssf-broker: ${err.message}\n`)
      return err.exitCode
    }
    throw err
  }
}
