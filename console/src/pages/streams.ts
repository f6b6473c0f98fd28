/** Streams: every stream with its state and last delivery; pause, enable, disable. A stream's deliveries. */
import { api, errorText, query } from '../api.js'
import { fmtMs, fmtTime, h, messages, replace, field } from '../dom.js'
import type { Page } from '../routes.js'

interface AdminStream {
  stream_id: string
  client_id: string
  status: 'enabled' | 'paused' | 'disabled'
  reason?: string
  delivery_method: string
  endpoint_url?: string
  backlog: number
  description?: string
}

interface Delivery {
  jti: string
  at: number
  outcome: string
  attempt: number
  status?: number
  latency_ms?: number
  error?: string
  description?: string
}

const METHODS: Record<string, string> = { 'urn:ietf:rfc:8935': 'push', 'urn:ietf:rfc:8936': 'poll' }
const ACTIONS = [
  { status: 'paused', label: 'Pause' },
  { status: 'enabled', label: 'Enable' },
  { status: 'disabled', label: 'Disable' },
] as const

async function listStreams(): Promise<AdminStream[]> {
  const all: AdminStream[] = []
  let cursor: string | undefined
  do {
    const page = await api<{ streams: AdminStream[]; next_cursor?: string }>(
      'GET',
      `/admin/streams${query({ limit: '1000', cursor })}`,
    )
    all.push(...page.streams)
    cursor = page.next_cursor
  } while (cursor && all.length < 5000)
  return all
}

const lastDelivery = async (id: string) =>
  (
    await api<{ deliveries: Delivery[] }>(
      'GET',
      `/admin/streams/${encodeURIComponent(id)}/deliveries?limit=1`,
    )
  ).deliveries[0]

function deliveryText(d: Delivery | undefined): string {
  if (!d) return 'none yet'
  return `${d.outcome}${d.status ? ` (HTTP ${d.status})` : ''} · ${fmtTime(d.at)}`
}

/** The pause / enable / disable buttons of one stream. */
function statusButtons(
  stream: AdminStream,
  reason: () => string,
  done: (text: string, kind?: 'error' | 'ok') => void,
): HTMLElement {
  return h(
    'div',
    { class: 'actions' },
    ACTIONS.map((a) =>
      h(
        'button',
        {
          type: 'button',
          class: a.status === 'disabled' ? 'danger' : 'secondary',
          disabled: stream.status === a.status,
          'aria-label': `${a.label} stream ${stream.stream_id}`,
          onclick: async () => {
            try {
              const r = reason().trim()
              const res = await api<{ status: string }>(
                'POST',
                `/admin/streams/${encodeURIComponent(stream.stream_id)}/status`,
                { status: a.status, ...(r ? { reason: r } : {}) },
              )
              done(`Stream ${stream.stream_id} is now ${res.status}.`)
            } catch (err) {
              done(errorText(err), 'error')
            }
          },
        },
        a.label,
      ),
    ),
  )
}

export const streamsPage: Page = {
  title: 'Streams',
  render(main) {
    const msg = messages()
    const reason = h('input', { type: 'text', maxlength: '1024' })
    const body = h('div', {}, h('p', {}, 'Loading…'))
    replace(
      main,
      h('h1', {}, 'Streams'),
      field(
        'Reason for a status change (optional)',
        reason,
        'Sent with pause, enable or disable, and shown to the receiver.',
      ),
      msg.el,
      body,
    )
    const load = async () => {
      try {
        const streams = await listStreams()
        const last = await Promise.all(
          streams.map((s) => lastDelivery(s.stream_id).catch(() => undefined)),
        )
        if (streams.length === 0)
          return replace(
            body,
            h('p', {}, 'No streams yet. A receiver creates one with POST /ssf/streams.'),
          )
        replace(
          body,
          h(
            'table',
            { class: 'responsive' },
            h('caption', {}, `${streams.length} stream${streams.length === 1 ? '' : 's'}`),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                [
                  'Stream',
                  'Client',
                  'Status',
                  'Reason',
                  'Method',
                  'Backlog',
                  'Last delivery',
                  'Actions',
                ].map((t) => h('th', { scope: 'col' }, t)),
              ),
            ),
            h(
              'tbody',
              {},
              streams.map((s, i) =>
                h(
                  'tr',
                  { 'data-stream-id': s.stream_id },
                  h(
                    'td',
                    { 'data-label': 'Stream' },
                    h(
                      'a',
                      { href: `#/streams/${encodeURIComponent(s.stream_id)}`, class: 'id' },
                      s.stream_id,
                    ),
                    s.description ? h('small', {}, s.description) : undefined,
                  ),
                  h('td', { 'data-label': 'Client' }, h('span', { class: 'id' }, s.client_id)),
                  h(
                    'td',
                    { 'data-label': 'Status' },
                    h('span', { class: `pill ${s.status}` }, s.status),
                  ),
                  h('td', { 'data-label': 'Reason' }, s.reason ?? ''),
                  h(
                    'td',
                    { 'data-label': 'Method' },
                    METHODS[s.delivery_method] ?? s.delivery_method,
                  ),
                  h('td', { 'data-label': 'Backlog', class: 'num' }, String(s.backlog)),
                  h('td', { 'data-label': 'Last delivery' }, deliveryText(last[i])),
                  h(
                    'td',
                    { 'data-label': 'Actions' },
                    statusButtons(
                      s,
                      () => reason.value,
                      (text, kind) => (msg.show(text, kind), void load()),
                    ),
                  ),
                ),
              ),
            ),
          ),
        )
      } catch (err) {
        msg.show(`Could not list streams: ${errorText(err)}`, 'error')
      }
    }
    void load()
  },
}

