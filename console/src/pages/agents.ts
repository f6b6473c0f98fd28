/**
 * Agents: for a subject, the delegation graph of the live agents acting for it (each under the one that
 * delegated to it), with task, scopes and expiry; revoke a delegation (retire the agent) from there.
 */
import { api, errorText, query } from '../api.js'
import { field, fmtTime, h, messages, replace, subjectLabel } from '../dom.js'
import type { Page } from '../routes.js'

interface Agent {
  agent_id: string
  agent: unknown
  delegator: unknown
  task: string
  scopes: string[]
  expires_at: number
  registered_by: string
  path: unknown[]
}

const key = (subject: unknown) => JSON.stringify(subject)

function expiresIn(seconds: number): string {
  const left = seconds - Date.now() / 1000
  if (left <= 0) return 'expired'
  if (left < 7200) return `expires in ${Math.ceil(left / 60)} min`
  if (left < 86400 * 2) return `expires in ${Math.round(left / 3600)} h`
  return `expires in ${Math.round(left / 86400)} days`
}

export const agentsPage: Page = {
  title: 'Agents',
  render(main, { query: params }) {
    const subject = h('input', {
      id: 'agents-subject',
      type: 'text',
      class: 'mono',
      value: params.get('subject') ?? '{"format":"email","email":"alice@example.com"}',
    })
    const msg = messages()
    const graph = h('div', {})
    const load = async () => {
      msg.clear()
      let parsed: unknown
      try {
        parsed = JSON.parse(subject.value)
      } catch (err) {
        return msg.show(`Subject: not valid JSON (${(err as Error).message})`, 'error')
      }
      try {
        const res = await api<{ subject: unknown; agents: Agent[] }>(
          'GET',
          `/agents${query({ subject: JSON.stringify(parsed) })}`,
        )
        const children = new Map<string, Agent[]>()
        for (const a of res.agents) {
          const parent = key(a.path[a.path.length - 2] ?? res.subject)
          children.set(parent, [...(children.get(parent) ?? []), a])
        }
        const node = (a: Agent, seen: Set<string>): HTMLElement => {
          const revoke = h(
            'button',
            {
              type: 'button',
              class: 'danger',
              'aria-label': `Revoke delegation of ${subjectLabel(a.agent)}`,
            },
            'Revoke delegation',
          )
          const confirmBox = h('span', { class: 'confirm', hidden: true })
          revoke.addEventListener('click', () => {
            confirmBox.hidden = false
            revoke.hidden = true
            confirmBox.querySelector('button')?.focus()
          })
          replace(
            confirmBox,
            `Retire ${subjectLabel(a.agent)}? Its subscribers are told. `,
            h(
              'button',
              {
                type: 'button',
                class: 'danger',
                onclick: async () => {
                  try {
                    await api('DELETE', `/agents/${encodeURIComponent(a.agent_id)}`)
                    msg.show(`Delegation to ${subjectLabel(a.agent)} revoked.`)
                    void load()
                  } catch (err) {
                    msg.show(errorText(err), 'error')
                  }
                },
              },
              'Confirm revoke',
            ),
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                onclick: () => (
                  (confirmBox.hidden = true),
                  (revoke.hidden = false),
                  revoke.focus()
                ),
              },
              'Cancel',
            ),
          )
          const k = key(a.agent)
          const below = seen.has(k) ? [] : (children.get(k) ?? [])
          return h(
            'li',
            { class: 'agent', 'data-agent-id': a.agent_id },
            h(
              'div',
              { class: 'node' },
              h('strong', {}, subjectLabel(a.agent)),
              h('span', { class: 'id' }, a.agent_id),
              h('span', {}, `task: ${a.task}`),
              h('span', {}, `scopes: ${a.scopes.length ? a.scopes.join(' ') : 'none'}`),
              h(
                'span',
                { title: fmtTime(a.expires_at * 1000) },
                `${expiresIn(a.expires_at)} (${fmtTime(a.expires_at * 1000)})`,
              ),
              revoke,
              confirmBox,
            ),
            below.length
              ? h(
                  'ul',
                  {},
                  below.map((b) => node(b, new Set([...seen, k]))),
                )
              : undefined,
          )
        }
        const roots = children.get(key(res.subject)) ?? []
        replace(
          graph,
          h(
            'p',
            {},
            `${res.agents.length} agent${res.agents.length === 1 ? '' : 's'} acting for ${subjectLabel(res.subject)}.`,
          ),
          h(
            'div',
            { class: 'graph' },
            h(
              'div',
              { class: 'node principal' },
              h('strong', {}, subjectLabel(res.subject)),
              h('span', {}, 'principal'),
            ),
            roots.length
              ? h(
                  'ul',
                  { 'aria-label': 'Delegation graph' },
                  roots.map((a) => node(a, new Set())),
                )
              : undefined,
          ),
          res.agents.length
            ? h(
                'p',
                {},
                h(
                  'a',
                  { href: `#/audit?subject=${encodeURIComponent(JSON.stringify(res.subject))}` },
                  'Audit records about this subject',
                ),
              )
            : undefined,
        )
      } catch (err) {
        replace(graph)
        msg.show(errorText(err), 'error')
      }
    }
    const form = h(
      'form',
      { class: 'form inline', onsubmit: (e: Event) => (e.preventDefault(), void load()) },
      field('Subject', subject, 'The principal, as a JSON subject identifier'),
      h('button', { type: 'submit' }, 'Show agents'),
    )
    replace(main, h('h1', {}, 'Agents'), form, msg.el, graph)
    if (params.get('subject')) void load()
  },
}
