// The visualizer page as `npm start` serves it (startVisualizer from visualizer/serve.mjs),
// driven in Chromium against the real token server: sign in, expire the token, fire requests,
// watch the diagram go through `refreshing` back to `authenticated` with one refresh; the
// faults, the Stately inspector link and a second tab.
import type { Locator, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import {
  control,
  counterShows,
  edge,
  logShows,
  logText,
  openInspector,
  pageText,
  signIn,
  state,
  visualizerSuite,
} from './visualizerPage.js'

const suite = visualizerSuite()

const open = () => suite.open()

/** The text of the element that describes a control (`aria-describedby`). */
async function description(control: Locator): Promise<string> {
  const id = await control.getAttribute('aria-describedby')
  return (await control.page().locator(`[id="${id}"]`).textContent()) ?? ''
}

const button = (page: Page, name: string) => page.getByRole('button', { name })

/** The status badge's tone: `ok`, `busy`, `warn`, `bad` or `neutral` (see visualizer/src/tone.ts). */
async function tone(page: Page): Promise<string | undefined> {
  const classes = (await page.locator('.badge').getAttribute('class')) ?? ''
  return /tone-(\w+)/.exec(classes)?.[1]
}

async function badgeColour(page: Page): Promise<string> {
  return page.locator('.badge').evaluate((badge) => getComputedStyle(badge).color)
}

/** The hue in degrees of a computed `rgb(r, g, b)` colour: amber is about 35, green 145. */
function hue(rgb: string): number {
  const [r = 0, g = 0, b = 0] = (rgb.match(/\d+/g) ?? []).map((n) => Number(n) / 255)
  const max = Math.max(r, g, b)
  const d = max - Math.min(r, g, b)
  if (d === 0) return 0
  const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4
  return (h * 60 + 360) % 360
}

describe('visualizer', () => {
  it('shows a 401 burst going through one refresh, live, and never shows a token', async () => {
    const { page, tokens, apiRequests } = await open()
    const server = suite.visualizer.authServer
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
    // The button only acts on the server, and says so: the page's countdown keeps running.
    expect(await description(button(page, 'Expire access token'))).toContain(
      'countdown keeps running',
    )
    await control(page, 'Expire access token', 'expire-access-tokens')
    await logShows(page, 'server side only: the countdown here keeps running')
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
    await logShows(page, '→ refreshing')

    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
    await page.waitForSelector(edge('refreshing.requesting->authenticated'))
    await page.waitForSelector('[data-queue-size="0"]')
    await expect.poll(() => page.getByTestId('generation').textContent()).toBe('2')
    await logShows(page, 'emit requestsReleased · 10 requests')
    await logShows(page, '10/10 ok')
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

    // A logout with nothing waiting rejects no request: no "requestsRejected · 0" line.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForSelector(state('loggedOut'))
    await logShows(page, 'emit loggedOut')
    const lines = await logText(page)
    expect(lines).not.toMatch(/requestsRejected · 0|requestsReleased · 0/)

    const secrets = await tokens()
    expect(secrets.size).toBe(4)
    const html = await pageText(page)
    for (const token of secrets) expect(html).not.toContain(token)
  }, 90_000)

  it('switched to fetch: a burst on an expired token goes through auth.fetch and one refresh', async () => {
    const { page, tokens, apiRequests } = await open()
    const server = suite.visualizer.authServer
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
    const { page, refreshRequests } = await open()
    const server = suite.visualizer.authServer
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))
    expect(await tone(page)).toBe('ok')
    server.resetCounters()
    const sentBefore = refreshRequests()

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
    // One server call per attempt of the client (1 + 3 retries): every reset reached the page,
    // none was re-sent by the browser on its own.
    expect(refreshRequests() - sentBefore).toBe(4)
    expect(server.counters.refreshCalls).toBe(4)
    // Stale is a warning, in amber like its error line, not the green of a fresh session.
    expect(await tone(page)).toBe('warn')
    expect(hue(await badgeColour(page))).toBeGreaterThanOrEqual(20)
    expect(hue(await badgeColour(page))).toBeLessThanOrEqual(50)
    expect(await page.getByTestId('error').getAttribute('class')).toBe('warning')

    // Back online: the fault is cleared and wake() retries the stale session at once.
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/__control/clear-faults') && r.ok()),
      page.getByLabel('Offline (simulated)').uncheck(),
    ])
    await page.waitForSelector(state('authenticated.fresh'))

    // Revoking ends the whole session at the server, access token included, and says so.
    expect(await description(button(page, 'Revoke refresh token'))).toContain(
      'access token stops working',
    )
    await control(page, 'Revoke refresh token', 'revoke-sessions')
    await logShows(page, 'every access token issued with it')
    await page.getByRole('button', { name: 'Fire 3 requests' }).click()
    await page.waitForSelector(state('expired'))
    await page.waitForSelector(edge('refreshing.requesting->expired'))
    await logShows(page, 'emit sessionExpired')
    expect(server.counters.reuseDetections).toBe(0)
    expect(await tone(page)).toBe('bad')
    expect(await page.getByTestId('error').getAttribute('class')).toBe('error')
  }, 90_000)

  it('forwards inspection events to the Stately inspector with every token redacted', async () => {
    const { page, context, tokens } = await open()
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
    const inspector = await openInspector(page, context)
    // The inspector's greeting is what says the link works.
    await page.waitForSelector('#inspector-status[data-status="connected"]')

    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForSelector(state('authenticated.fresh'))
    await control(page, 'Expire access token', 'expire-access-tokens')
    await page.getByRole('button', { name: 'Fire 10 requests' }).click()
    await logShows(page, 'refresh done')
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

  it('says so when stately.ai cannot be reached, switches the inspector off, closes its window', async () => {
    const { page, context } = await open()
    // Offline, as CI is: every request to stately.ai fails at the network level.
    await context.route('https://stately.ai/**', (route) => route.abort('internetdisconnected'))
    // Clicked, not `check()`ed: the box unticks itself once the failure is known.
    const [popup] = await Promise.all([
      context.waitForEvent('page'),
      page.getByLabel('Stately inspector').click(),
    ])
    const closed = popup.waitForEvent('close')
    await page.bringToFront()
    const status = page.locator('#inspector-status')
    // Once the window has had its few seconds to answer all the same.
    await page.waitForSelector('#inspector-status[data-status="unreachable"]')
    expect(await status.textContent()).toContain('could not reach stately.ai')
    expect(await status.getAttribute('role')).toBe('status')
    expect(await page.getByLabel('Stately inspector').isChecked()).toBe(false)
    // The window the page opened, an error page, is closed with it.
    await closed
  }, 90_000)

  it('shows each reset fault as the page really meets it: one server call per attempt', async () => {
    const { page, refreshRequests } = await open()
    const server = suite.visualizer.authServer
    await signIn(page)
    await page.getByLabel('number of requests').fill('1')
    const fault = page.getByLabel('refresh fault')

    // Before the server read the token: nothing spent, the page sees a network error and its
    // retry with the same token works.
    await fault.selectOption({ label: 'reset before the server processed the refresh (retried)' })
    expect(await description(fault)).toContain('nothing is spent')
    await control(page, 'Fail next refresh', 'fail-next-refresh')
    await control(page, 'Expire access token', 'expire-access-tokens')
    server.resetCounters()
    let sent = refreshRequests()
    await page.getByRole('button', { name: 'Fire 1 requests' }).click()
    await logShows(page, '1/1 ok')
    await page.waitForSelector(state('authenticated.fresh'))
    expect(await logText(page)).toContain('refresh error · REFRESH_FAILED → refreshing.backoff')
    expect(refreshRequests() - sent).toBe(2)
    expect(server.counters).toMatchObject({
      refreshCalls: 2,
      refreshSuccesses: 1,
      refreshFailures: 1,
      reuseDetections: 0,
    })

    // After the server rotated: the answer is lost, the retry presents the spent token, and
    // this server (strict rotation, no grace window) takes it as reuse: the session ends.
    await fault.selectOption({
      label: 'reset after the server processed it (rotation happened, the answer is lost)',
    })
    expect(await description(fault)).toContain('spent token')
    await control(page, 'Fail next refresh', 'fail-next-refresh')
    await control(page, 'Expire access token', 'expire-access-tokens')
    server.resetCounters()
    sent = refreshRequests()
    await page.getByRole('button', { name: 'Fire 1 requests' }).click()
    await page.waitForSelector(state('expired'))
    await logShows(page, 'emit sessionExpired')
    const log = await logText(page)
    expect(log).toContain('refresh error · REFRESH_FAILED → refreshing.backoff')
    expect(log).toContain('refresh error · SESSION_EXPIRED 401 → expired')
    expect(refreshRequests() - sent).toBe(2)
    expect(server.counters).toMatchObject({
      refreshCalls: 2,
      refreshSuccesses: 1,
      refreshFailures: 1,
      reuseDetections: 1,
    })
    await counterShows(page, 'reuseDetections', 1)
  }, 90_000)

  it('a tab that adopts the session another tab refreshed shows attempt 0', async () => {
    const { page: first, context } = await open()
    const server = suite.visualizer.authServer
    await signIn(first)
    // A second tab of the same profile takes the session over (Web Locks, BroadcastChannel).
    const second = await context.newPage()
    await second.emulateMedia({ reducedMotion: 'reduce' })
    await second.goto(suite.visualizer.url)
    await second.waitForSelector(state('authenticated.fresh'))

    // The first tab's refresh is held; the second tab's requests wait for the same expiry.
    server.resetCounters()
    const gate = server.hold('/auth/refresh')
    server.expireAccessTokens()
    await first.getByRole('button', { name: 'Fire 10 requests' }).click()
    await gate.untilWaiting(1)
    await second.getByRole('button', { name: 'Fire 10 requests' }).click()
    await second.waitForSelector(state('refreshing.requesting'))
    await expect.poll(() => second.getByTestId('attempt').textContent()).toBe('1')
    gate.release()
    for (const tab of [first, second]) {
      await logShows(tab, '10/10 ok')
      await tab.waitForSelector(state('authenticated.fresh'))
      expect(await tab.getByTestId('generation').textContent()).toBe('2')
      expect(await tab.getByTestId('attempt').textContent()).toBe('0')
    }
    expect(server.counters.refreshCalls).toBe(1)

    // A stale tab (every attempt spent) that adopts the other tab's refresh starts over too.
    server.failNextRefresh('reset', { times: Number.POSITIVE_INFINITY })
    server.expireAccessTokens()
    await second.getByLabel('number of requests').fill('1')
    await second.getByRole('button', { name: 'Fire 1 requests' }).click()
    await second.waitForSelector(state('authenticated.stale'))
    expect(await second.getByTestId('attempt').textContent()).toBe('4')
    server.clearFaults()
    await first.getByRole('button', { name: 'Fire 10 requests' }).click()
    await second.waitForSelector(state('authenticated.fresh'))
    expect(await second.getByTestId('generation').textContent()).toBe('3')
    expect(await second.getByTestId('attempt').textContent()).toBe('0')
  }, 90_000)
})
