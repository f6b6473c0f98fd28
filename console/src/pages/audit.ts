/**
 * Audit: search the audit trail by txn, subject, agent or stream; each txn as a timeline (ingested →
 * derived for agents → queued per stream → delivered or failed, in milliseconds from the ingest), and the
 * hash chain's status.
 */
import { api, errorText, query } from '../api.js'
import { field, fmtMs, fmtTime, h, messages, replace, subjectLabel } from '../dom.js'
import type { Page } from '../routes.js'

type AuditRecord = {
  id: string
  seq: number
  at: number
  kind: string
  txn?: string
  stream_id?: string
  jti?: string
  agent_id?: string
  subject?: unknown
} & Record<string, any>

function timeline(txn: string, records: AuditRecord[]): HTMLElement {
  const sorted = [...records].sort((a, b) => a.at - b.at || a.seq - b.seq)
  const ingested = sorted.find((r) => r.kind === 'event.ingested')
  const t0 = ingested?.at ?? sorted[0]!.at
  const plus = (at: number) => h('span', { class: 'offset' }, `+${at - t0} ms`)
  const steps: { at: number; el: HTMLElement }[] = []
  const step = (at: number, el: HTMLElement) => steps.push({ at, el })
  if (ingested)
    step(
      ingested.at,
      h(
        'li',
        { class: 'step ingested' },
        plus(ingested.at),
        h('span', { class: 'badge ingested' }, 'ingested'),
        ` ${String(ingested.type).split('/').pop()} · subject ${subjectLabel(ingested.subject)} · by ${ingested.client_id ?? '?'}`,
      ),
    )
  for (const d of sorted.filter((r) => r.kind === 'event.derived')) {
    const agentSubject = (d.subject as Record<string, unknown> | undefined)?.agent
    step(
      d.at,
      h(
        'li',
        { class: 'step derived' },
        plus(d.at),
        h('span', { class: 'badge derived' }, 'derived'),
        ` for agent ${subjectLabel(agentSubject ?? d.agent_id)} `,
        h('span', { class: 'id' }, d.agent_id ?? ''),
      ),
    )
  }
  // One row per SET: the trail has one record per SET outcome, each saying when the SET was queued
  // (`queued_at`); trails of earlier versions also hold a `set.minted` record per SET.
  const outcomeKinds = ['delivery.attempt', 'poll.ack', 'poll.set_error']
  const sets = new Map<string, { stream_id: string; at: number }>()
  for (const r of sorted) {
    if (!r.jti || !r.stream_id || (r.kind !== 'set.minted' && !outcomeKinds.includes(r.kind)))
      continue
    const at = r.kind === 'set.minted' ? r.at : typeof r.queued_at === 'number' ? r.queued_at : r.at
    const known = sets.get(r.jti)
    if (!known || at < known.at) sets.set(r.jti, { stream_id: r.stream_id, at })
  }
  for (const [jti, m] of sets) {
    const attempts = sorted.filter((r) => r.jti === jti && outcomeKinds.includes(r.kind))
    step(
      m.at,
      h(
        'li',
        { class: 'step minted', 'data-stream-id': m.stream_id },
        plus(m.at),
        h('span', { class: 'badge minted' }, 'minted'),
        ' for stream ',
        h('a', { href: `#/streams/${encodeURIComponent(m.stream_id)}`, class: 'id' }, m.stream_id),
        attempts.length === 0
          ? h('span', { class: 'pending' }, ' → not delivered yet')
          : h(
              'ol',
              { class: 'attempts' },
              attempts.map((a) => {
                const outcome =
                  a.kind === 'poll.ack'
                    ? 'delivered'
                    : a.kind === 'poll.set_error'
                      ? 'failed'
                      : String(a.outcome)
                const ok = outcome === 'delivered'
                return h(
                  'li',
                  {},
                  plus(a.at),
                  h('span', { class: `badge ${ok ? 'delivered' : 'failed'}` }, outcome),
                  ` ${a.at - t0} ms after the event`,
                  a.status ? ` · HTTP ${a.status}` : '',
                  a.latency_ms !== undefined
                    ? ` · receiver answered in ${fmtMs(a.latency_ms)}`
                    : '',
                  a.error || a.err ? ` · ${a.error ?? a.err}` : '',
                )
              }),
            ),
      ),
    )
  }
  const others = sorted.filter(
    (r) =>
      ![
        'event.ingested',
        'event.derived',
        'set.minted',
        'delivery.attempt',
        'poll.ack',
        'poll.set_error',
      ].includes(r.kind),
  )
  for (const o of others)
    step(
      o.at,
      h(
        'li',
        { class: 'step' },
        plus(o.at),
        h('span', { class: 'badge' }, o.kind),
        o.agent_id ? ` agent ${o.agent_id}` : '',
        o.reason ? ` · ${o.reason}` : '',
      ),
    )
  return h(
    'section',
    { class: 'timeline', 'aria-label': `Timeline of txn ${txn}` },
    h('h2', {}, 'txn ', h('span', { class: 'id' }, txn), h('small', {}, ` · ${fmtTime(t0)}`)),
    h(
      'ol',
      {},
      steps.sort((x, y) => x.at - y.at).map((s) => s.el),
    ),
  )
}

