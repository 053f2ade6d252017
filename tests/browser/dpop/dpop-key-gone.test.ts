// FINDINGS: a tab keeps (or takes) a session whose DPoP key is gone, and stays `authenticated`
// forever: every request rejects with DpopError DPOP_KEY_MISSING before it is sent, and the
// refresh fails the same way, which the refresher counts as transient (→ `stale`, never
// `expired`). The UI is never told the session ended. `restore` checks `dpop.keys.has(id)`;
// sessions that arrive from other tabs (LOGIN from a hello answer, SESSION_SYNCED) and a
// key deleted under a live session are never checked.
import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { blockMainThread, Harness, signInAll, untilState } from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

/** Resolves with whether `page`'s client left `authenticated` within `ms`. */
const leavesAuthenticated = (page: Page, ms = 8_000) =>
  page
    .waitForFunction(() => window.review.state() !== 'authenticated', undefined, { timeout: ms })
    .then(
      () => true,
      () => false,
    )

describe('DPoP: a session whose key is gone', () => {
  it('revoked at the server: an idle tab ends too (expired), not authenticated with its key deleted', async () => {
    await h.fresh('fetch')
    const [active, idle] = await h.openMany(2)
    if (!active || !idle) throw new Error('tabs did not open')
    await signInAll([active, idle])
    // The session is revoked (password change, admin). The active tab finds out first: its
    // refresh is refused, it expires, and its subscription deletes the session's key.
    h.server.revokeSessions()
    expect(await active.evaluate(() => window.review.fire(1))).toEqual({
      ok: 0,
      errors: ['SESSION_EXPIRED'],
    })
    expect(await active.evaluate(() => window.review.state())).toBe('expired')

    // The idle tab, which had signed nothing yet, now makes a request.
    const result = await idle.evaluate(() => window.review.fire(1))
    // On this code: { ok: 0, errors: ['DPOP_KEY_MISSING'] } and `authenticated.fresh` for good.
    expect(result.errors).not.toContain('DPOP_KEY_MISSING')
    expect(await leavesAuthenticated(idle)).toBe(true)
  })

  it('a logout is not undone by a slow tab answering a new tab’s hello late (the new tab stays signed out)', async () => {
    await h.fresh('fetch')
    const [a, slow] = await h.openMany(2)
    if (!a || !slow) throw new Error('tabs did not open')
    await signInAll([a, slow])

    // `slow` is busy (a long task): its messages wait.
    const hold = h.server.hold('/public')
    const blocked = blockMainThread(slow, `${h.server.url}/public`)
    await hold.untilWaiting(1)
    // A new tab asks for the session (hello); `a` answers at once.
    const late = await h.open('memory')
    await untilState(late, 'authenticated')
    // The user signs out in `a`; every tab that listens signs out.
    await a.evaluate(() => window.review.logout())
    await untilState(late, 'loggedOut')
    // `slow` gets to its messages: the hello first, answered with the session it still has.
    hold.release()
    await blocked
    await untilState(slow, 'loggedOut')
    await late.waitForFunction(
      () => window.review.received.filter((m) => m.type === 'session').length >= 2,
    )

    // On this code: `late` is `authenticated` again with the ended session (key deleted).
    expect(await late.evaluate(() => window.review.state())).toBe('loggedOut')
    expect(await late.evaluate(() => window.review.fire(1))).toEqual({
      ok: 0,
      errors: ['HTTP 401'],
    })
  })

  it('a DPoP tab does not take a session it cannot sign for: a Bearer session from a tab of the previous (pre-DPoP) build', async () => {
    // The server still takes Bearer tokens during the switch to DPoP; an old tab is signed in.
    await h.fresh('fetch', {})
    const old = await h.open('memory', '')
    await old.evaluate(() => window.review.login())
    // The user opens the app again: the new build has `dpop: true`, same attachTo, same storage,
    // hence the same cross-tab name. It asks the open tabs for their session.
    const updated = await h.open('memory', '&dpop=1')
    await updated.waitForFunction(() => window.review.received.some((m) => m.type === 'session'))
    const result = await updated.evaluate(() => window.review.fire(2))
    const state = await updated.evaluate(() => window.review.state())
    // On this code: `authenticated` with { ok: 0, errors: [DPOP_KEY_MISSING ×2] }.
    expect(result.errors).not.toContain('DPOP_KEY_MISSING')
    expect(state === 'authenticated' ? result.ok : 2).toBe(2)
  })

  it('without IndexedDB (BroadcastChannel and Web Locks present) a second tab does not take a session it has no key for', async () => {
    await h.fresh('fetch')
    const [a, b] = await h.openMany(2, 'memory', '&dpop=1&idb=none')
    if (!a || !b) throw new Error('tabs did not open')
    await a.evaluate(() => window.review.login())
    expect(await a.evaluate(() => window.review.fire(1))).toEqual({ ok: 1, errors: [] })
    await b.waitForFunction(() => window.review.received.some((m) => m.type === 'session'))

    const result = await b.evaluate(() => window.review.fire(2))
    const state = await b.evaluate(() => window.review.state())
    // On this code: `b` is `authenticated` and every request fails DPOP_KEY_MISSING, silently.
    expect(result.errors).not.toContain('DPOP_KEY_MISSING')
    expect(state === 'authenticated' ? result.ok : 2).toBe(2)
  })
})
