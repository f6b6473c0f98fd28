/**
 * Emit: post an event as `POST /events` does, from a template per event type. The API validates it; its
 * error text is shown as it is. `POST /events` needs the emitter role: the sign-in token is used when it
 * has it, otherwise an emitter token given here (kept in memory only, for this page).
 */
import { ApiError, api, errorText } from '../api.js'
import { field, h, messages, replace } from '../dom.js'
import type { Page } from '../routes.js'
import { TEMPLATES } from '../templates.js'
import { handoff } from '../state.js'

function parseJson(
  label: string,
  text: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: true, value: undefined }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (err) {
    return { ok: false, error: `${label}: not valid JSON (${(err as Error).message})` }
  }
}

export const emitPage: Page = {
  title: 'Emit',
  render(main) {
    const families = ['CAEP', 'RISC', 'Agent'] as const
    const type = h(
      'select',
      { id: 'emit-type' },
      families.map((f) =>
        h(
          'optgroup',
          { label: f === 'Agent' ? 'Agent (broker types)' : f },
          TEMPLATES.filter((t) => t.family === f).map((t) =>
            h('option', { value: t.type }, t.type),
          ),
        ),
      ),
    )
    const subject = h('textarea', {
      id: 'emit-subject',
      rows: '4',
      spellcheck: 'false',
      class: 'mono',
    })
    const payload = h('textarea', {
      id: 'emit-event',
      rows: '7',
      spellcheck: 'false',
      class: 'mono',
    })
    const txn = h('input', { id: 'emit-txn', type: 'text', maxlength: '256' })
    const token = h('input', {
      id: 'emit-token',
      type: 'text',
      class: 'secret',
      autocomplete: 'off',
      spellcheck: 'false',
    })
    token.value = handoff.emitterToken ?? ''
    const msg = messages()
    const result = h('div', { class: 'result' })
    const fill = () => {
      const t = TEMPLATES.find((x) => x.type === type.value)!
      subject.value = JSON.stringify(t.subject, null, 2)
      payload.value = JSON.stringify(t.event, null, 2)
    }
    type.addEventListener('change', fill)
    fill()
    const button = h('button', { type: 'submit' }, 'Emit')
    const form = h(
      'form',
      {
        class: 'form',
        onsubmit: async (e: Event) => {
          e.preventDefault()
          msg.clear()
          result.replaceChildren()
          const s = parseJson('subject', subject.value)
          const ev = parseJson('event', payload.value)
          if (!s.ok) return msg.show(s.error, 'error')
          if (!ev.ok) return msg.show(ev.error, 'error')
          const emitterToken = token.value.trim()
          handoff.emitterToken = emitterToken
          const body = {
            type: type.value,
            ...(s.value !== undefined ? { subject: s.value } : {}),
            ...(ev.value !== undefined ? { event: ev.value } : {}),
            ...(txn.value.trim() ? { txn: txn.value.trim() } : {}),
          }
          button.disabled = true
          try {
            const res = await api<{ txn: string }>(
              'POST',
              '/events',
              body,
              emitterToken ? { token: emitterToken } : {},
            )
            msg.show(`Accepted: ${type.value}`)
            replace(
              result,
              h(
                'p',
                {},
                'txn ',
                h('output', { class: 'id', 'aria-label': 'txn' }, res.txn),
                ' · ',
                h('a', { href: `#/audit?txn=${encodeURIComponent(res.txn)}` }, 'Audit timeline'),
              ),
            )
          } catch (err) {
            const hint =
              err instanceof ApiError && (err.status === 403 || err.status === 401)
                ? ' Give the token of a client with the emitter role.'
                : ''
            msg.show(`${errorText(err)}${hint}`, 'error')
          } finally {
            button.disabled = false
          }
        },
      },
      field('Event type', type, 'Choosing a type fills in a valid template.'),
      field('Subject', subject, 'A subject identifier (RFC 9493) as JSON.'),
      field('Event payload', payload, 'The event’s members as JSON.'),
      field(
        'txn (optional)',
        txn,
        'A transaction id to correlate with; the broker makes one otherwise.',
      ),
      field(
        'Emitter token (optional)',
        token,
        'POST /events needs the emitter role; leave empty if the sign-in token has it. Kept in memory only.',
      ),
      button,
    )
    replace(
      main,
      h('h1', {}, 'Emit'),
      h('p', { class: 'lede' }, 'Post a CAEP, RISC or agent event, as an identity provider would.'),
      form,
      msg.el,
      result,
    )
  },
}
