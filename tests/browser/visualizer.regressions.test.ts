// Regressions from the review of 4bdac83 (visualizer: phone layout, edges, reset faults,
// inspector status), each a defect found in Chromium at the walkthrough's sizes. Every test
// states the behaviour kept, and a comment says what 4bdac83 did instead (each failed there).
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { decodePng, MAX_TILE_DIFFERENCE, tileDifference } from './png.js'
import {
  DESKTOP,
  openInspector,
  PHONE,
  queueTenBehindHeldRefresh,
  screenshotScene,
  signIn,
  state,
  visualizerSuite,
} from './visualizerPage.js'

const suite = visualizerSuite()

const chartScale = async (page: Page) =>
  Number(await page.getByTestId('statechart').getAttribute('data-scale'))

/** A stand-in for stately.ai/inspect that greets its opener and keeps what it receives. */
const INSPECTOR_PAGE = `<!doctype html><script>
  window.received = []
  window.addEventListener('message', (event) => window.received.push(JSON.stringify(event.data)))
  window.opener.postMessage({ type: '@statelyai.connected' }, '*')
</script>`

type Received = { received: string[] }

/**
 * Lets the test know when the page has handled its probe of stately.ai: the page's own
 * `.catch` runs in the microtask after ours, and `probeSettled` is set in the one after that.
 */
async function watchProbe(page: Page): Promise<void> {
  await page.evaluate(() => {
    const original = window.fetch
    const flags = window as unknown as { probeSettled: boolean }
    flags.probeSettled = false
    window.fetch = (...args: Parameters<typeof fetch>) => {
      const result = original(...args)
      if (String(args[0]).startsWith('https://stately.ai/')) {
        const settled = () =>
          queueMicrotask(() => {
            flags.probeSettled = true
          })
        result.then(settled, settled)
      }
      return result
    }
  })
}

describe('visualizer zoom', () => {
  it('goes to 100% when a fitted desktop window is narrowed below the overview limit', async () => {
    // Before: while fitted, the chart followed the width down to 0.18× (2 px labels).
    const { page } = await suite.open(DESKTOP)
    // Fitted on a desktop (about 0.7×): fine there.
    expect(await chartScale(page)).toBeGreaterThan(0.6)
    // The same window narrowed (devtools' device mode, a split screen, a rotated tablet).
    await page.setViewportSize(PHONE)
    await page.waitForFunction(
      () => (document.querySelector('.chart-viewport') as HTMLElement).clientWidth < 400,
    )
    // The resize observer has run and React has drawn once two frames have passed.
    await page.evaluate(
      () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))),
    )
    // Fitted, it would be ~0.18× (2 px labels): the same rule as on a phone from the start,
    // 100% in a scroll box.
    expect(await chartScale(page)).toBeGreaterThanOrEqual(0.6)
  }, 90_000)
})

describe("what the visualizer's chart says", () => {
  it('lights only the branch that was taken: an enqueued 401 is [else], not [isOtherEpoch]', async () => {
    // Before: only the event name was recorded and matched by prefix, so both branches lit up.
    const { page } = await suite.open(DESKTOP)
    const server = suite.visualizer.authServer
    await signIn(page)
    const gate = await queueTenBehindHeldRefresh(page, server)
    // Nine 401s arrived in `refreshing` and were enqueued: the [else] branch. The request was
    // not rejected as another session's (the [isOtherEpoch] branch, rejectRequest).
    const lit = await page
      .locator('[data-state="refreshing"] > text.state-detail.hit')
      .evaluateAll((texts) => texts.map((t) => t.lastChild?.textContent ?? ''))
    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
    expect(lit).toContain('↺ TOKEN_REJECTED [else]')
    expect(lit).not.toContain('↺ TOKEN_REJECTED [isOtherEpoch]')
  }, 90_000)

  it("draws the active fresh state in the badge's green, not the blue of refreshing", async () => {
    // Before: active leaves but stale and expired were blue; the Legend said "active state blue".
    const { page } = await suite.open(DESKTOP)
    await signIn(page)
    const fill = (path: string) =>
      page
        .locator(`[data-state="${path}"] > rect`)
        .first()
        .evaluate((r) => getComputedStyle(r).fill)
    const fresh = await fill('authenticated.fresh')
    const badge = await page.locator('.badge').evaluate((b) => getComputedStyle(b).color)
    const server = suite.visualizer.authServer
    const gate = await queueTenBehindHeldRefresh(page, server)
    const refreshing = await fill('refreshing.requesting')
    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
    // One colour per meaning, as the badge and tone.ts: fresh green, refreshing blue.
    expect(fresh, `fresh ${fresh} vs badge ${badge}`).not.toBe(refreshing)
  }, 90_000)
})

