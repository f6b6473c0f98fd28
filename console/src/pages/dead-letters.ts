/** Dead letters: SETs given up on, with why; inspect one, redrive one or all shown. */
import { api, errorText } from '../api.js'
import { fmtTime, h, messages, replace } from '../dom.js'
import type { Page } from '../routes.js'
import { handoff } from '../state.js'

interface DeadLetter {
  id: string
  stream_id: string
  jti: string
  txn: string
  type: string
  set: string
  reason: string
  status?: number
  err?: string
  description?: string
  attempts: number
  failed_at: number
}

export const deadLettersPage: Page = {
  title: 'Dead letters',
  render(main) {
    const msg = messages()
    const body = h('div', {}, h('p', {}, 'Loading…'))
    const redrive = async (ids: string[]) => {
      try {
        const res = await api<{ redriven: string[]; skipped: { id: string; reason: string }[] }>(
          'POST',
          '/admin/dead-letters/redrive',
          { ids },
        )
        const skipped = res.skipped.map((s) => `${s.id}: ${s.reason}`).join('; ')
        msg.show(`Redriven: ${res.redriven.length}.${skipped ? ` Skipped: ${skipped}.` : ''}`)
      } catch (err) {
        msg.show(errorText(err), 'error')
      }
      await load()
    }
    const load = async () => {
      try {
        const { dead_letters: letters } = await api<{ dead_letters: DeadLetter[] }>(
          'GET',
          '/admin/dead-letters?limit=100',
        )
        if (letters.length === 0) return replace(body, h('p', {}, 'No dead letters.'))
        replace(
          body,
          h(
            'p',
            {},
            h(
              'button',
              { type: 'button', onclick: () => redrive(letters.map((l) => l.id)) },
              `Redrive all ${letters.length} shown`,
            ),
          ),
          h(
            'table',
            { class: 'responsive' },
            h(
              'caption',
              {},
              `${letters.length} dead letter${letters.length === 1 ? '' : 's'} (newest first)`,
            ),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Failed at', 'Stream', 'Event type', 'Reason', 'Attempts', 'Actions'].map((t) =>
                  h('th', { scope: 'col' }, t),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              letters.map((l) =>
                h(
                  'tr',
                  { 'data-dead-letter-id': l.id },
                  h('td', { 'data-label': 'Failed at' }, fmtTime(l.failed_at)),
                  h(
                    'td',
                    { 'data-label': 'Stream' },
                    h(
                      'a',
                      { href: `#/streams/${encodeURIComponent(l.stream_id)}`, class: 'id' },
                      l.stream_id,
                    ),
                  ),
                  h('td', { 'data-label': 'Event type' }, l.type.split('/').pop()!),
                  h(
                    'td',
                    { 'data-label': 'Reason' },
                    h(
                      'details',
                      {},
                      h('summary', {}, l.reason),
                      h(
                        'dl',
                        { class: 'facts' },
                        [
                          ['id', l.id],
                          ['jti', l.jti],
                          ['txn', l.txn],
                          ['HTTP status', l.status ? String(l.status) : '—'],
                          ['err', [l.err, l.description].filter(Boolean).join(': ') || '—'],
                        ].map(([k, v]) => h('div', {}, h('dt', {}, k!), h('dd', {}, v!))),
                      ),
                    ),
                  ),
                  h('td', { 'data-label': 'Attempts', class: 'num' }, String(l.attempts)),
                  h(
                    'td',
                    { 'data-label': 'Actions' },
                    h(
                      'div',
                      { class: 'actions' },
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'secondary',
                          'aria-label': `Inspect dead letter ${l.id}`,
                          onclick: () => ((handoff.set = l.set), (location.hash = '#/inspect')),
                        },
                        'Inspect',
                      ),
                      h(
                        'button',
                        {
                          type: 'button',
                          'aria-label': `Redrive dead letter ${l.id}`,
                          onclick: () => redrive([l.id]),
                        },
                        'Redrive',
                      ),
                    ),
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
    replace(
      main,
      h('h1', {}, 'Dead letters'),
      h(
        'p',
        { class: 'lede' },
        'SETs the broker gave up on: refused by the receiver for good, or older than the maximum delivery age.',
      ),
      msg.el,
      body,
    )
    void load()
  },
}
