import type { Browser, BrowserContext, Page, Route } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './chromium.js'
import { startPageServer } from './pageServer.js'

// Invariant 5 as the browser sees it: the URL a request really goes to is the one Chromium
// resolves (WHATWG), not the one a library guesses. Every request leaving the page is caught
// by `page.route` and answered there, so evil.example and friends are never contacted.

interface Lab {
  blobUrl: string
  open(options: { baseURL?: string; attachTo?: string[] }): void
  fire(url: string): Promise<{ attached: boolean; ok: boolean }>
  close(): void
}
declare global {
  interface Window {
    lab: Lab
    labReady?: boolean
  }
}

interface Seen {
  method: string
  url: string
  authorization: string | undefined
}

let browser: Browser
let pages: Awaited<ReturnType<typeof startPageServer>>
let context: BrowserContext
let page: Page
const seen: Seen[] = []

/** The page and its scripts load; every request the page's code makes is recorded and answered. */
async function handle(route: Route) {
  const request = route.request()
  if (request.resourceType() === 'document' || request.resourceType() === 'script') {
    return route.continue()
  }
  const headers = await request.allHeaders()
  seen.push({ method: request.method(), url: request.url(), authorization: headers.authorization })
  return route.fulfill({
    status: 200,
    contentType: 'application/json',
    headers: {
      'access-control-allow-origin': headers.origin ?? '*',
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-allow-methods': 'GET, OPTIONS',
    },
    body: '{}',
  })
}

beforeAll(async () => {
  browser = await launchChromium()
  pages = await startPageServer()
  context = await browser.newContext()
  page = await context.newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  await page.route('**/*', handle)
  await page.goto(`${pages.url}/origin.html`)
  await page.waitForFunction(() => window.labReady === true)
})
afterAll(async () => {
  await context?.close()
  await browser?.close()
  await pages?.close()
})

/** URL forms; PAGE stands for the page's host:port, BLOB for a blob URL the page made. */
const EVIL_FORMS = [
  '/\\evil.example/x',
  '\\\\evil.example/x',
  '//evil.example/x',
  '/\t/evil.example/x',
  '/\n/evil.example/x',
  '\t//evil.example/x',
  ' /\\evil.example/x',
  'http://evil.example@PAGE/x',
  'http://PAGE@evil.example/x',
  'HTTP://PAGE/x',
  'http://evil.example:80/x',
  'http://[::1]:PORT/x',
  'http://ëvil.example/x',
  'http://xn--vil-ima.example/x',
  'http://bücher.example/x',
  'http://api.example:80/x',
  'BLOB',
  'data:text/plain,hello',
  'javascript:void(0)',
]
const PLAIN = ['/api/x', 'x', '', 'http://PAGE/api/x']

function expand(form: string): string {
  const { host, port } = new URL(pages.url)
  return form
    .replace('PAGE', host)
    .replace('PORT', port)
    .replace(/^BLOB$/, () => blobUrl)
}
let blobUrl = ''

interface Row {
  form: string
  attached: boolean
  requested: Seen[]
}

/** One fresh client; fires `forms` one after the other and records what left for each. */
async function run(options: { baseURL?: string; attachTo?: string[] }, forms: string[]) {
  await page.evaluate((o) => window.lab.open(o), options)
  const rows: Row[] = []
  for (const form of forms) {
    const before = seen.length
    const { attached } = await page.evaluate((url) => window.lab.fire(url), expand(form))
    rows.push({ form, attached, requested: seen.slice(before) })
  }
  await page.evaluate(() => window.lab.close())
  return rows
}

/** The token went exactly to the requests whose real origin is allowed, and nowhere else. */
function expectTokenOnlyTo(rows: Row[], allowed: string[]) {
  for (const row of rows) {
    const label = `${JSON.stringify(row.form)} → ${row.requested.map((r) => r.url).join(', ')}`
    for (const request of row.requested) {
      const origin = new URL(request.url).origin
      const expected = request.method === 'OPTIONS' ? undefined : allowed.includes(origin)
      if (expected === undefined) continue
      expect(request.authorization === 'Bearer tok', label).toBe(expected)
    }
    // No network request (blob:, data:, javascript:): the client must not have attached.
    if (row.requested.length === 0) expect(row.attached, label).toBe(false)
    else expect(row.attached, label).toBe(row.requested.some((r) => r.authorization))
  }
}

describe('the token goes only where Chromium really sends the request', () => {
  beforeAll(async () => {
    blobUrl = await page.evaluate(() => window.lab.blobUrl)
  })

  const variants: Array<[string, { baseURL?: string; attachTo?: string[] }]> = [
    ['axios.create()', {}],
    ["baseURL '/'", { baseURL: '/' }],
    ["baseURL '/api'", { baseURL: '/api' }],
    ['baseURL = page origin', { baseURL: 'PAGE_ORIGIN' }],
    ['attachTo lists IDN and default-port origins', { attachTo: ['EXTRA'] }],
  ]
  const resolve = (options: { baseURL?: string; attachTo?: string[] }) => {
    const base = options.baseURL === 'PAGE_ORIGIN' ? pages.url : options.baseURL
    return {
      ...(base === undefined ? {} : { baseURL: base }),
      ...(options.attachTo
        ? { attachTo: [pages.url, 'http://bücher.example', 'http://api.example:80'] }
        : {}),
    }
  }
  const allowedFor = (options: { attachTo?: string[] }) =>
    options.attachTo
      ? [pages.url, 'http://xn--bcher-kva.example', 'http://api.example']
      : [pages.url]

  describe.each(variants)('%s', (_, options) => {
    it('plain relative requests first, then the evil forms, then plain again', async () => {
      const rows = await run(resolve(options), [...PLAIN, ...EVIL_FORMS, ...PLAIN])
      expectTokenOnlyTo(rows, allowedFor(options))
      // The page's own API got the token every time, before and after.
      const plain = rows.filter((row) => PLAIN.includes(row.form))
      for (const row of plain) expect(row.requested.at(-1)?.authorization, row.form).toBeDefined()
    })

    it('the evil forms first, then plain relative requests', async () => {
      const rows = await run(resolve(options), [...EVIL_FORMS, ...PLAIN])
      expectTokenOnlyTo(rows, allowedFor(options))
      const plain = rows.filter((row) => PLAIN.includes(row.form))
      for (const row of plain) expect(row.requested.at(-1)?.authorization, row.form).toBeDefined()
    })
  })

  it('the table is not vacuous: Chromium sends the backslash and tab forms to evil.example', async () => {
    const rows = await run({}, ['/\\evil.example/x', '\\\\evil.example/x', '/\t/evil.example/x'])
    for (const row of rows) {
      expect(row.requested.map((r) => new URL(r.url).host)).toContain('evil.example')
      expect(row.attached).toBe(false)
    }
    // And the IDN form reaches its punycode host, the userinfo forms their real host.
    const [idn, userinfo] = await run({}, ['http://ëvil.example/x', 'http://PAGE@evil.example/x'])
    expect(idn?.requested[0]?.url).toBe(new URL('http://ëvil.example/x').href)
    expect(new URL(userinfo?.requested[0]?.url ?? 'http://none').host).toBe('evil.example')
  })
})
