// What held up under attack, in Chromium: each test here passes on the reviewed code.
import type { IncomingHttpHeaders } from 'node:http'
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  blockMainThread,
  Harness,
  signInAll,
  startOtherOrigin,
  type Transport,
  untilState,
} from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

/** base64url of `{"typ":"dpop+jwt"`: how every proof this library signs begins. */
const PROOF_PREFIX = 'eyJ0eXAiOiJkcG9wK2p3dCI'

const keyRecords = (page: Page) =>
  page.evaluate(async () =>
    (await window.review.idbDump()).filter((r) => r.key.endsWith(':dpop-key')),
  )

const fireAll = (tabs: Page[], n: number) =>
  Promise.all(tabs.map((tab) => tab.evaluate((k) => window.review.fire(k), n)))

describe('DPoP in Chromium: what holds', () => {
  it('4 tabs asking for the key at the same moment, before any login, get one key; a login in any tab signs all four', async () => {
    await h.fresh('fetch')
    const tabs = await h.openMany(4)
    const keys = await Promise.all(tabs.map((t) => t.evaluate(() => window.review.key())))
    expect(new Set(keys.map((k) => k.jkt)).size).toBe(1)
    expect(keys.every((k) => !k.extractable)).toBe(true)

    await tabs[2]?.evaluate(() => window.review.login())
    await Promise.all(tabs.map((t) => untilState(t, 'authenticated')))
    for (const result of await fireAll(tabs, 3)) expect(result).toEqual({ ok: 3, errors: [] })
    const token = (await tabs[0]?.evaluate(() => window.review.token())) ?? ''
    expect(h.server.verifyAccessToken(token)?.cnf?.jkt).toBe(keys[0]?.jkt)
    expect(h.server.counters).toMatchObject({ logins: 1, dpopProofsRefused: 0 })
  })

  it('logout then immediate re-login in one tab while another is busy: its late SESSION_ENDED never deletes the new key', async () => {
    await h.fresh('fetch')
    const [a, busy] = await h.openMany(2)
    if (!a || !busy) throw new Error('tabs did not open')
    await signInAll([a, busy])
    const [old] = await keyRecords(a)
    const hold = h.server.hold('/public')
    const blocked = blockMainThread(busy, `${h.server.url}/public`)
    await hold.untilWaiting(1)

    await a.evaluate(() => window.review.logout())
    await a.evaluate(() => window.review.login())
    const second = await a.evaluate(() => window.review.sessionId())
    hold.release()
    await blocked
    await busy.waitForFunction((id) => window.review.sessionId() === id, second)

    const [now] = await keyRecords(a)
    expect(now?.sessionId).toBe(second)
    expect(now?.sessionId).not.toBe(old?.sessionId)
    for (const result of await fireAll([a, busy], 2)) expect(result).toEqual({ ok: 2, errors: [] })
    expect(h.server.counters.dpopProofsRefused).toBe(0)
  })

  it('logout in one tab while another tab’s refresh is on the wire: that tab ends, the late answer is dropped, the key stays deleted', async () => {
    await h.fresh('fetch')
    const [a, b] = await h.openMany(2)
    if (!a || !b) throw new Error('tabs did not open')
    await signInAll([a, b])
    h.server.expireAccessTokens()
    const hold = h.server.hold('/auth/refresh')
    const waiting = b.evaluate(() => window.review.fire(2))
    await hold.untilWaiting(1)

    await a.evaluate(() => window.review.logout())
    await untilState(b, 'loggedOut')
    const after = h.server.requests.length
    hold.release()
    expect(await waiting).toEqual({ ok: 0, errors: ['LOGGED_OUT', 'LOGGED_OUT'] })
    await h.server.waitFor((s) => s.refreshInFlight === 0)
    expect(await keyRecords(a)).toEqual([])
    expect(await b.evaluate(() => window.review.state())).toBe('loggedOut')
    // Nothing went out with the old token after the logout.
    const sent = h.server.requests.slice(after)
    expect(sent.filter((r) => r.authorization !== undefined)).toEqual([])
    // The next sign-in gets a new key, and works.
    await b.evaluate(() => window.review.login())
    await untilState(a, 'authenticated')
    for (const result of await fireAll([a, b], 1)) expect(result).toEqual({ ok: 1, errors: [] })
  })

  it('a reloaded tab (localStorage) restores a usable session, its key read from IndexedDB; after a logout elsewhere a reload stays signed out', async () => {
    await h.fresh('fetch')
    const [a, b] = await h.openMany(2, 'local')
    if (!a || !b) throw new Error('tabs did not open')
    await a.evaluate(() => window.review.login())
    await untilState(b, 'authenticated')

    await b.reload()
    await b.waitForFunction(() => window.reviewReady === true)
    expect(await b.evaluate(() => window.review.state())).toBe('authenticated')
    expect(await b.evaluate(() => window.review.fire(2))).toEqual({ ok: 2, errors: [] })
    expect(h.server.counters).toMatchObject({ logins: 1, refreshCalls: 0, dpopProofsRefused: 0 })

    await a.evaluate(() => window.review.logout())
    await untilState(b, 'loggedOut')
    const after = h.server.requests.length
    await b.reload()
    await b.waitForFunction(() => window.reviewReady === true)
    expect(await b.evaluate(() => window.review.state())).toBe('loggedOut')
    await b.evaluate(() => window.review.fire(1))
    expect(h.server.requests.slice(after).every((r) => r.authorization === undefined)).toBe(true)
  })

  it('a stored session whose key is gone is not restored, and nothing is sent with it', async () => {
    await h.fresh('fetch')
    const a = await h.open('local')
    await a.evaluate(() => window.review.login())
    await a.close()
    // The key record disappears (another profile tool, a partial wipe); localStorage keeps the session.
    const blank = await h.blank()
    await blank.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open('auth-machine', 1)
          open.onsuccess = () => {
            const db = open.result
            const tx = db.transaction('records', 'readwrite')
            const store = tx.objectStore('records')
            const keys = store.getAllKeys()
            keys.onsuccess = () => {
              for (const key of keys.result)
                if (String(key).endsWith(':dpop-key')) store.delete(key)
            }
            tx.oncomplete = () => {
              db.close()
              resolve()
            }
            tx.onerror = () => reject(tx.error)
          }
        }),
    )
    const after = h.server.requests.length
    const b = await h.open('local')
    expect(await b.evaluate(() => window.review.state())).toBe('loggedOut')
    expect(await b.evaluate(() => window.review.warnings)).toEqual([
      'the stored session was not restored: its DPoP key is gone.',
    ])
    expect(Object.keys(await b.evaluate(() => window.review.localStorageDump()))).toEqual([])
    expect(h.server.requests.slice(after)).toEqual([])
  })

  it('the private key never leaves: non-extractable in IndexedDB, never posted between tabs; no proof is stored anywhere; localStorage holds only the session record', async () => {
    await h.fresh('fetch')
    const [a, b] = await h.openMany(2, 'local')
    if (!a || !b) throw new Error('tabs did not open')
    await signInAll([a, b])
    h.server.expireAccessTokens()
    for (const result of await fireAll([a, b], 3)) expect(result).toEqual({ ok: 3, errors: [] })
    expect(h.server.counters.refreshSuccesses).toBe(1)

    const records = await a.evaluate(() => window.review.idbDump())
    const key = records.filter((r) => r.key.endsWith(':dpop-key'))
    expect(key).toHaveLength(1)
    expect(key[0]?.privateExtractable).toBe(false)
    expect(
      await a.evaluate(async () => {
        const pair = await window.review.auth.dpop.keyPair()
        return Promise.all(
          (['jwk', 'pkcs8'] as const).map((format) =>
            crypto.subtle.exportKey(format, pair.privateKey).then(
              () => 'exported',
              (error: DOMException) => error.name,
            ),
          ),
        )
      }),
    ).toEqual(['InvalidAccessError', 'InvalidAccessError'])

    for (const tab of [a, b]) {
      const posted = await tab.evaluate(() => window.review.posted)
      expect(posted.length).toBeGreaterThan(0)
      expect(posted.some((p) => p.hasCryptoKey)).toBe(false)
      expect(JSON.stringify(posted)).not.toContain(PROOF_PREFIX)
      const stored = await tab.evaluate(() => window.review.localStorageDump())
      expect(Object.keys(stored)).toHaveLength(1)
      expect(JSON.stringify(stored)).not.toContain(PROOF_PREFIX)
    }
    expect(JSON.stringify(records)).not.toContain(PROOF_PREFIX)
    expect(JSON.stringify(records)).not.toMatch(/"d":/)
  })

  it('a browser without Web Locks, BroadcastChannel and IndexedDB runs DPoP in one tab: 1 refresh per expiry, every proof accepted', async () => {
    await h.fresh('fetch')
    const tab = await h.open('local', '&dpop=1&degrade=1')
    await tab.evaluate(() => window.review.login())
    for (let round = 1; round <= 3; round += 1) {
      h.server.expireAccessTokens()
      expect(await tab.evaluate(() => window.review.fire(5))).toEqual({ ok: 5, errors: [] })
      expect(h.server.counters.refreshSuccesses).toBe(round)
    }
    expect(h.server.counters).toMatchObject({ reuseDetections: 0, dpopProofsRefused: 0 })
  })
})