describe("the visualizer's Stately inspector link", () => {
  it('sends nothing once switched off, even when the inspector window greets again', async () => {
    // Before: the stopped inspector's 'message' listener stayed and replayed its whole buffer.
    const { page, context } = await suite.open(DESKTOP)
    await context.route('https://stately.ai/inspect**', (route) =>
      route.fulfill({ contentType: 'text/html', body: INSPECTOR_PAGE }),
    )
    const inspector = await openInspector(page, context)
    await page.waitForSelector('#inspector-status[data-status="connected"]')
    await signIn(page)
    await inspector.waitForFunction(() =>
      (window as unknown as Received).received.some((m) => m.includes('"LOGIN"')),
    )

    // Off: the page says it is gone.
    await page.getByLabel('Stately inspector').uncheck()
    await inspector.waitForFunction(() =>
      (window as unknown as Received).received.some((m) => m.includes('@statelyai.disconnected')),
    )
    // Once the page has handled the next greeting, a marker it sends then arrives after
    // anything it posted in reply (same source, in order).
    await page.evaluate(() => {
      window.addEventListener('message', function once(event) {
        if ((event.data as { type?: string })?.type !== '@statelyai.connected') return
        window.removeEventListener('message', once)
        window.open('', 'xstateinspector')?.postMessage('marker', '*')
      })
    })
    // The user reloads the inspector tab (or stately.ai reconnects): it greets its opener.
    await inspector.evaluate(() => {
      ;(window as unknown as Received).received = []
      window.opener.postMessage({ type: '@statelyai.connected' }, '*')
    })
    await inspector.waitForFunction(() =>
      (window as unknown as Received).received.includes('"marker"'),
    )
    const sent = await inspector.evaluate(() =>
      (window as unknown as Received).received.filter((m) => m !== '"marker"'),
    )
    expect(await page.getByLabel('Stately inspector').isChecked()).toBe(false)
    // Nothing: no registration, LOGIN or snapshot replayed to the window it was told to leave.
    expect(
      sent.map((m) => {
        const data = JSON.parse(m) as { type?: string; event?: { type?: string } }
        return `${data.type} ${data.event?.type ?? ''}`.trim()
      }),
    ).toEqual([])
  }, 90_000)

  it('keeps a connected inspector on when the reachability probe fails after the greeting', async () => {
    // Before: any probe failure switched the inspector off as unreachable, even once connected.
    const { page, context } = await suite.open(DESKTOP)
    await watchProbe(page)
    // The window loads (and greets); the page's own fetch to the same address is refused, as
    // an extension or a proxy that filters fetch() from other origins would do, once the
    // greeting has arrived.
    await context.route('https://stately.ai/inspect**', async (route) => {
      if (route.request().resourceType() === 'document') {
        await route.fulfill({ contentType: 'text/html', body: INSPECTOR_PAGE })
        return
      }
      await page.waitForSelector('#inspector-status[data-status="connected"]')
      await route.abort('blockedbyclient')
    })
    const inspector = await openInspector(page, context)
    await page.waitForFunction(() => (window as unknown as { probeSettled: boolean }).probeSettled)
    // The inspector window said it is connected: the link works, whatever the probe met.
    expect(await page.locator('#inspector-status').getAttribute('data-status')).toBe('connected')
    expect(await page.getByLabel('Stately inspector').isChecked()).toBe(true)
    expect(inspector.isClosed()).toBe(false)
  }, 90_000)

  it('connects when the inspector window greets after the reachability probe failed', async () => {
    // Before: the failed probe switched the inspector off before its window could greet.
    const { page, context } = await suite.open(DESKTOP)
    await watchProbe(page)
    const probeFailed = page.waitForEvent('requestfailed', (r) =>
      r.url().startsWith('https://stately.ai/'),
    )
    // The page's fetch is refused at once; the window loads only once the page has seen that.
    let statusAfterProbe: string | null = null
    await context.route('https://stately.ai/inspect**', async (route) => {
      if (route.request().resourceType() !== 'document') {
        await route.abort('blockedbyclient')
        return
      }
      await probeFailed
      await page.waitForFunction(
        () => (window as unknown as { probeSettled: boolean }).probeSettled,
      )
      statusAfterProbe = await page.locator('#inspector-status').getAttribute('data-status')
      await route.fulfill({ contentType: 'text/html', body: INSPECTOR_PAGE })
    })
    const _inspector = await openInspector(page, context)
    await page.waitForSelector('#inspector-status[data-status="connected"]')
    // The probe had failed, and the page waited for the window rather than giving up.
    expect(statusAfterProbe).toBe('opening')
    expect(await page.getByLabel('Stately inspector').isChecked()).toBe(true)
  }, 90_000)

  it('closes the window it opened when switched off before the inspector answered', async () => {
    // Before: the window (loading, or an error page) was left open behind the page.
    const { page, context } = await suite.open(DESKTOP)
    // A window that loads and never greets: stately.ai still starting, or not stately.ai at all.
    await context.route('https://stately.ai/inspect**', (route) =>
      route.request().resourceType() === 'document'
        ? route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>loading</title>' })
        : route.fulfill({ status: 200, body: '' }),
    )
    const inspector = await openInspector(page, context)
    expect(await page.locator('#inspector-status').getAttribute('data-status')).toBe('opening')
    const closed = inspector.waitForEvent('close')
    await page.getByLabel('Stately inspector').uncheck()
    await closed
    expect(await page.locator('#inspector-status').getAttribute('data-status')).toBe('off')
  }, 90_000)
})

describe("the visualizer's screenshot check", () => {
  const committed = () =>
    decodePng(readFileSync(resolve(import.meta.dirname, '../../docs/visualizer.png')))

  it('fails when the active state changes colour (blue to red), and passes the page as it is', async () => {
    // Before: tiles compared by luminance only (#2f6fed and #d0302a alike), with 2% allowed.
    const real = tileDifference(committed(), decodePng(await screenshotScene(suite, DESKTOP)))
    expect(real).toBeLessThan(MAX_TILE_DIFFERENCE)
    // The active state recoloured: a change a reader sees at once.
    const shot = await screenshotScene(
      suite,
      DESKTOP,
      '.state:not(.compound).active > rect { fill: #d0302a !important; stroke: #d0302a !important }',
    )
    expect(tileDifference(committed(), decodePng(shot))).toBeGreaterThanOrEqual(MAX_TILE_DIFFERENCE)
  }, 90_000)
})
