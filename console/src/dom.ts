/** Building DOM nodes without innerHTML: every string ends up as text, so nothing from the API can run. */
type Child = Node | string | number | null | undefined | false
type Attr = string | number | boolean | undefined | ((event: any) => void)

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, Attr> = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value)
    else if (name === 'class') el.className = String(value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

export function append(el: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)))
  }
}

export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

/** A labelled form control: `<label for>` + control, wrapped for layout. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  control.id ||= `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  const hintEl = hint ? h('small', { id: `${control.id}-hint`, class: 'hint' }, hint) : undefined
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl)
}

export const fmtTime = (ms: number | undefined) =>
  ms === undefined ? '—' : new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC')
export const fmtMs = (ms: number | undefined) =>
  ms === undefined ? '—' : `${Math.round(ms * 10) / 10} ms`

/** Text for a subject identifier (RFC 9493), short enough for a table cell. */
export function subjectLabel(subject: unknown): string {
  if (typeof subject !== 'object' || subject === null) return String(subject)
  const s = subject as Record<string, unknown>
  switch (s.format) {
    case 'email':
      return String(s.email)
    case 'phone_number':
      return String(s.phone_number)
    case 'uri':
    case 'account':
    case 'did':
      return String(s.uri ?? s.url)
    case 'iss_sub':
      return `${String(s.sub)} @ ${String(s.iss)}`
    case 'opaque':
      return String(s.id)
    case 'complex':
      return Object.entries(s)
        .filter(([k]) => k !== 'format')
        .map(([k, v]) => `${k}: ${subjectLabel(v)}`)
        .join(', ')
    default:
      return JSON.stringify(subject)
  }
}

/** A message region for a page: `show(text, 'error')` or `show(text)`. */
export function messages(): {
  el: HTMLElement
  show(text: string, kind?: 'error' | 'ok'): void
  clear(): void
} {
  const el = h('div', { class: 'messages' })
  const status = h('p', { role: 'status', class: 'msg ok' })
  const alert = h('p', { role: 'alert', class: 'msg error' })
  el.append(status, alert)
  return {
    el,
    show(text, kind = 'ok') {
      ;(kind === 'error' ? alert : status).textContent = text
      ;(kind === 'error' ? status : alert).textContent = ''
    },
    clear() {
      status.textContent = ''
      alert.textContent = ''
    },
  }
}
