/**
 * Inspect: paste a SET, see its header and claims, and each check a receiver makes, verified against
 * this broker's JWKS or a JWKS pasted here (another issuer's: the page may fetch only from this origin).
 */
import { BASE, ISSUER, errorText } from '../api.js'
import { field, h, messages, replace } from '../dom.js'
import { inspectSet, type Check } from '../jws.js'
import type { Page } from '../routes.js'
import { handoff } from '../state.js'

const CHECK_LABELS: Record<Check['name'], string> = {
  format: 'Compact JWS',
  signature: 'Signature',
  typ: 'typ is secevent+jwt',
  iss: 'iss',
  aud: 'aud',
  iat: 'iat',
  events: 'events claim (one event)',
}

export const inspectPage: Page = {
  title: 'Inspect',
  render(main) {
    const set = h('textarea', {
      id: 'inspect-set',
      rows: '6',
      spellcheck: 'false',
      class: 'mono',
      placeholder: 'eyJ…',
    })
    const issuer = h('input', { id: 'inspect-iss', type: 'text', value: ISSUER })
    const audience = h('input', { id: 'inspect-aud', type: 'text' })
    const jwks = h('textarea', {
      id: 'inspect-jwks',
      rows: '3',
      spellcheck: 'false',
      class: 'mono',
      placeholder: '{"keys":[…]}',
    })
    const verdict = h('p', {
      role: 'status',
      'aria-label': 'Verification result',
      class: 'verdict',
    })
    const msg = messages()
    const out = h('div', {})
    const verify = async () => {
      msg.clear()
      replace(out)
      verdict.textContent = ''
      verdict.className = 'verdict'
      let keys: { keys?: Record<string, unknown>[] }
      try {
        if (jwks.value.trim()) keys = JSON.parse(jwks.value)
        else {
          const res = await fetch(`${BASE}/jwks.json`, { cache: 'no-store' })
          if (!res.ok) throw new Error(`the broker's JWKS answered HTTP ${res.status}`)
          keys = await res.json()
        }
      } catch (err) {
        return msg.show(`No JWKS to verify with: ${errorText(err)}`, 'error')
      }
      const result = await inspectSet(set.value, {
        jwks: keys,
        issuer: issuer.value.trim(),
        audience: audience.value,
      })
      verdict.textContent = result.valid ? 'valid' : 'invalid'
      verdict.classList.add(result.valid ? 'ok' : 'bad')
      replace(
        out,
        h(
          'table',
          { class: 'checks' },
          h('caption', {}, 'Checks'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Check'),
              h('th', { scope: 'col' }, 'Result'),
              h('th', { scope: 'col' }, 'Detail'),
            ),
          ),
          h(
            'tbody',
            {},
            result.checks.map((c) =>
              h(
                'tr',
                { 'data-check': c.name },
                h('th', { scope: 'row' }, CHECK_LABELS[c.name]),
                h(
                  'td',
                  {},
                  h('span', { class: `pill ${c.ok ? 'pass' : 'fail'}` }, c.ok ? 'pass' : 'fail'),
                ),
                h('td', {}, c.detail),
              ),
            ),
          ),
        ),
        result.header
          ? h(
              'section',
              {},
              h('h2', {}, 'Header'),
              h('pre', { class: 'json', tabindex: '0' }, JSON.stringify(result.header, null, 2)),
            )
          : undefined,
        result.claims
          ? h(
              'section',
              {},
              h('h2', {}, 'Claims'),
              h('pre', { class: 'json', tabindex: '0' }, JSON.stringify(result.claims, null, 2)),
            )
          : undefined,
      )
    }
    const form = h(
      'form',
      { class: 'form', onsubmit: (e: Event) => (e.preventDefault(), void verify()) },
      field('SET', set, 'A compact JWS, as a push receiver gets it.'),
      field('Expected issuer', issuer),
      field('Expected audience (optional)', audience, 'Without it, aud only has to be present.'),
      field(
        'JWKS of another issuer (optional)',
        jwks,
        'Paste its JSON; empty: this broker’s JWKS.',
      ),
      h('button', { type: 'submit' }, 'Verify'),
    )
    replace(
      main,
      h('h1', {}, 'Inspect'),
      h('p', { class: 'lede' }, 'Decode a Security Event Token and check it as a receiver would.'),
      form,
      msg.el,
      h('div', { class: 'verdict-row' }, h('span', {}, 'Result: '), verdict),
      out,
    )
    if (handoff.set) {
      set.value = handoff.set
      handoff.set = undefined
      void verify()
    }
  },
}
