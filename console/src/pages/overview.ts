/** Overview: rates and latency of this broker process, outbox depth, dead letters and readiness. */
import { api, errorText } from '../api.js'
import { fmtMs, h, replace } from '../dom.js'
import type { Page } from '../routes.js'
import type { Overview as Snapshot } from '../../../src/console/overview-types.js'

const REFRESH_MS = 5000
/** Rates are over the snapshots of the last minute. */
const WINDOW_MS = 60_000

const card = (label: string, value: string, note?: string) =>
  h(
    'div',
    { class: 'card' },
    h('dt', {}, label),
    h('dd', {}, h('span', { class: 'value' }, value), note ? h('small', {}, note) : undefined),
  )

export const overviewPage: Page = {
  title: 'Overview',
  render(main) {
    const grid = h('dl', { class: 'cards', 'aria-live': 'off' })
    const error = h('p', { role: 'alert', class: 'msg error' })
    replace(
      main,
      h('h1', {}, 'Overview'),
      h(
        'p',
        { class: 'lede' },
        'The broker process this console reached, refreshed every 5 seconds. Rates are over the last minute this page was open.',
      ),
      error,
      grid,
    )
    const history: Snapshot[] = []
    let timer: ReturnType<typeof setTimeout> | undefined
    let stopped = false
    const rate = (now: Snapshot, key: 'ingested_total' | 'delivered_total') => {
      const first = history[0]!
      const seconds = (now.at - first.at) / 1000
      return seconds <= 0 ? '—' : `${((now[key] - first[key]) / seconds).toFixed(1)}/s`
    }
    const load = async () => {
      try {
        const s = await api<Snapshot>('GET', '/admin/overview')
        history.push(s)
        while (history.length > 1 && s.at - history[0]!.at > WINDOW_MS) history.shift()
        error.textContent = ''
        const checks = Object.entries(s.checks)
          .map(([name, c]) => `${name} ${c.ok ? 'ok' : `failing${c.error ? `: ${c.error}` : ''}`}`)
          .join(', ')
        replace(
          grid,
          card('Ingest rate', rate(s, 'ingested_total'), `${s.ingested_total} events since start`),
          card(
            'Delivery rate',
            rate(s, 'delivered_total'),
            `${s.delivered_total} delivered, ${s.failed_total} failed, ${s.retries_total} retries`,
          ),
          card(
            'Event→delivery p50',
            fmtMs(s.delivery_latency_ms.p50),
            `${s.delivery_latency_ms.count} deliveries`,
          ),
          card('Event→delivery p99', fmtMs(s.delivery_latency_ms.p99)),
          card('Outbox depth', String(s.outbox_sets), 'SETs waiting, all streams'),
          h(
            'div',
            { class: 'card' },
            h('dt', {}, 'Dead letters'),
            h(
              'dd',
              {},
              h('span', { class: 'value' }, String(s.dead_letters)),
              h('small', {}, h('a', { href: '#/dead-letters' }, 'list and redrive')),
            ),
          ),
          card('Readiness', s.ready ? 'ready' : 'unavailable', checks),
          card(
            'Streams',
            `${s.streams.enabled ?? 0} enabled`,
            `${s.streams.paused ?? 0} paused, ${s.streams.disabled ?? 0} disabled`,
          ),
        )
      } catch (err) {
        error.textContent = `Could not load the overview: ${errorText(err)}`
      }
      if (!stopped) timer = setTimeout(load, REFRESH_MS)
    }
    void load()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  },
}
