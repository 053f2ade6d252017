import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { launchChromium } from './chromium.js'
import { startPageServer } from './pageServer.js'

interface TabApi {
  refreshCalls: number
  warnings: string[]
  state(): string
  token(): string | null
  block(on: boolean): void
  login(): Promise<void>
  logout(): Promise<void>
  key(): Promise<{ jkt: string; extractable: boolean }>
  fire(n: number): Promise<{ ok: number; errors: string[] }>
}
declare global {
  interface Window {
    tab: TabApi
    tabReady?: boolean
  }
}

type Transport = 'axios' | 'fetch'

/** How each transport's requests show in Chromium's network log, by resource type. */
const RESOURCE_TYPE: Record<Transport, string> = { axios: 'xhr', fetch: 'fetch' }

let transport: Transport
/** What the tabs of the running test sent: resource types of /api/resource, modules loaded. */
let sent: Set<string>

let browser: Browser
let pages: Awaited<ReturnType<typeof startPageServer>>
let server: TestAuthServer
let context: BrowserContext

beforeAll(async () => {
  browser = await launchChromium()
  pages = await startPageServer()
})
afterAll(async () => {
  await browser?.close()
  await pages?.close()
})
afterEach(async () => {
  await context?.close()
  await server?.close()
  // Every scenario ran on the transport it names: the protected requests were XHRs (axios) or
  // fetches, and a fetch page never loaded axios.
  const expected = [RESOURCE_TYPE[transport], ...(transport === 'axios' ? ['axios loaded'] : [])]
  expect([...sent].sort()).toEqual(expected.sort())
})

/** Opens `count` tabs of one browser profile, each running the built library. */
async function openTabs(via: Transport, count: number, storage = 'memory', query = '') {
  transport = via
  sent = new Set()
  server = await createTestAuthServer(query.includes('dpop=1') ? { dpop: { nonce: 'both' } } : {})
  context = await browser.newContext()
  const tabs: Page[] = []
  for (let i = 0; i < count; i += 1) tabs.push(await openTab(storage, query))
  return tabs
}

async function openTab(storage: string, query: string): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  page.on('request', (request) => {
    const { pathname } = new URL(request.url())
    if (pathname === '/api/resource') sent.add(request.resourceType())
    if (pathname.startsWith('/node_modules/axios/')) sent.add('axios loaded')
  })
  await page.goto(
    `${pages.url}/tab.html?api=${encodeURIComponent(server.url)}&storage=${storage}&transport=${transport}${query}`,
  )
  await page.waitForFunction(() => window.tabReady === true)
  return page
}

const untilState = (page: Page, state: string) =>
  page.waitForFunction((s) => window.tab.state() === s, state)

async function signInAll(tabs: Page[]) {
  await tabs[0]?.evaluate(() => window.tab.login())
  await Promise.all(tabs.map((tab) => untilState(tab, 'authenticated')))
}

const fireAll = (tabs: Page[], perTab: number) =>
  Promise.all(tabs.map((tab) => tab.evaluate((n) => window.tab.fire(n), perTab)))

