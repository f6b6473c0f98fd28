/**
 * A real headless Chromium (Debian's /usr/bin/chromium, or SSF_TEST_CHROMIUM) driven by playwright-core,
 * for console tests. Every request the page makes is recorded; one to any host but the broker's is
 * aborted and reported by `foreign()`, as are script errors and CSP violations by `problems()`.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM = process.env.SSF_TEST_CHROMIUM ?? '/usr/bin/chromium'
export const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots')

export interface ConsoleBrowser {
  browser: Browser
  context: BrowserContext
  page: Page
  /** Every URL the page requested. */
  requests: string[]
  /** Requests to a host other than the broker's. */
  foreign(): string[]
  /** Uncaught script errors and Content-Security-Policy violations. */
  problems(): string[]
  screenshot(name: string): Promise<string>
  close(): Promise<void>
}

export async function openBrowser(
  brokerUrl: string,
  viewport = { width: 1400, height: 900 },
): Promise<ConsoleBrowser> {
  const origin = new URL(brokerUrl).origin
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
  const context = await browser.newContext({ viewport })
  const requests: string[] = []
  const problems: string[] = []
  const isForeign = (url: string) => new URL(url).origin !== origin
  context.on('request', (request) => void requests.push(request.url()))
  // Nothing leaves the machine even if the page tried: the test fails on it instead.
  await context.route('**/*', (route) =>
    isForeign(route.request().url()) ? route.abort('blockedbyclient') : route.continue(),
  )
  const page = await context.newPage()
  page.on('pageerror', (err) => void problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
  })
  mkdirSync(SCREENSHOTS, { recursive: true })
  return {
    browser,
    context,
    page,
    requests,
    foreign: () => requests.filter(isForeign),
    problems: () => [...problems],
    async screenshot(name) {
      const path = join(SCREENSHOTS, `${name}.png`)
      await page.screenshot({ path, fullPage: true })
      return path
    },
    close: () => browser.close(),
  }
}
