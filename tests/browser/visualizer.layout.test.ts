// How the visualizer reads, measured in Chromium at the walkthrough's two sizes: labels big
// enough on a phone, a chart that pans and zooms, edges that say where they go, text that
// does not wrap letter by letter, contrast, and what a screen reader is told.
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import {
  DESKTOP,
  PHONE,
  queueTenBehindHeldRefresh,
  signIn,
  state,
  visualizerSuite,
} from './visualizerPage.js'

const suite = visualizerSuite()

const open = (viewport: { width: number; height: number }) => suite.open(viewport)

/** The smallest text in the statechart, in CSS pixels as drawn (font size × the SVG's scale). */
function smallestChartText(page: Page): Promise<number> {
  return page.evaluate(() => {
    const svg = document.querySelector('svg.statechart') as SVGSVGElement
    const scale = svg.getScreenCTM()?.a ?? 0
    const sizes = [...svg.querySelectorAll('text')].map(
      (text) => Number.parseFloat(getComputedStyle(text).fontSize) * scale,
    )
    return Math.min(...sizes)
  })
}

const chartScale = async (page: Page) =>
  Number(await page.getByTestId('statechart').getAttribute('data-scale'))

describe('visualizer on a phone (390×844)', () => {
  it('draws the chart at a readable scale, and pans and zooms it', async () => {
    const { page } = await open(PHONE)
    // Fitted, the chart would be drawn at about 0.2×: it starts at 100% in a scroll box.
    expect(await smallestChartText(page)).toBeGreaterThanOrEqual(10)
    expect(await chartScale(page)).toBe(1)
    const viewport = page.locator('.chart-viewport')
    const box = await viewport.boundingBox()
    expect(box?.width).toBeLessThanOrEqual(PHONE.width)
    expect(await viewport.evaluate((v) => v.scrollWidth > v.clientWidth)).toBe(true)

    await page.getByRole('button', { name: 'Zoom out' }).click()
    await expect.poll(() => chartScale(page)).toBeCloseTo(0.8, 5)
    await page.getByRole('button', { name: 'Zoom in' }).click()
    await expect.poll(() => chartScale(page)).toBeCloseTo(1, 5)

    // Fit: the whole chart in the box (an overview; the labels are tiny then).
    await page.getByRole('button', { name: 'Fit' }).click()
    await page.waitForFunction(() => {
      const v = document.querySelector('.chart-viewport') as HTMLElement
      return v.scrollWidth <= v.clientWidth
    })
    expect(await chartScale(page)).toBeLessThan(0.3)
    await page.getByRole('button', { name: '100%' }).click()
    await expect.poll(() => chartScale(page)).toBe(1)

    // Ctrl+wheel (what a trackpad pinch sends) zooms; a plain wheel only scrolls.
    if (!box) throw new Error('the chart has no box')
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    await page.keyboard.down('Control')
    await page.mouse.wheel(0, 120)
    await page.keyboard.up('Control')
    await expect.poll(() => chartScale(page)).toBeLessThan(1)

    // Two fingers moving apart zoom in (synthetic touch pointers: Chromium has no multi-touch
    // input in headless mode).
    const before = await chartScale(page)
    await page.evaluate(
      ({ x, y }) => {
        const target = document.querySelector('.chart-viewport') as HTMLElement
        const touch = (type: string, pointerId: number, clientX: number) =>
          target.dispatchEvent(
            new PointerEvent(type, { pointerId, pointerType: 'touch', clientX, clientY: y }),
          )
        touch('pointerdown', 1, x - 20)
        touch('pointerdown', 2, x + 20)
        touch('pointermove', 2, x + 60)
        touch('pointerup', 1, x - 20)
        touch('pointerup', 2, x + 60)
      },
      { x: box.x + box.width / 2, y: box.y + box.height / 2 },
    )
    await expect.poll(() => chartScale(page)).toBeCloseTo(Math.min(3, before * 2), 5)
  }, 90_000)

  it('keeps the active state in view and the context readable', async () => {
    const { page } = await open(PHONE)
    const server = suite.visualizer.authServer
    await signIn(page)
    const gate = await queueTenBehindHeldRefresh(page, server)
    // The chart scrolled itself to the state the session entered.
    await page.waitForFunction(() => {
      const v = document.querySelector('.chart-viewport')?.getBoundingClientRect()
      const s = document
        .querySelector('[data-state="refreshing.requesting"] rect')
        ?.getBoundingClientRect()
      return v && s && s.left >= v.left && s.right <= v.right
    })

    // No value of the context wraps inside a word (they did, letter by letter): each word is
    // on one line, and the state's name is on a single line.
    const broken = await page.evaluate(() =>
      [...document.querySelectorAll('.facts dd')].flatMap((dd) => {
        const text = dd.firstChild
        if (!text || text.nodeType !== Node.TEXT_NODE) return []
        const words = [...(text.textContent ?? '').matchAll(/\S+/g)]
        return words.flatMap((word) => {
          const range = document.createRange()
          range.setStart(text, word.index)
          range.setEnd(text, word.index + word[0].length)
          return range.getClientRects().length > 1 ? [word[0]] : []
        })
      }),
    )
    expect(broken).toEqual([])
    const lines = await page.getByTestId('state-value').evaluate((dd) => {
      const range = document.createRange()
      range.selectNodeContents(dd)
      return range.getClientRects().length
    })
    expect(lines).toBe(1)
    gate.release()
    await page.waitForSelector(state('authenticated.fresh'))
  }, 90_000)
})

