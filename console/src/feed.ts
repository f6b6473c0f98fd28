/** The "Live feed" log beside every page: what the broker process does, newest first. */
import { h, replace } from './dom.js'
import { startLive, type LiveEvent } from './live.js'

const KEEP = 200

function entry(event: LiveEvent): HTMLElement {
  const d = event.data
  const time = new Date(typeof d.at === 'number' ? d.at : Date.now()).toISOString().slice(11, 23)
  const parts: (HTMLElement | string)[] = [h('span', { class: `badge ${event.name}` }, event.name)]
  if (typeof d.latency_ms === 'number')
    parts.push(h('strong', { class: 'latency' }, `${d.latency_ms} ms`))
  if (d.stream_id)
    parts.push(
      h(
        'span',
        {},
        'stream ',
        h('a', { href: `#/streams/${encodeURIComponent(d.stream_id)}`, class: 'id' }, d.stream_id),
      ),
    )
  if (event.name === 'failed')
    parts.push(
      h(
        'span',
        { class: 'outcome' },
        `${d.outcome}${d.status ? ` HTTP ${d.status}` : ''}: ${d.error ?? ''}`,
      ),
    )
  if (event.name === 'ingested' && d.type)
    parts.push(h('span', { class: 'type' }, String(d.type).split('/').pop()!))
  if (d.txn)
    parts.push(
      h(
        'span',
        {},
        'txn ',
        h('a', { href: `#/audit?txn=${encodeURIComponent(d.txn)}`, class: 'id' }, d.txn),
      ),
    )
  return h('li', { class: `entry ${event.name}` }, h('time', {}, time), ...parts)
}

export function mountLiveFeed(container: HTMLElement): () => void {
  const state = h('span', { class: 'state' }, 'connecting…')
  const list = h('ol', {
    role: 'log',
    'aria-label': 'Live feed',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    class: 'log',
  })
  const paused = h('input', { type: 'checkbox', id: 'feed-pause' })
  replace(
    container,
    h('div', { class: 'feed-head' }, h('h2', { id: 'feed-title' }, 'Live feed'), state),
    h(
      'div',
      { class: 'feed-tools' },
      paused,
      h('label', { for: 'feed-pause' }, 'Pause'),
      h(
        'button',
        { type: 'button', class: 'link', onclick: () => list.replaceChildren() },
        'Clear',
      ),
    ),
    list,
  )
  return startLive(
    (event) => {
      if (paused.checked) return
      list.prepend(entry(event))
      while (list.childElementCount > KEEP) list.lastElementChild!.remove()
    },
    (s) => (state.textContent = s),
  )
}
