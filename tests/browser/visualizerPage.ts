// What the visualizer's browser tests share: the page as `npm start` serves it (startVisualizer)
// in Chromium, and the waits they read it with. Every wait is on a DOM condition or a server
// event, never on time.
import type { Browser, BrowserContext, Page, Response } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { startVisualizer, type Visualizer } from '../../visualizer/serve.mjs'
import { launchChromium } from './chromium.js'

export const DESKTOP = { width: 1440, height: 900 }
export const PHONE = { width: 390, height: 844 }

/**
 * The same function `npm start` runs, with the token server from source rather than dist/ so
 * these tests need no build. 120 s tokens: no proactive refresh can sneak into the counts;
 * short retry delays keep the failure scenarios quick.
 */
export function startTestVisualizer(): Promise<Visualizer> {
  return startVisualizer({
    port: 0,
    accessTokenTtl: 120,
    retry: { retries: 3, baseDelay: 200, maxDelay: 800 },
    createAuthServer: createTestAuthServer,
  })
}

/** A test file's visualizer and Chromium, from {@link visualizerSuite}. */
export interface VisualizerSuite {
  readonly visualizer: Visualizer
  readonly browser: Browser
  /** Opens the page in a context of its own, closed after the test. */
  open(viewport?: { width: number; height: number }): Promise<OpenedPage>
  /** Closes `context` after the test, like the pages `open` makes. */
  track(context: BrowserContext): void
}

/**
 * Registers a test file's hooks: one visualizer and one Chromium for the file, every context
 * closed after each test, and no armed fault or hung refresh left for the next one.
 */
export function visualizerSuite(): VisualizerSuite {
  let visualizer: Visualizer | undefined
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []
  beforeAll(async () => {
    visualizer = await startTestVisualizer()
    browser = await launchChromium()
  }, 120_000)
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()))
    visualizer?.authServer.clearFaults()
    visualizer?.authServer.releaseHung()
  })
  afterAll(async () => {
    await browser?.close()
    await visualizer?.close()
  })
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the visualizer suite has not started (beforeAll)')
    return value
  }
  return {
    get visualizer() {
      return started(visualizer)
    },
    get browser() {
      return started(browser)
    },
    open: (viewport) => openPage(started(browser), started(visualizer), contexts, viewport),
    track: (context) => void contexts.push(context),
  }
}

export interface OpenedPage {
  page: Page
  context: BrowserContext
  /** Every token the page received from /auth/login and /auth/refresh so far. */
  tokens(): Promise<Set<string>>
  /** Chromium's resource type (`xhr`, `fetch`) of every GET /api/resource the page sent. */
  apiRequests: string[]
  /** Refresh calls the page itself sent, as its network log shows them (one per attempt). */
  refreshRequests(): number
}

/** Opens the page in a context of its own; collects every token so tests can look for leaks. */
export async function openPage(
  browser: Browser,
  visualizer: Visualizer,
  contexts: BrowserContext[],
  viewport = DESKTOP,
): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 })
  contexts.push(context)
  const page = await context.newPage()
  await page.emulateMedia({ reducedMotion: 'reduce' })
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  const seen = new Set<string>()
  const pending: Promise<void>[] = []
  const apiRequests: string[] = []
  let refreshes = 0
  page.on('request', (request) => {
    const { pathname } = new URL(request.url())
    if (pathname === '/api/resource') apiRequests.push(request.resourceType())
    if (pathname === '/auth/refresh') refreshes += 1
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
    refreshRequests: () => refreshes,
    tokens: async () => {
      await Promise.all(pending)
      return seen
    },
  }
}

export const state = (path: string) => `[data-state="${path}"][data-active="true"]`
export const edge = (id: string) => `[data-edge="${id}"][data-last="true"]`

export async function counterShows(page: Page, name: string, value: number): Promise<void> {
  await page.waitForFunction(
    ([counter, expected]) =>
      document.querySelector(`[data-counter="${counter}"]`)?.textContent === expected,
    [name, String(value)] as const,
  )
}

/** Clicks a button that posts to `/__control/<route>` and waits for the server's answer. */
export async function control(page: Page, button: string, route: string): Promise<void> {
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/__control/${route}`) && r.ok()),
    page.getByRole('button', { name: button }).click(),
  ])
}

export async function logShows(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (wanted) => document.querySelector('[data-testid="event-log"]')?.textContent?.includes(wanted),
    text,
  )
}

export async function logText(page: Page): Promise<string> {
  return (await page.getByTestId('event-log').textContent()) ?? ''
}

export async function signIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForSelector(state('authenticated.fresh'))
}

export async function pageText(page: Page): Promise<string> {
  return page.evaluate(() => document.documentElement.outerHTML)
}

/**
 * The READMEs' scene: signed in, ten requests queued behind a refresh the server holds,
 * captured at `viewport` (with `css` added, for tests that change the page on purpose). Text
 * that differs from run to run (the log's clock times, the token server's port) is written as
 * fixed values first, so two runs draw the same pixels.
 */
export async function screenshotScene(
  suite: VisualizerSuite,
  viewport: { width: number; height: number },
  css = '',
): Promise<Buffer> {
  const { page } = await suite.open(viewport)
  const server = suite.visualizer.authServer
  await signIn(page)
  server.resetCounters()
  const gate = await queueTenBehindHeldRefresh(page, server)
  await logShows(page, '×9')
  await counterShows(page, 'unauthorized', 10)
  await counterShows(page, 'refreshInFlight', 1)
  if (css) await page.addStyleTag({ content: css })
  await page.evaluate(() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      node.nodeValue = (node.nodeValue ?? '')
        .replace(/\b\d{2}:\d{2}:\d{2}\.\d{3}\b/g, '12:00:00.000')
        .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:8787')
    }
  })
  // No hover on the last button clicked; the top of the page, as it opens.
  await page.mouse.move(0, 0)
  await page.evaluate(() => window.scrollTo(0, 0))
  const shot = await page.screenshot()
  gate.release()
  await page.waitForSelector(state('authenticated.fresh'))
  return shot
}

/**
 * Fires ten requests at an expired token while the server holds the refresh: the page ends
 * in `refreshing.requesting` with all ten queued. Returns the held refresh.
 */
export async function queueTenBehindHeldRefresh(page: Page, server: TestAuthServer) {
  const gate = server.hold('/auth/refresh')
  server.expireAccessTokens()
  await page.getByRole('button', { name: 'Fire 10 requests' }).click()
  await gate.untilWaiting(1)
  await page.waitForSelector(state('refreshing.requesting'))
  await page.waitForSelector('[data-queue-size="10"]')
  return gate
}

/** Switches the Stately inspector on and returns its window, the page brought back to front. */
export async function openInspector(page: Page, context: BrowserContext): Promise<Page> {
  const [inspector] = await Promise.all([
    context.waitForEvent('page'),
    page.getByLabel('Stately inspector').check(),
  ])
  await inspector.waitForLoadState()
  // The window took the focus; a page in the background gets no animation frames.
  await page.bringToFront()
  return inspector
}
