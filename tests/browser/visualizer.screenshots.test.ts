// The READMEs' screenshots, kept current: the page is put in one deterministic state (mid-
// refresh, ten requests queued, the refresh held at the server) at the walkthrough's two
// sizes. `UPDATE_SCREENSHOT=1` writes them to docs/; otherwise the committed files must be
// PNGs of the viewport's size that still look like the live page (8×8 tiles compared per colour
// channel: anti-aliasing may differ from run to run, clock times and the port are fixed by
// screenshotScene; a changed layout or a recoloured state does not pass).
// Every run leaves its screenshots in test-results/ to look at.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodePng, MAX_TILE_DIFFERENCE, pngSize, tileDifference } from './png.js'
import { DESKTOP, PHONE, screenshotScene, visualizerSuite } from './visualizerPage.js'

const UPDATE = process.env.UPDATE_SCREENSHOT === '1'
const docs = resolve(import.meta.dirname, '../../docs')
const results = resolve(import.meta.dirname, '../../test-results')
const suite = visualizerSuite()

describe('visualizer screenshots', () => {
  for (const [file, viewport] of [
    ['visualizer.png', DESKTOP],
    ['visualizer-phone.png', PHONE],
  ] as const) {
    it(`keeps docs/${file} current (${viewport.width}×${viewport.height})`, async () => {
      const shot = await screenshotScene(suite, viewport)
      mkdirSync(results, { recursive: true })
      writeFileSync(join(results, file), shot)
      if (UPDATE) writeFileSync(join(docs, file), shot)

      const committed = readFileSync(join(docs, file))
      expect(pngSize(committed)).toEqual(viewport)
      expect(tileDifference(decodePng(committed), decodePng(shot))).toBeLessThan(
        MAX_TILE_DIFFERENCE,
      )
    }, 90_000)
  }
})
