// FINDING: two tabs whose sign-ins complete at the same moment lose the shared DPoP key.
//
// Each tab binds the one stored key to its own session id (keys.bind → store.write), then
// announces its LOGIN. The announcements cross: each tab adopts the other's session, and its
// subscription releases the session it just left — `store.remove(key.sessionId === mine)` —
// which deletes the record the last bind wrote. Both tabs end up `authenticated` on each
// other's session (swapped), with no key in IndexedDB: every request fails DPOP_KEY_MISSING.
//
// Deterministic here: a read-write transaction held on the shared store keeps both binds
// queued until both logins ran. Without the hold it happens too (2 of 6 runs in Chromium when
// the server answers both token requests at once).
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Harness, holdRecordsStore, type Transport } from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

describe.each<Transport>(['fetch', 'axios'])('DPoP sign-in race across tabs (%s)', (via) => {
  it('two tabs whose logins land at the same moment end on one session and can still sign requests', async () => {
    await h.fresh(via)
    const [a, b] = await h.openMany(2)
    if (!a || !b) throw new Error('tabs did not open')
    // Both sign-in pages asked for the key first (dpop_jkt): the store gives them the same one.
    const [ka, kb] = await Promise.all([a, b].map((t) => t.evaluate(() => window.review.key())))
    expect(ka?.jkt).toBe(kb?.jkt)
    const [ta, tb] = await Promise.all(
      [a, b].map((t) => t.evaluate(() => window.review.signInTokens())),
    )

    // Both logins run while their IndexedDB writes wait, so their announcements cross.
    const hold = await holdRecordsStore(await h.blank())
    await a.evaluate((t) => window.review.commit(t), ta)
    await b.evaluate((t) => window.review.commit(t), tb)
    await hold.release()
    // Each tab has now heard the other's login.
    const heard = (t: Page) =>
      t.waitForFunction(() => window.review.received.some((m) => m.type === 'session'))
    await Promise.all([heard(a), heard(b)])

    const results = await Promise.all([a, b].map((t) => t.evaluate(() => window.review.fire(2))))
    const sessions = await Promise.all(
      [a, b].map((t) => t.evaluate(() => window.review.sessionId())),
    )
    // Before the fix: [{ ok: 0, errors: [DPOP_KEY_MISSING ×2] } ×2]: the crossing logins
    // deleted the one key both sessions are bound to.
    expect(results).toEqual([
      { ok: 2, errors: [] },
      { ok: 2, errors: [] },
    ])
    // Crossing logins still swap sessions (each tab takes the other's, as without DPoP): a
    // known gap, in the README. Both sessions are valid and signed with their key.
    expect(sessions.every((id) => typeof id === 'string')).toBe(true)
    expect(h.server.counters.dpopProofsRefused).toBe(0)
  })
})