export const auditPage: Page = {
  title: 'Audit',
  render(main, { query: params }) {
    const txn = h('input', { id: 'audit-txn', type: 'text', value: params.get('txn') ?? '' })
    const subject = h('input', {
      id: 'audit-subject',
      type: 'text',
      class: 'mono',
      value: params.get('subject') ?? '',
      placeholder: '{"format":"email","email":"alice@example.com"}',
    })
    const agent = h('input', {
      id: 'audit-agent',
      type: 'text',
      value: params.get('agent_id') ?? '',
    })
    const stream = h('input', {
      id: 'audit-stream',
      type: 'text',
      value: params.get('stream_id') ?? '',
    })
    const chain = h('p', { class: 'chain', 'aria-live': 'polite' })
    const msg = messages()
    const results = h('div', {})
    const search = async () => {
      msg.clear()
      replace(results, h('p', {}, 'Searching…'))
      try {
        const q = query({
          txn: txn.value.trim(),
          subject: subject.value.trim(),
          agent_id: agent.value.trim(),
          stream_id: stream.value.trim(),
          limit: '1000',
        })
        const [page, verify] = await Promise.all([
          api<{ records: AuditRecord[]; next_cursor?: string }>('GET', `/admin/audit${q}`),
          api<{ ok: boolean; checked: number; brokenAt?: string; reason?: string }>(
            'GET',
            '/admin/audit/verify',
          ),
        ])
        chain.textContent = verify.ok
          ? `Hash chain intact: ${verify.checked} records checked.`
          : `Hash chain broken at ${verify.brokenAt}: ${verify.reason}`
        chain.className = `chain ${verify.ok ? 'ok' : 'bad'}`
        const byTxn = new Map<string, AuditRecord[]>()
        const loose: AuditRecord[] = []
        for (const r of page.records) {
          if (r.txn) byTxn.set(r.txn, [...(byTxn.get(r.txn) ?? []), r])
          else loose.push(r)
        }
        replace(
          results,
          h(
            'p',
            {},
            `${page.records.length} records${page.next_cursor ? ' (the newest 1000)' : ''}, ${byTxn.size} transaction${byTxn.size === 1 ? '' : 's'}.`,
          ),
          [...byTxn].map(([id, records]) => timeline(id, records)),
          loose.length
            ? h(
                'section',
                { 'aria-label': 'Other records' },
                h('h2', {}, 'Other records'),
                h(
                  'ul',
                  { class: 'plain' },
                  loose.map((r) =>
                    h(
                      'li',
                      {},
                      `${fmtTime(r.at)} · ${r.kind}${r.stream_id ? ` · stream ${r.stream_id}` : ''}${r.agent_id ? ` · agent ${r.agent_id}` : ''}${r.status ? ` · ${r.status}` : ''}${r.reason ? ` · ${r.reason}` : ''}`,
                    ),
                  ),
                ),
              )
            : undefined,
        )
      } catch (err) {
        replace(results)
        msg.show(errorText(err), 'error')
      }
    }
    const form = h(
      'form',
      { class: 'form inline', onsubmit: (e: Event) => (e.preventDefault(), void search()) },
      field('txn', txn),
      field('Subject', subject, 'JSON subject identifier'),
      field('Agent ID', agent),
      field('Stream ID', stream),
      h('button', { type: 'submit' }, 'Search'),
    )
    replace(main, h('h1', {}, 'Audit'), form, chain, msg.el, results)
    if ([...params.keys()].length > 0) void search()
  },
}
