// The visualizer page as `npm start` serves it (startVisualizer from visualizer/serve.mjs),
// driven in Chromium against the real token server: sign in, expire the token, fire requests,
// watch the diagram go through `refreshing` back to `authenticated` with one refresh.
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Browser, BrowserContext, Page, Response } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestAuthServer } from '../../src/testing/index.js'
import { startVisualizer, type Visualizer } from '../../visualizer/serve.mjs'
import { launchChromium } from './chromium.js'

// The README's screenshot is refreshed on demand (UPDATE_SCREENSHOT=1 npm test); every run
// saves its own under test-results/ so the page can be compared with it.
const screenshots = resolve(
  import.meta.dirname,
  process.env.UPDATE_SCREENSHOT === '1' ? '../../docs' : '../../test-results',
)

let visualizer: Visualizer
let browser: Browser
const contexts: BrowserContext[] = []

beforeAll(async () => {
  // The same function `npm start` runs, with the token server from source rather than dist/
  // so this test needs no build. 120 s tokens: no proactive refresh can sneak into the counts;
  // short retry delays keep the offline scenario quick.
  visualizer = await startVisualizer({
    port: 0,
    accessTokenTtl: 120,
    retry: { retries: 3, baseDelay: 200, maxDelay: 800 },
    createAuthServer: createTestAuthServer,
  })
  browser = await launchChromium()
}, 120_000)

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()))
  // Leave no armed fault or hung refresh behind for the next test.
  visualizer.authServer.clearFaults()
  visualizer.authServer.releaseHung()
})

afterAll(async () => {
  await browser?.close()
  await visualizer?.close()
})

interface OpenedPage {
  page: Page
  context: BrowserContext
  /** Every token the page received from /auth/login and /auth/refresh so far. */
  tokens(): Promise<Set<string>>
  /** Chromium's resource type (`xhr`, `fetch`) of every GET /api/resource the page sent. */
  apiRequests: string[]
}

/** Opens the page; collects every token the page receives so the test can look for leaks. */
async function openPage(): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } })
  contexts.push(context)
  const page = await context.newPage()
  await page.emulateMedia({ reducedMotion: 'reduce' })
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  const seen = new Set<string>()
  const pending: Promise<void>[] = []
  const apiRequests: string[] = []
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/resource') {
      apiRequests.push(request.resourceType())
    }
  })
  const collect = async (response: Response) => {
    const body = (await response.json().catch(() => null)) as Record<string, unknown> | null
    for (const key of ['accessToken', 'refreshToken']) {
      const value = body?.[key]
      if (typeof value === 'string') seen.add(value)
    }
  }
  page.on('response', (response) => {
    if (/\/auth\/(login|refresh)$/.test(new URL(response.url()).pathname) && response.ok()) {
      pending.push(collect(response))
    }
  })
  await page.goto(visualizer.url)
  await page.waitForSelector('svg[data-ready="true"]')
  expect(errors).toEqual([])
  return {
    page,
    context,
    apiRequests,
    tokens: async () => {
      await Promise.all(pending)
      return seen
    },
  }
}

const state = (path: string) => `[data-state="${path}"][data-active="true"]`
const edge = (id: string) => `[data-edge="${id}"][data-last="true"]`

async function counterShows(page: Page, name: string, value: number): Promise<void> {
  await page.waitForFunction(
    ([counter, expected]) =>
      document.querySelector(`[data-counter="${counter}"]`)?.textContent === expected,
    [name, String(value)] as const,
  )
}

