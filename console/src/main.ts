/**
 * The console shell: sign-in, navigation (hash routes, so the page is one URL and the token never enters
 * one), the page area and the live feed shown beside every page.
 */
import { ApiError, api, currentToken, onSignedOut, signIn, signOut } from './api.js'
import { h, replace } from './dom.js'
import { mountLiveFeed } from './feed.js'
import { ROUTES, resolve } from './routes.js'
import { handoff } from './state.js'

const app = document.getElementById('app')!
let cleanup: (() => void) | void
let stopFeed: (() => void) | undefined

function showSignIn(message = ''): void {
  handoff.emitterToken = undefined
  stopFeed?.()
  stopFeed = undefined
  cleanup?.()
  cleanup = undefined
  const input = h('input', {
    id: 'admin-token',
    type: 'text',
    class: 'secret',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'signin-error',
  })
  const error = h('p', { id: 'signin-error', role: 'alert', class: 'msg error' }, message)
  const button = h('button', { type: 'submit' }, 'Sign in')
  const form = h(
    'form',
    {
      class: 'signin',
      onsubmit: async (e: Event) => {
        e.preventDefault()
        const token = input.value.trim()
        if (!token) return void (error.textContent = 'Enter the admin token.')
        button.disabled = true
        try {
          await api('GET', '/admin/overview', undefined, { token })
          signIn(token)
          showShell()
        } catch (err) {
          error.textContent =
            err instanceof ApiError && err.status === 401
              ? 'That token is not valid.'
              : err instanceof ApiError && err.status === 403
                ? 'That token has no admin role.'
                : `Could not sign in: ${(err as Error).message}`
        } finally {
          button.disabled = false
        }
      },
    },
    h('h1', {}, 'ssf-broker console'),
    h(
      'p',
      {},
      'Sign in with the admin token, or the token of a client with the admin role. It is kept in this tab only, until you sign out or close it.',
    ),
    h('div', { class: 'field' }, h('label', { for: 'admin-token' }, 'Admin token'), input),
    button,
    error,
  )
  replace(app, h('main', { class: 'signin-page' }, form))
  input.focus()
}

function showShell(): void {
  const nav = h(
    'nav',
    { 'aria-label': 'Pages' },
    h(
      'ul',
      {},
      ROUTES.map((r) => h('li', {}, h('a', { href: `#/${r.path}`, 'data-path': r.path }, r.title))),
    ),
  )
  const main = h('main', { id: 'page', tabindex: '-1' })
  const feed = h('aside', { class: 'feed', 'aria-labelledby': 'feed-title' })
  const header = h(
    'header',
    { class: 'top' },
    h(
      'a',
      { class: 'skip', href: '#page', onclick: (e: Event) => (e.preventDefault(), main.focus()) },
      'Skip to page',
    ),
    h('span', { class: 'brand' }, 'ssf-broker'),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
  )
  replace(app, h('div', { class: 'shell' }, header, nav, main, feed))
  stopFeed = mountLiveFeed(feed)
  route()
}

function route(): void {
  const main = document.getElementById('page')
  if (!main || !currentToken()) return
  cleanup?.()
  const { page, params, path } = resolve(location.hash)
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset.path === path) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  main.replaceChildren()
  document.title = `${page.title} · ssf-broker console`
  cleanup = page.render(main, params)
  const heading = main.querySelector('h1')
  if (heading && document.activeElement?.closest('nav')) {
    heading.setAttribute('tabindex', '-1')
    heading.focus()
  }
}

window.addEventListener('hashchange', route)
onSignedOut((reason) => showSignIn(reason))
if (currentToken()) showShell()
else showSignIn()
