import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  CrossTabScopeError,
  crossTabName,
  releaseCrossTabName,
} from '../../src/coordination/tabs/scope.js'
import { type AuthError, memorySession, type TokenStorage } from '../../src/index.js'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { launchChromium } from './chromium.js'
import { startPageServer } from './pageServer.js'

// Cross-tab coordination is scoped: clients with different attachTo or storage never share a
// session (and so a token), while the tabs of one app still do.

interface MakeOptions {
  api: string
  storage?: string
  name?: string
  predicateFor?: string
}
interface ScopeApi {
  make(id: string, options: MakeOptions): Promise<{ name: string; code: string } | null>
  login(id: string): Promise<string>
  state(id: string): string
  token(id: string): string | null
  fire(id: string, n: number): Promise<number>
}
declare global {
  interface Window {
    scope: ScopeApi
    scopeReady?: boolean
  }
}

let browser: Browser
let pages: Awaited<ReturnType<typeof startPageServer>>
let context: BrowserContext | undefined
let apiA: TestAuthServer
let apiB: TestAuthServer

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
  context = undefined
  await apiA?.close()
  await apiB?.close()
})

/** Two token servers (the app's API and a partner's) and `count` tabs of one profile. */
async function openTabs(count: number): Promise<Page[]> {
  apiA = await createTestAuthServer()
  apiB = await createTestAuthServer()
  context = await browser.newContext()
  const tabs: Page[] = []
  for (let i = 0; i < count; i += 1) {
    const page = await context.newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${pages.url}/scope.html`)
    await page.waitForFunction(() => window.scopeReady === true)
    tabs.push(page)
  }
  return tabs
}

const make = (tab: Page, id: string, options: MakeOptions) =>
  tab.evaluate(([i, o]) => window.scope.make(i, o), [id, options] as const)
const state = (tab: Page, id: string) => tab.evaluate((i) => window.scope.state(i), id)
const token = (tab: Page, id: string) => tab.evaluate((i) => window.scope.token(i), id)
const fire = (tab: Page, id: string, n: number) =>
  tab.evaluate(([i, count]) => window.scope.fire(i, count), [id, n] as const)
const untilState = (tab: Page, id: string, s: string) =>
  tab.waitForFunction(([i, want]) => window.scope.state(i) === want, [id, s] as const)

/** Every Authorization header a server received. */
const tokensAt = (server: TestAuthServer) =>
  server.requests.flatMap((r) => (r.authorization ? [r.authorization] : []))

describe('cross-tab scope, in Chromium', () => {
  it('app and partner clients on one page: the app login never reaches the partner', async () => {
    const tabs = await openTabs(2)
    for (const tab of tabs) {
      expect(await make(tab, 'app', { api: apiA.url })).toBeNull()
      expect(await make(tab, 'partner', { api: apiB.url })).toBeNull()
    }
    const [first, second] = tabs as [Page, Page]

    const appToken = await first.evaluate(() => window.scope.login('app'))
    // The login travels to the app in the other tab: the channel works...
    await untilState(second, 'app', 'authenticated')
    expect(await token(second, 'app')).toBe(appToken)
    // ...and reaches no partner client, in this tab or the other.
    for (const tab of tabs) expect(await state(tab, 'partner')).toBe('loggedOut')

    for (const tab of tabs) {
      expect(await fire(tab, 'app', 2)).toBe(2)
      expect(await fire(tab, 'partner', 2)).toBe(0)
    }
    expect(tokensAt(apiB)).toEqual([])
    expect(tokensAt(apiA).length).toBe(4)
    expect(new Set(tokensAt(apiA))).toEqual(new Set([`Bearer ${appToken}`]))

    // The partner signs in on its own: its tabs share that, the app keeps its own session.
    const partnerToken = await second.evaluate(() => window.scope.login('partner'))
    await untilState(first, 'partner', 'authenticated')
    expect(await token(first, 'partner')).toBe(partnerToken)
    for (const tab of tabs) expect(await token(tab, 'app')).toBe(appToken)
    for (const tab of tabs) expect(await fire(tab, 'partner', 1)).toBe(1)
    expect(new Set(tokensAt(apiB))).toEqual(new Set([`Bearer ${partnerToken}`]))
    expect(tokensAt(apiA)).not.toContain(`Bearer ${partnerToken}`)
  })

  it('two tabs of the same app on localStorage still share a login and one refresh', async () => {
    const tabs = await openTabs(2)
    for (const tab of tabs) {
      expect(await make(tab, 'app', { api: apiA.url, storage: 'local:app' })).toBeNull()
    }
    const [first, second] = tabs as [Page, Page]
    await first.evaluate(() => window.scope.login('app'))
    await untilState(second, 'app', 'authenticated')
    expect(await token(second, 'app')).toBe(await token(first, 'app'))

    apiA.expireAccessTokens()
    const results = await Promise.all(tabs.map((tab) => fire(tab, 'app', 5)))
    expect(results).toEqual([5, 5])
    expect(apiA.counters.refreshCalls).toBe(1)
    expect(apiA.counters.reuseDetections).toBe(0)
    expect(apiA.counters.logins).toBe(1)
  })

  it('same attachTo, different storage keys: separate sessions', async () => {
    const [tab] = (await openTabs(1)) as [Page]
    expect(await make(tab, 'one', { api: apiA.url, storage: 'local:one' })).toBeNull()
    expect(await make(tab, 'two', { api: apiA.url, storage: 'local:two' })).toBeNull()
    await tab.evaluate(() => window.scope.login('one'))
    await untilState(tab, 'one', 'authenticated')
    // A round trip through the server gives a stray message time to arrive.
    expect(await fire(tab, 'one', 1)).toBe(1)
    expect(await state(tab, 'two')).toBe('loggedOut')
  })

  it('an explicit crossTab name is used as given: clients opting in share', async () => {
    const [tab] = (await openTabs(1)) as [Page]
    expect(await make(tab, 'x', { api: apiA.url, name: 'shared' })).toBeNull()
    expect(await make(tab, 'y', { api: apiA.url, name: 'shared', storage: 'local:y' })).toBeNull()
    await tab.evaluate(() => window.scope.login('x'))
    await untilState(tab, 'y', 'authenticated')
  })

  it('a second predicate client without a name throws CrossTabScopeError', async () => {
    const [tab] = (await openTabs(1)) as [Page]
    expect(await make(tab, 'p1', { api: apiA.url, predicateFor: apiA.url })).toBeNull()
    expect(await make(tab, 'p2', { api: apiB.url, predicateFor: apiB.url })).toEqual({
      name: 'CrossTabScopeError',
      code: 'INVALID_OPTIONS',
    })
    expect(
      await make(tab, 'p3', { api: apiB.url, predicateFor: apiB.url, name: 'partner' }),
    ).toBeNull()
  })

  it('Chromium and Node derive the same default name', async () => {
    const [tab] = (await openTabs(1)) as [Page]
    // A string, so the test runner's rewriting of `import()` stays out of the page.
    const inChromium = await tab.evaluate(`
      import('/dist/src/coordination/tabs/scope.js').then(({ crossTabName }) =>
        crossTabName(undefined, [${JSON.stringify(apiA.url)}, /^https:\\/\\/[a-z]+\\.partner\\.example$/i], {
          id: 'local:app', get: () => null, set() {}, remove() {},
        }))`)
    const inNode = crossTabName(undefined, [apiA.url, /^https:\/\/[a-z]+\.partner\.example$/i], {
      ...memorySession(),
      id: 'local:app',
    })
    expect(inChromium).toBe(inNode)
  })
})

describe('crossTabName', () => {
  const storage = (id?: string): TokenStorage => ({ ...memorySession(), id })

  it('is the same for the same scope however the list is spelled', () => {
    const a = crossTabName(undefined, ['https://api.example.com', /x/g], storage('memory'))
    const b = crossTabName(
      undefined,
      [/x/, 'HTTPS://API.example.com:443/v1', 'https://api.example.com'],
      memorySession(),
    )
    expect(a).toBe(b)
    expect(a).toMatch(/^auth-machine:[0-9a-z]+$/)
  })

  it('differs with attachTo and with storage', () => {
    const names = new Set([
      crossTabName(undefined, ['https://a.example'], storage('memory')),
      crossTabName(undefined, ['https://b.example'], storage('memory')),
      crossTabName(undefined, ['https://a.example', 'https://b.example'], storage('memory')),
      crossTabName(undefined, [/a\.example/], storage('memory')),
      crossTabName(undefined, [/a\.example/i], storage('memory')),
      crossTabName(undefined, ['https://a.example'], storage('local:auth-machine.session')),
      crossTabName(undefined, ['https://a.example'], storage('session:auth-machine.session')),
      crossTabName(undefined, ['https://a.example'], storage()),
      crossTabName(undefined, [], storage('memory')),
    ])
    expect(names.size).toBe(9)
    // Adapters without an id are one scope.
    expect(crossTabName(undefined, ['https://a.example'], storage())).toBe(
      crossTabName(undefined, ['https://a.example'], { ...storage(), set: () => undefined }),
    )
  })

  it('returns an explicit name as given', () => {
    expect(crossTabName('mine', ['https://a.example'], storage('x'))).toBe('mine')
    expect(crossTabName('mine', () => true, storage('x'))).toBe('mine')
  })

  it('a predicate: the same function may share, another one throws until released', () => {
    const first = (url: URL) => url.hostname === 'a.example'
    const second = (url: URL) => url.hostname === 'b.example'
    const store = storage('local:predicate-test')
    const name = crossTabName(undefined, first, store)
    expect(crossTabName(undefined, first, store)).toBe(name)
    let error: unknown
    try {
      crossTabName(undefined, second, store)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(CrossTabScopeError)
    expect((error as AuthError).code).toBe('INVALID_OPTIONS')
    expect(crossTabName('b', second, store)).toBe('b')
    // Another storage is another scope.
    expect(crossTabName(undefined, second, storage('local:other'))).not.toBe(name)
    releaseCrossTabName(name, first)
    expect(crossTabName(undefined, second, store)).toBe(name)
    releaseCrossTabName(name, second)
  })
})