type Point = { x: number; y: number }
type Rect = { x: number; y: number; width: number; height: number }

/** The drawing as data, in chart units: boxes from `x/y/width/height`, edges from `d`. */
interface Drawing {
  authenticated: Rect
  children: Rect[]
  edges: { id: string; points: Point[] }[]
  labels: { of: string; box: Rect; titles: string }[]
  legend: string
}

function readDrawing(page: Page): Promise<Drawing> {
  return page.evaluate(() => {
    const rect = (element: Element | null): Rect => ({
      x: Number(element?.getAttribute('x')),
      y: Number(element?.getAttribute('y')),
      width: Number(element?.getAttribute('width')),
      height: Number(element?.getAttribute('height')),
    })
    const points = (d: string) =>
      [...d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => ({
        x: Number(m[1]),
        y: Number(m[2]),
      }))
    return {
      authenticated: rect(document.querySelector('[data-state="authenticated"] > rect')),
      children: [...document.querySelectorAll('[data-state^="authenticated."] > rect')].map(rect),
      edges: [...document.querySelectorAll('[data-edge]')].map((g) => ({
        id: g.getAttribute('data-edge') ?? '',
        points: points(g.querySelector('path.line')?.getAttribute('d') ?? ''),
      })),
      labels: [...document.querySelectorAll('[data-label-of]')].map((g) => ({
        of: g.getAttribute('data-label-of') ?? '',
        box: rect(g.querySelector('rect')),
        titles: g.querySelector('title')?.textContent ?? '',
      })),
      legend: document.querySelector('.legend')?.textContent ?? '',
    }
  })
}

/** The distance from a box to a polyline (0 when the line passes through the box). */
function distance(box: Rect, points: Point[]): number {
  let best = Number.POSITIVE_INFINITY
  for (let i = 1; i < points.length; i += 1) {
    const a = points[i - 1] as Point
    const b = points[i] as Point
    const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y)))
    for (let step = 0; step <= steps; step += 1) {
      const x = a.x + ((b.x - a.x) * step) / steps
      const y = a.y + ((b.y - a.y) * step) / steps
      const dx = Math.max(box.x - x, 0, x - (box.x + box.width))
      const dy = Math.max(box.y - y, 0, y - (box.y + box.height))
      best = Math.min(best, Math.hypot(dx, dy))
    }
  }
  return best
}

