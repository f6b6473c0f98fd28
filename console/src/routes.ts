/** Hash routes: `#/<page>[/<id>][?query]`. */
import { overviewPage } from './pages/overview.js'
import { streamsPage, streamPage } from './pages/streams.js'
import { emitPage } from './pages/emit.js'
import { inspectPage } from './pages/inspect.js'
import { auditPage } from './pages/audit.js'
import { agentsPage } from './pages/agents.js'
import { deadLettersPage } from './pages/dead-letters.js'

export interface Params {
  id?: string
  query: URLSearchParams
}

export interface Page {
  title: string
  /** Fills `main`; may return what stops its timers. */
  render(main: HTMLElement, params: Params): (() => void) | void
}

export const ROUTES: { path: string; title: string; page: Page }[] = [
  { path: 'overview', title: 'Overview', page: overviewPage },
  { path: 'streams', title: 'Streams', page: streamsPage },
  { path: 'emit', title: 'Emit', page: emitPage },
  { path: 'inspect', title: 'Inspect', page: inspectPage },
  { path: 'audit', title: 'Audit', page: auditPage },
  { path: 'agents', title: 'Agents', page: agentsPage },
  { path: 'dead-letters', title: 'Dead letters', page: deadLettersPage },
]

export function resolve(hash: string): { page: Page; params: Params; path: string } {
  const [route = '', search = ''] = hash.replace(/^#\/?/, '').split('?')
  const [path = '', id] = route.split('/')
  const query = new URLSearchParams(search)
  if (path === 'streams' && id)
    return { page: streamPage, params: { id: decodeURIComponent(id), query }, path }
  const found = ROUTES.find((r) => r.path === path) ?? ROUTES[0]!
  return { page: found.page, params: { query }, path: found.path }
}