describe.each<Transport>(['axios', 'fetch'])('across tabs, in Chromium, through %s', (via) => {
  it.each([2, 4, 8])(
    '%i tabs on an expired token: 1 refresh, 0 reuse detections, every request succeeds',
    async (count) => {
      const tabs = await openTabs(via, count)
      await signInAll(tabs)
      server.expireAccessTokens()

      const results = await fireAll(tabs, 10)

      for (const result of results) expect(result).toEqual({ ok: 10, errors: [] })
      expect(server.counters.refreshCalls).toBe(1)
      expect(server.counters.reuseDetections).toBe(0)
      expect(server.maxConcurrentRefreshes).toBe(1)
    },
  )

  it('20 expiry rounds with 4 tabs on localStorage: 20 refreshes in total', async () => {
    const tabs = await openTabs(via, 4, 'local')
    await signInAll(tabs)
    for (let round = 1; round <= 20; round += 1) {
      server.expireAccessTokens()
      const results = await fireAll(tabs, 3)
      for (const result of results) expect(result).toEqual({ ok: 3, errors: [] })
      expect(server.counters.refreshCalls).toBe(round)
    }
    expect(server.counters.reuseDetections).toBe(0)
    // Every tab ends on the same, current session.
    const tokens = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.tab.token())))
    expect(new Set(tokens).size).toBe(1)
  })

  it('logout in one tab: every tab reaches loggedOut and sends nothing more with the old token', async () => {
    const tabs = await openTabs(via, 3)
    await signInAll(tabs)
    await tabs[1]?.evaluate(() => window.tab.logout())
    await Promise.all(tabs.map((tab) => untilState(tab, 'loggedOut')))

    const before = server.requests.length
    const results = await fireAll(tabs, 2)
    for (const result of results) expect(result.ok).toBe(0)
    const after = server.requests.slice(before)
    expect(after.length).toBeGreaterThan(0)
    expect(after.every((r) => r.authorization === undefined)).toBe(true)
  })

  it('login in one tab signs the others in', async () => {
    const tabs = await openTabs(via, 3)
    for (const tab of tabs) expect(await tab.evaluate(() => window.tab.state())).toBe('loggedOut')
    await tabs[2]?.evaluate(() => window.tab.login())
    await Promise.all(tabs.map((tab) => untilState(tab, 'authenticated')))
    const results = await fireAll(tabs, 2)
    for (const result of results) expect(result).toEqual({ ok: 2, errors: [] })
    expect(server.counters.logins).toBe(1)
  })

  it('a tab opened later, with memory storage, gets the session from the open tabs', async () => {
    const tabs = await openTabs(via, 2)
    await signInAll(tabs)
    const late = await openTab('memory', '')
    await untilState(late, 'authenticated')
    expect(await late.evaluate(() => window.tab.fire(2))).toEqual({ ok: 2, errors: [] })
    expect(server.counters.logins).toBe(1)
    expect(server.counters.refreshCalls).toBe(0)
  })

  it('the tab holding the lock is closed mid-refresh: another tab completes the refresh', async () => {
    const [holder, other] = await openTabs(via, 2)
    if (!holder || !other) throw new Error('tabs did not open')
    await signInAll([holder, other])
    await holder.evaluate(() => window.tab.block(true))
    server.expireAccessTokens()

    void holder.evaluate(() => window.tab.fire(1)).catch(() => undefined)
    await holder.waitForFunction(() => window.tab.refreshCalls === 1)
    await other.waitForFunction(async () => {
      const { held } = await navigator.locks.query()
      return held?.some((lock) => lock.name?.endsWith(':refresh')) ?? false
    })
    const waiting = other.evaluate(() => window.tab.fire(3))
    await other.waitForFunction(() => window.tab.state() === 'refreshing')

    await holder.close()
    expect(await waiting).toEqual({ ok: 3, errors: [] })
    expect(server.counters.refreshCalls).toBe(1)
    expect(server.counters.reuseDetections).toBe(0)
  })

  it('without Web Locks, BroadcastChannel and IndexedDB: in-tab single flight, no error', async () => {
    const [tab] = await openTabs(via, 1, 'local', '&degrade=1')
    if (!tab) throw new Error('tab did not open')
    expect(await tab.evaluate(() => typeof BroadcastChannel)).toBe('undefined')
    await tab.evaluate(() => window.tab.login())
    for (let round = 1; round <= 3; round += 1) {
      server.expireAccessTokens()
      expect(await tab.evaluate(() => window.tab.fire(10))).toEqual({ ok: 10, errors: [] })
      expect(server.counters.refreshCalls).toBe(round)
    }
    expect(await tab.evaluate(() => window.tab.warnings)).toEqual([])
  })

  it('localStorage that throws: each tab still works, with a warning', async () => {
    const tabs = await openTabs(via, 2, 'throwing')
    await signInAll(tabs)
    server.expireAccessTokens()
    const results = await fireAll(tabs, 5)
    for (const result of results) expect(result).toEqual({ ok: 5, errors: [] })
    expect(server.counters.refreshCalls).toBe(1)
    const warnings = await tabs[0]?.evaluate(() => window.tab.warnings)
    expect(warnings?.join('\n')).toMatch(/storage\.(get|set)\(\) failed/)
  })
})

describe.each<Transport>(['axios', 'fetch'])('DPoP across tabs, in Chromium, through %s', (via) => {
  const keys = (tabs: Page[]) =>
    Promise.all(tabs.map((tab) => tab.evaluate(() => window.tab.key())))

  it('4 tabs sign with one non-extractable key from IndexedDB: 1 refresh per expiry, every request verified', async () => {
    const tabs = await openTabs(via, 4, 'memory', '&dpop=1')
    await signInAll(tabs)
    const signedIn = await keys(tabs)
    expect(new Set(signedIn.map((k) => k.jkt)).size).toBe(1)
    expect(signedIn.every((k) => !k.extractable)).toBe(true)

    for (let round = 1; round <= 3; round += 1) {
      server.rotateDpopNonce()
      server.expireAccessTokens()
      const results = await fireAll(tabs, 5)
      for (const result of results) expect(result).toEqual({ ok: 5, errors: [] })
      expect(server.counters.refreshSuccesses).toBe(round)
    }
    expect(server.counters).toMatchObject({ reuseDetections: 0, dpopProofsRefused: 0 })
    // Every protected request went as DPoP, with a proof the server verified.
    const api = server.requests.filter((r) => r.path === '/api/resource' && r.method === 'GET')
    expect(api.length).toBeGreaterThanOrEqual(60)
    expect(api.every((r) => r.authorization?.startsWith('DPoP ') && r.dpop)).toBe(true)
  })

  it('logout in one tab deletes the key everywhere; the next sign-in, from another tab, makes a new one', async () => {
    const tabs = await openTabs(via, 3, 'memory', '&dpop=1')
    await signInAll(tabs)
    const [before] = await keys(tabs)
    await tabs[1]?.evaluate(() => window.tab.logout())
    await Promise.all(tabs.map((tab) => untilState(tab, 'loggedOut')))

    await tabs[2]?.evaluate(() => window.tab.login())
    await Promise.all(tabs.map((tab) => untilState(tab, 'authenticated')))
    const after = await keys(tabs)
    expect(new Set(after.map((k) => k.jkt)).size).toBe(1)
    expect(after[0]?.jkt).not.toBe(before?.jkt)
    const results = await fireAll(tabs, 2)
    for (const result of results) expect(result).toEqual({ ok: 2, errors: [] })
  })

  it('a tab opened later gets the session and its key from the open tabs', async () => {
    const tabs = await openTabs(via, 2, 'memory', '&dpop=1')
    await signInAll(tabs)
    const late = await openTab('memory', '&dpop=1')
    await untilState(late, 'authenticated')
    expect(await late.evaluate(() => window.tab.fire(3))).toEqual({ ok: 3, errors: [] })
    expect((await keys([late]))[0]?.jkt).toBe((await keys(tabs))[0]?.jkt)
    expect(server.counters.refreshCalls).toBe(0)
  })
})