describe('visualizer on a desktop (1440×900)', () => {
  it('ends every edge into `authenticated` on its border, each at its own point', async () => {
    const { page } = await open(DESKTOP)
    const drawing = await readDrawing(page)
    const into = drawing.edges.filter((e) => e.id.endsWith('->authenticated'))
    expect(into.map((e) => e.id).sort()).toEqual([
      'expired->authenticated',
      'loggedOut->authenticated',
      'refreshing->authenticated',
      'refreshing.requesting->authenticated',
    ])
    const ends = into.map((e) => e.points[e.points.length - 1] as Point)
    const { authenticated: box } = drawing
    for (const end of ends) {
      // On the border (not inside, next to a child state) …
      const onVertical = Math.abs(end.x - box.x) < 1 || Math.abs(end.x - box.x - box.width) < 1
      const onHorizontal = Math.abs(end.y - box.y) < 1 || Math.abs(end.y - box.y - box.height) < 1
      expect(onVertical || onHorizontal).toBe(true)
      // … and well away from every child, so no arrow reads as entering `stale` or `fresh`.
      for (const child of drawing.children) {
        expect(distance(child, [end, end])).toBeGreaterThanOrEqual(20)
      }
    }
    // Each edge ends at a point of its own (they ended 10 px apart next to `stale`).
    for (const [i, a] of ends.entries()) {
      for (const b of ends.slice(i + 1)) {
        expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThanOrEqual(20)
      }
    }
  }, 90_000)

  it('puts each label on its own edge only, and explains [else]', async () => {
    const { page } = await open(DESKTOP)
    const drawing = await readDrawing(page)
    expect(drawing.labels.length).toBe(drawing.edges.length)
    for (const label of drawing.labels) {
      const own = drawing.edges.find((e) => e.id === label.of)
      if (!own) throw new Error(`no edge ${label.of}`)
      // The edge runs through its label; every other edge keeps clear of it.
      expect(distance(label.box, own.points), label.of).toBeLessThanOrEqual(1)
      for (const other of drawing.edges.filter((e) => e !== own)) {
        expect(distance(label.box, other.points), `${label.of} vs ${other.id}`).toBeGreaterThan(4)
      }
    }
    // Labels do not overlap each other.
    for (const [i, a] of drawing.labels.entries()) {
      for (const b of drawing.labels.slice(i + 1)) {
        const apart =
          a.box.x + a.box.width <= b.box.x ||
          b.box.x + b.box.width <= a.box.x ||
          a.box.y + a.box.height <= b.box.y ||
          b.box.y + b.box.height <= a.box.y
        expect(apart, `${a.of} / ${b.of}`).toBe(true)
      }
    }

    // [else] is spelled out: in the legend, and on each label that has one, naming the guards.
    expect(drawing.legend).toMatch(/\[else\]the fallback.*none of the guards before it holds/)
    const toStale = drawing.labels.find(
      (l) => l.of === 'refreshing.requesting->authenticated.stale',
    )
    expect(toStale?.titles).toContain(
      'refresh error [else]: taken when none of isRefreshRejected, hasAttemptsLeft holds',
    )
    expect(toStale?.titles).toContain(
      'after refreshTimeout [else]: taken when hasAttemptsLeft does not hold',
    )
    const inside = await page
      .locator('[data-state="authenticated"] > text.state-detail', { hasText: '[else]' })
      .locator('title')
      .allTextContents()
    expect(inside.sort()).toEqual([
      'NONCE_CHALLENGED [else]: taken when isOtherEpoch does not hold',
      'TOKEN_REJECTED [else]: taken when none of isOtherEpoch, isCurrentGeneration holds',
    ])
  }, 90_000)

  it('keeps header text at a contrast of 4.5:1 or more, in every tone of the badge', async () => {
    const { page } = await open(DESKTOP)
    const worst = async () =>
      page.evaluate(() => {
        const rgb = (colour: string) => (colour.match(/[\d.]+/g) ?? []).map(Number)
        const luminance = ([r = 0, g = 0, b = 0]: number[]) => {
          const [R, G, B] = [r, g, b].map((c) => {
            const v = c / 255
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4
          })
          return 0.2126 * (R ?? 0) + 0.7152 * (G ?? 0) + 0.0722 * (B ?? 0)
        }
        const background = (element: Element | null): number[] => {
          for (let at = element; at; at = at.parentElement) {
            const colour = rgb(getComputedStyle(at).backgroundColor)
            if (colour.length === 3 || colour[3] === 1) return colour
          }
          return [255, 255, 255]
        }
        const texts = [...document.querySelectorAll('header.top *')].filter((element) =>
          [...element.childNodes].some(
            (n) => n.nodeType === Node.TEXT_NODE && n.textContent?.trim(),
          ),
        )
        return texts
          .map((element) => {
            const a = luminance(rgb(getComputedStyle(element).color))
            const b = luminance(background(element))
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)
            return { text: element.textContent?.trim().slice(0, 40), ratio }
          })
          .sort((x, y) => x.ratio - y.ratio)[0]
      })
    // loggedOut (neutral), then fresh (ok), mid-refresh (busy), stale (warn), expired (bad).
    expect((await worst())?.ratio).toBeGreaterThanOrEqual(4.5)
    await signIn(page)
    expect((await worst())?.ratio).toBeGreaterThanOrEqual(4.5)
    const server = suite.visualizer.authServer
    const gate = await queueTenBehindHeldRefresh(page, server)
    expect((await worst())?.ratio).toBeGreaterThanOrEqual(4.5)
    server.failNextRefresh('reset', { times: Number.POSITIVE_INFINITY })
    gate.release()
    await page.waitForSelector(state('authenticated.stale'))
    expect((await worst())?.ratio).toBeGreaterThanOrEqual(4.5)
    server.clearFaults()
    server.revokeSessions()
    await page.getByRole('button', { name: 'Wake' }).click()
    await page.waitForSelector(state('expired'))
    expect((await worst())?.ratio).toBeGreaterThanOrEqual(4.5)
  }, 90_000)

  it('loads without a failed request, and announces the counters with their labels', async () => {
    const context = await suite.browser.newContext({ viewport: DESKTOP })
    suite.track(context)
    const page = await context.newPage()
    const failed: string[] = []
    page.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`))
    page.on('requestfailed', (r) => failed.push(`failed ${r.url()}`))
    page.on('console', (m) => m.type() === 'error' && failed.push(m.text()))
    await page.goto(suite.visualizer.url)
    await page.waitForSelector('svg[data-ready="true"]')
    await page.waitForSelector('[data-counter="refreshCalls"]:not(:empty)')
    // A favicon included: it is inline, so the browser asks for no /favicon.ico.
    expect(failed).toEqual([])

    const region = page.getByRole('region', { name: 'Token server counters' })
    expect(await region.locator('[aria-live]').getAttribute('aria-live')).toBe('polite')
    const counters = await region.locator('.counter').evaluateAll((counters) =>
      counters.map((counter) => ({
        atomic: counter.getAttribute('aria-atomic'),
        read: [...counter.children].map((child) => child.tagName).join(' '),
        text: counter.textContent,
      })),
    )
    expect(counters.length).toBe(8)
    for (const counter of counters) {
      expect(counter).toMatchObject({ atomic: 'true', read: 'DT DD' })
    }
    expect(counters[0]?.text).toMatch(/^refresh calls\d+$/)
  }, 90_000)
})
