// FINDINGS: the IndexedDB the DPoP key lives in fails or goes away, and the client neither
// degrades (as the README promises for missing browser APIs) nor answers with a typed error.
//
// - Refused (a sandboxed iframe: `indexedDB.open` throws SecurityError in Chromium): a DPoP
//   sign-in is impossible, `auth.dpop.fetch` rejects with a bare DOMException. Without DPoP,
//   no refresh ever succeeds there (the cross-tab lock-time read rejects).
// - Closed by the browser (`Clear-Site-Data: "storage"`, which a logout endpoint may send):
//   the cached connection is never reopened; every tab that had it open can no longer sign
//   in (InvalidStateError) until it is reloaded.
// - Blocked (a pending `deleteDatabase('auth-machine')`, or a newer build opening version 2,
//   while tabs are open: no `versionchange` handler closes their connection): a tab opened
//   then waits forever — `auth.ready` with a stored session, every DPoP request otherwise —
//   and a refresh it starts holds the cross-tab Web Lock forever (its lock-time read never
//   answers), so no tab of the profile can refresh any more (shown without DPoP: it is the
//   tabs coordinator's read).
import type { Frame, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Harness, sandboxedTabSrcdoc, settlesWithin, signInAll, untilState } from './harness.js'

const h = new Harness()
// The review page server: CORS for the sandboxed iframe, and a Clear-Site-Data route.
beforeAll(() => h.start('review'))
afterAll(() => h.stop())
afterEach(() => h.cleanup())

/** tab.js in a sandboxed iframe (allow-scripts only: an opaque origin), as an embed runs. */
async function sandboxedTab(query: string): Promise<Frame> {
  const page = await h.context.newPage()
  await page.goto(`${h.pages.url}/review-blank.html`)
  await page.evaluate(
    (doc) => {
      const frame = document.createElement('iframe')
      frame.setAttribute('sandbox', 'allow-scripts')
      frame.srcdoc = doc
      document.body.append(frame)
    },
    sandboxedTabSrcdoc(h.pages.url, query),
  )
  const frame = await (await page.waitForSelector('iframe')).contentFrame()
  if (!frame) throw new Error('no frame')
  await frame.waitForFunction(() => window.reviewReady === true)
  // The premise, in real Chromium: this document may not use IndexedDB.
  expect(
    await frame.evaluate(() => {
      try {
        indexedDB.open('probe')
        return 'opened'
      } catch (error) {
        return (error as DOMException).name
      }
    }),
  ).toBe('SecurityError')
  return frame
}

/**
 * Deletes the database from `page` while a connection that never lets go (code of another
 * library, no `versionchange` handler) is open in `holder`: the delete stays pending, and so
 * does every open after it. The library's own connections close on `versionchange`.
 */
const openBlockingDelete = async (page: Page, holder?: Page) => {
  await holder?.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const req = indexedDB.open('auth-machine', 1)
        req.onupgradeneeded = () => req.result.createObjectStore('records')
        req.onsuccess = () => {
          ;(window as unknown as { stubborn: IDBDatabase }).stubborn = req.result
          resolve()
        }
        req.onerror = () => reject(req.error)
      }),
  )
  return page.evaluate(
    () =>
      new Promise<string>((resolve) => {
        const request = indexedDB.deleteDatabase('auth-machine')
        request.onblocked = () => resolve('blocked')
        request.onsuccess = () => resolve('deleted')
      }),
  )
}