describe.each<Transport>(['fetch', 'axios'])('DPoP in Chromium, through %s: what holds', (via) => {
  it('a request to an origin outside attachTo carries no Authorization and no DPoP proof', async () => {
    await h.fresh(via)
    const seen: IncomingHttpHeaders[] = []
    const other = await startOtherOrigin((req, res) => {
      seen.push(req.headers)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"other":true}')
    })
    try {
      const tab = await h.open('memory')
      await tab.evaluate(() => window.review.login())
      expect(await tab.evaluate((url) => window.review.fireUrl(url), `${other.url}/x`)).toEqual({
        ok: true,
        data: { other: true },
      })
      expect(seen).toHaveLength(1)
      expect(seen[0]?.authorization).toBeUndefined()
      expect(seen[0]?.dpop).toBeUndefined()
    } finally {
      await other.close()
    }
  })

  it('4 tabs, the nonce rotated while the one refresh is on the wire: 1 refresh, 0 reuse, 0 proofs refused, every request served', async () => {
    await h.fresh(via)
    const tabs = await h.openMany(4)
    await signInAll(tabs)
    h.server.expireAccessTokens()
    h.server.resetCounters()
    const hold = h.server.hold('/auth/refresh')
    const burst = fireAll(tabs, 5)
    await hold.untilWaiting(1)
    h.server.rotateDpopNonce()
    hold.release()
    for (const result of await burst) expect(result).toEqual({ ok: 5, errors: [] })
    expect(h.server.counters).toMatchObject({
      refreshSuccesses: 1,
      reuseDetections: 0,
      dpopProofsRefused: 0,
      protectedOk: 20,
    })
    expect(h.server.maxConcurrentRefreshes).toBe(1)
  })
})