async function control(page: Page, button: string, route: string): Promise<void> {
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/__control/${route}`) && r.ok()),
    page.getByRole('button', { name: button }).click(),
  ])
}

async function logShows(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (wanted) => document.querySelector('[data-testid="event-log"]')?.textContent?.includes(wanted),
    text,
  )
}

async function pageText(page: Page): Promise<string> {
  return page.evaluate(() => document.documentElement.outerHTML)
}

describe('visualizer', () => {
  it('shows a 401 burst going through one refresh, live, and never shows a token', async () => {
    const { page, tokens, apiRequests } = await openPage()
    const server = visualizer.authServer
    server.resetCounters()
    await page.waitForSelector(state('loggedOut'))
    await page.waitForSelector('[data-status="loggedOut"]')

    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))
    await page.waitForSelector(state('authenticated'))
    await page.waitForSelector(edge('loggedOut->authenticated'))
    await expect.poll(() => page.getByTestId('generation').textContent()).toBe('1')

    // The server holds the refresh so the page can be looked at mid-refresh.
    const gate = server.hold('/auth/refresh')
    await control(page, 'Expire access token', 'expire-access-tokens')
    await page.getByRole('button', { name: 'Fire 10 requests' }).click()
    await gate.untilWaiting(1)
    await page.waitForSelector(state('refreshing'))
    await page.waitForSelector(state('refreshing.requesting'))
    await page.waitForSelector(edge('authenticated->refreshing'))
    await page.waitForSelector('[data-queue-size="10"]')
    expect(await page.$(state('authenticated'))).toBeNull()
    await counterShows(page, 'refreshCalls', 1)
    await counterShows(page, 'refreshInFlight', 1)
    // Every request is queued, so every 401 has been counted: the polled display catches up.
    await counterShows(page, 'unauthorized', server.counters.unauthorized)
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="event-log"]')?.textContent?.includes('→ refreshing'),
    )

    mkdirSync(screenshots, { recursive: true })
    await page.screenshot({ path: join(screenshots, 'visualizer.png'), fullPage: true })

    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
    await page.waitForSelector(edge('refreshing.requesting->authenticated'))
    await page.waitForSelector('[data-queue-size="0"]')
    await expect.poll(() => page.getByTestId('generation').textContent()).toBe('2')
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="event-log"]')?.textContent?.includes('10/10 ok'),
    )
    expect(server.counters).toMatchObject({
      refreshCalls: 1,
      refreshSuccesses: 1,
      reuseDetections: 0,
      protectedOk: 10,
    })
    await counterShows(page, 'refreshCalls', 1)
    await counterShows(page, 'refreshSuccesses', 1)
    // axios is the default transport: XHRs on the wire.
    expect(new Set(apiRequests)).toEqual(new Set(['xhr']))

    const secrets = await tokens()
    expect(secrets.size).toBe(4)
    const html = await pageText(page)
    for (const token of secrets) expect(html).not.toContain(token)
  }, 90_000)

  it('switched to fetch: a burst on an expired token goes through auth.fetch and one refresh', async () => {
    const { page, tokens, apiRequests } = await openPage()
    const server = visualizer.authServer
    server.resetCounters()
    await page.getByRole('radio', { name: 'fetch' }).check()
    expect(new URL(page.url()).searchParams.get('transport')).toBe('fetch')
    await logShows(page, 'requests go through auth.fetch')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))

    const gate = server.hold('/auth/refresh')
    await control(page, 'Expire access token', 'expire-access-tokens')
    const before = server.requests.length
    await page.getByRole('button', { name: 'Fire 10 requests' }).click()
    await gate.untilWaiting(1)
    await page.waitForSelector(state('refreshing.requesting'))
    await page.waitForSelector('[data-queue-size="10"]')
    await logShows(page, 'fire 10 concurrent GET /api/resource via fetch')
    await logShows(page, '→ refreshing')

    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
    await page.waitForSelector(edge('refreshing.requesting->authenticated'))
    await page.waitForSelector('[data-queue-size="0"]')
    await logShows(page, 'refresh done')
    await logShows(page, '10/10 ok via fetch')
    await expect.poll(() => page.getByTestId('generation').textContent()).toBe('2')
    expect(server.counters).toMatchObject({
      refreshCalls: 1,
      refreshSuccesses: 1,
      reuseDetections: 0,
      protectedOk: 10,
    })
    await counterShows(page, 'protectedOk', 10)

    // Every protected request the server got, first tries and replays, was a fetch().
    const received = server.requests
      .slice(before)
      .filter((r) => r.method === 'GET' && r.path === '/api/resource')
    expect(received.length).toBeGreaterThanOrEqual(11)
    expect(apiRequests).toEqual(received.map(() => 'fetch'))

    const secrets = await tokens()
    expect(secrets.size).toBe(4)
    const html = await pageText(page)
    for (const token of secrets) expect(html).not.toContain(token)

    // The choice lives in the URL: a reload (or another tab) keeps it.
    await page.reload()
    await page.waitForSelector('svg[data-ready="true"]')
    expect(await page.getByRole('radio', { name: 'fetch' }).isChecked()).toBe(true)
  }, 90_000)

  it('shows a revoked session ending in expired, and a transient failure keeping it', async () => {
    const { page } = await openPage()
    const server = visualizer.authServer
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))

    // Offline (simulated): every refresh connection is reset; retries run out, session kept.
    await page.getByLabel('number of requests').fill('3')
    await control(page, 'Expire access token', 'expire-access-tokens')
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/__control/fail-next-refresh') && r.ok()),
      page.getByLabel('Offline (simulated)').check(),
    ])
    await page.getByRole('button', { name: 'Fire 3 requests' }).click()
    await page.waitForSelector(state('authenticated.stale'), { timeout: 30_000 })
    await page.waitForSelector(edge('refreshing.requesting->authenticated.stale'))
    await expect.poll(() => page.getByTestId('error').textContent()).toContain('REFRESH_FAILED')

    // Back online: the fault is cleared and wake() retries the stale session at once.
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/__control/clear-faults') && r.ok()),
      page.getByLabel('Offline (simulated)').uncheck(),
    ])
    await page.waitForSelector(state('authenticated.fresh'))

    await control(page, 'Revoke refresh token', 'revoke-sessions')
    await page.getByRole('button', { name: 'Fire 3 requests' }).click()
    await page.waitForSelector(state('expired'))
    await page.waitForSelector(edge('refreshing.requesting->expired'))
    await page.waitForFunction(() =>
      document
        .querySelector('[data-testid="event-log"]')
        ?.textContent?.includes('emit sessionExpired'),
    )
    expect(server.counters.reuseDetections).toBe(0)
  }, 90_000)

  it('forwards inspection events to the Stately inspector with every token redacted', async () => {
    const { page, context, tokens } = await openPage()
    // Stand in for stately.ai/inspect (no network needed): a page that greets its opener the
    // way the real inspector does and keeps every message it receives.
    await context.route('https://stately.ai/inspect**', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><script>
          window.received = []
          window.addEventListener('message', (event) => window.received.push(JSON.stringify(event.data)))
          window.opener.postMessage({ type: '@statelyai.connected' }, '*')
        </script>`,
      }),
    )
    const [inspector] = await Promise.all([
      context.waitForEvent('page'),
      page.getByLabel('Stately inspector').check(),
    ])
    await inspector.waitForLoadState()
    // The popup took the focus; a background page gets no animation frames.
    await page.bringToFront()

    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))
    await control(page, 'Expire access token', 'expire-access-tokens')
    await page.getByRole('button', { name: 'Fire 10 requests' }).click()
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="event-log"]')?.textContent?.includes('refresh done'),
    )
    // The refresh actor's registration carries its input (the session): it must arrive redacted.
    await inspector.waitForFunction(() => {
      const received = (window as unknown as { received: string[] }).received
      return (
        received.some((m) => m.includes('"name":"refresh"') && m.includes('@xstate.actor')) &&
        received.some((m) => m.includes('xstate.done.actor.refresh'))
      )
    })
    const received = await inspector.evaluate(
      () => (window as unknown as { received: string[] }).received,
    )
    expect(received.some((m) => m.includes('[redacted]'))).toBe(true)
    const secrets = await tokens()
    expect(secrets.size).toBe(4)
    const all = received.join('\n')
    for (const token of secrets) expect(all).not.toContain(token)

    // Switched off: nothing more is forwarded.
    await page.getByLabel('Stately inspector').uncheck()
    await inspector.waitForFunction(() =>
      (window as unknown as { received: string[] }).received.some((m) =>
        m.includes('@statelyai.disconnected'),
      ),
    )
    await control(page, 'Expire access token', 'expire-access-tokens')
    await page.getByRole('button', { name: 'Fire 10 requests' }).click()
    await expect.poll(() => page.getByTestId('generation').textContent()).toBe('3')
    // Let anything the inspector library deferred to idle time run before looking.
    await page.evaluate(
      () => new Promise((done) => requestIdleCallback(() => requestIdleCallback(done))),
    )
    const later = await inspector.evaluate(
      () => (window as unknown as { received: string[] }).received,
    )
    expect(later.filter((m) => m.includes('"generation":3'))).toEqual([])
  }, 90_000)
})