describe('DPoP key store: IndexedDB refused, closed or blocked', () => {
  it('in a sandboxed iframe (IndexedDB refused) a DPoP sign-in works in the tab, or fails with a typed AuthError', async () => {
    await h.fresh('fetch')
    const frame = await sandboxedTab(
      `?api=${encodeURIComponent(h.server.url)}&transport=fetch&dpop=1`,
    )
    const login = await frame.evaluate(() => window.review.tryLogin())
    // On this code: { ok: false, error: { name: 'SecurityError', code: 18 } } — a DOMException.
    if (!login.ok) {
      // A typed refusal is acceptable: an AuthError has a string `code` (a DOMException's is a number).
      expect(typeof login.error?.code).toBe('string')
      return
    }
    expect(await frame.evaluate(() => window.review.fire(2))).toEqual({ ok: 2, errors: [] })
  })

  it('in a sandboxed iframe (IndexedDB refused), without DPoP, an expired token is still refreshed', async () => {
    await h.fresh('fetch', {})
    const frame = await sandboxedTab(`?api=${encodeURIComponent(h.server.url)}&transport=fetch`)
    await frame.evaluate(() => window.review.login())
    h.server.expireAccessTokens()
    // On this code: { ok: 0, errors: ['REFRESH_FAILED'] } and `authenticated.stale`, every time.
    expect(await frame.evaluate(() => window.review.fire(2))).toEqual({ ok: 2, errors: [] })
    expect(h.server.counters.refreshSuccesses).toBe(1)
  })

  it('after a logout answered with Clear-Site-Data: "storage", the next DPoP sign-in works in the open tabs', async () => {
    await h.fresh('fetch')
    const [a, b] = await h.openMany(2)
    if (!a || !b) throw new Error('tabs did not open')
    await signInAll([a, b])
    await a.evaluate(() => window.review.logout())
    await untilState(b, 'loggedOut')
    // The app's logout endpoint wipes the origin's storage (an OWASP-recommended header).
    expect(await a.evaluate(async () => (await fetch('/__clear-site-data')).text())).toBe('cleared')

    // On this code: InvalidStateError ("The database connection is closing"), in both tabs.
    expect(await a.evaluate(() => window.review.tryLogin())).toEqual({ ok: true })
    await untilState(b, 'authenticated')
    expect(await b.evaluate(() => window.review.fire(1))).toEqual({ ok: 1, errors: [] })
  })

  it('a pending deleteDatabase("auth-machine") does not hang a tab opened meanwhile: auth.ready resolves with its stored session', async () => {
    await h.fresh('fetch')
    const a = await h.open('local')
    await a.evaluate(() => window.review.login())
    // Another tab's code deletes the database ("clear everything"); the open tab blocks it.
    expect(await openBlockingDelete(await h.blank(), await h.blank())).toBe('blocked')

    const page = await h.context.newPage()
    await page.goto(h.url('local'))
    const ready = await settlesWithin(
      page.waitForFunction(() => window.reviewReady === true, undefined, { timeout: 0 }),
      8_000,
    )
    // On this code: never (the restore's key check waits on IndexedDB.open forever).
    expect(ready.settled).toBe(true)
  })

  it('a pending deleteDatabase("auth-machine") does not hang the requests of a tab opened meanwhile', async () => {
    await h.fresh('fetch')
    const a = await h.open('memory')
    await a.evaluate(() => window.review.login())
    expect(await openBlockingDelete(await h.blank(), await h.blank())).toBe('blocked')

    // A tab opened now gets the session from `a` (hello): its key cannot be read while the
    // database is blocked, which says nothing either way, so the session is taken.
    const late = await h.open('memory')
    await untilState(late, 'authenticated')
    const request = await settlesWithin(
      late.evaluate(() => window.review.fire(1)),
      8_000,
    )
    // On this code: the request never settles (its proof waits for the key forever).
    expect(request.settled).toBe(true)
    // Nor a sign-in.
    await late.evaluate(() => window.review.logout())
    const login = await settlesWithin(
      late.evaluate(() => window.review.tryLogin()),
      8_000,
    )
    expect(login.settled).toBe(true)
  }, 30_000)

  it('a tab stuck on a blocked IndexedDB does not hold the refresh lock forever: the other tabs can still refresh (without DPoP)', async () => {
    await h.fresh('fetch', {})
    const a = await h.open('memory', '')
    await a.evaluate(() => window.review.login())
    // `a` has its connection open (a first refresh read the record).
    h.server.expireAccessTokens()
    expect(await a.evaluate(() => window.review.fire(1))).toEqual({ ok: 1, errors: [] })
    expect(await openBlockingDelete(await h.blank(), await h.blank())).toBe('blocked')

    const late = await h.open('memory', '')
    await untilState(late, 'authenticated')
    h.server.expireAccessTokens()
    // The late tab's refresh takes the lock and waits for IndexedDB.open.
    void late.evaluate(() => window.review.fire(1)).catch(() => undefined)
    await late.waitForFunction(() => window.review.state() === 'refreshing')
    await a.waitForFunction(async () => {
      const { held } = await navigator.locks.query()
      return held?.some((lock) => lock.name?.endsWith(':refresh')) ?? false
    })

    // `a` needs a refresh too. Each read of the shared record under the lock gives up after
    // 3 s, so the lock is let go; without the re-check no tab refreshes blind (it could
    // present a token another tab spent): the request settles within the README's longest
    // wait, refreshed or with a typed error, and no refresh token is presented twice.
    const request = await settlesWithin(
      a.evaluate(() => window.review.fire(1)),
      30_000,
    )
    // Before the fix: the late tab held the lock for good; `a` never got it.
    expect(request.settled).toBe(true)
    expect(h.server.counters.reuseDetections).toBe(0)
  }, 60_000)
})