export const streamPage: Page = {
  title: 'Stream',
  render(main, { id }) {
    const streamId = id!
    const msg = messages()
    const info = h('div', {})
    const table = h('div', {}, h('p', {}, 'Loading…'))
    replace(
      main,
      h('p', {}, h('a', { href: '#/streams' }, '← Streams')),
      h('h1', {}, 'Stream ', h('span', { class: 'id' }, streamId)),
      msg.el,
      info,
      h('h2', {}, 'Recent deliveries'),
      table,
    )
    const load = async () => {
      try {
        const [streams, log] = await Promise.all([
          listStreams(),
          api<{ pending: number; deliveries: Delivery[] }>(
            'GET',
            `/admin/streams/${encodeURIComponent(streamId)}/deliveries?limit=100`,
          ),
        ])
        const s = streams.find((x) => x.stream_id === streamId)
        if (s) {
          replace(
            info,
            h(
              'dl',
              { class: 'facts' },
              [
                ['Client', s.client_id],
                ['Status', s.status],
                ['Reason', s.reason ?? '—'],
                ['Method', METHODS[s.delivery_method] ?? s.delivery_method],
                ['Endpoint', s.endpoint_url ?? '—'],
                ['Backlog', String(s.backlog)],
                ['Pending', String(log.pending)],
              ].map(([k, v]) => h('div', {}, h('dt', {}, k!), h('dd', {}, v!))),
            ),
            statusButtons(
              s,
              () => '',
              (text, kind) => (msg.show(text, kind), void load()),
            ),
            h(
              'p',
              {},
              h(
                'a',
                { href: `#/audit?stream_id=${encodeURIComponent(streamId)}` },
                'Audit records of this stream',
              ),
            ),
          )
        }
        replace(
          table,
          log.deliveries.length === 0
            ? h('p', {}, 'No delivery recorded yet.')
            : h(
                'table',
                { class: 'responsive' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    ['Time', 'jti', 'Outcome', 'HTTP', 'Latency', 'Attempt', 'Error'].map((t) =>
                      h('th', { scope: 'col' }, t),
                    ),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  log.deliveries.map((d) =>
                    h(
                      'tr',
                      {},
                      h('td', { 'data-label': 'Time' }, fmtTime(d.at)),
                      h('td', { 'data-label': 'jti' }, h('span', { class: 'id' }, d.jti)),
                      h(
                        'td',
                        { 'data-label': 'Outcome' },
                        h('span', { class: `pill ${d.outcome}` }, d.outcome),
                      ),
                      h('td', { 'data-label': 'HTTP' }, d.status ? String(d.status) : '—'),
                      h('td', { 'data-label': 'Latency', class: 'num' }, fmtMs(d.latency_ms)),
                      h('td', { 'data-label': 'Attempt', class: 'num' }, String(d.attempt)),
                      h(
                        'td',
                        { 'data-label': 'Error' },
                        [d.error, d.description].filter(Boolean).join(': '),
                      ),
                    ),
                  ),
                ),
              ),
        )
      } catch (err) {
        msg.show(errorText(err), 'error')
      }
    }
    void load()
  },
}
