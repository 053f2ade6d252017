// The READMEs' screenshots, kept current: the page is put in one deterministic state (mid-
// refresh, ten requests queued, the refresh held at the server) at the walkthrough's two
// sizes. `UPDATE_SCREENSHOT=1` writes them to docs/; otherwise the committed files must be
// PNGs of the viewport's size that still look like the live page (a coarse tile comparison:
// clocks, the port and anti-aliasing differ from run to run, a changed layout does not pass).
// Every run leaves its screenshots in test-results/ to look at.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodePng, pngSize, tileDifference } from './png.js'
import {
  counterShows,
  DESKTOP,
  logShows,
  PHONE,
  signIn,
  state,
  visualizerSuite,
} from './visualizerPage.js'

const UPDATE = process.env.UPDATE_SCREENSHOT === '1'
const docs = resolve(import.meta.dirname, '../../docs')
const results = resolve(import.meta.dirname, '../../test-results')
/**
 * Share of 8×8 tiles allowed to differ. Two runs on one machine differ by 0.03%; an empty
 * page differs from the desktop screenshot by 9%, a chart laid out anew by far more than 2%.
 */
const MAX_DIFFERENCE = 0.02

const suite = visualizerSuite()

/** The page mid-refresh, as the README describes it, captured at the viewport's size. */
async function screenshot(viewport: { width: number; height: number }): Promise<Buffer> {
  const { page } = await suite.open(viewport)
  const server = suite.visualizer.authServer
  await signIn(page)
  server.resetCounters()
  const gate = server.hold('/auth/refresh')
  server.expireAccessTokens()
  await page.getByRole('button', { name: 'Fire 10 requests' }).click()
  await gate.untilWaiting(1)
  await page.waitForSelector(state('refreshing.requesting'))
  await page.waitForSelector('[data-queue-size="10"]')
  await logShows(page, '×9')
  await counterShows(page, 'unauthorized', 10)
  await counterShows(page, 'refreshInFlight', 1)
  // No hover on the last button clicked; the top of the page, as it opens.
  await page.mouse.move(0, 0)
  await page.evaluate(() => window.scrollTo(0, 0))
  const shot = await page.screenshot()
  gate.release()
  await page.waitForSelector(state('authenticated.fresh'))
  return shot
}

describe('visualizer screenshots', () => {
  for (const [file, viewport] of [
    ['visualizer.png', DESKTOP],
    ['visualizer-phone.png', PHONE],
  ] as const) {
    it(`keeps docs/${file} current (${viewport.width}×${viewport.height})`, async () => {
      const shot = await screenshot(viewport)
      mkdirSync(results, { recursive: true })
      writeFileSync(join(results, file), shot)
      if (UPDATE) writeFileSync(join(docs, file), shot)

      const committed = readFileSync(join(docs, file))
      expect(pngSize(committed)).toEqual(viewport)
      expect(tileDifference(decodePng(committed), decodePng(shot))).toBeLessThan(MAX_DIFFERENCE)
    }, 90_000)
  }
})
