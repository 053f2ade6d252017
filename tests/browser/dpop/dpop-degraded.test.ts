// FINDING (low): a browser without IndexedDB (and BroadcastChannel, Web Locks) runs DPoP with a
// key kept in memory, silently. With `localStorage` the session is persisted, its key is not:
// every reload signs the user out. The only word of it is a warning after the reload
// ("the stored session was not restored: its DPoP key is gone"), never at sign-in, and the
// README says nothing about DPoP and storage at all.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Harness } from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

describe('DPoP in a degraded browser (no Web Locks, BroadcastChannel, IndexedDB)', () => {
  it('says when the client is set up or at sign-in that the DPoP key cannot outlive the page, before a reload signs the user out', async () => {
    await h.fresh('fetch')
    const tab = await h.open('local', '&dpop=1&degrade=1')
    await tab.evaluate(() => window.review.login())
    expect(await tab.evaluate(() => window.review.fire(2))).toEqual({ ok: 2, errors: [] })
    const before = await tab.evaluate(() => window.review.warnings)

    await tab.reload()
    await tab.waitForFunction(() => window.reviewReady === true)
    // What the reload costs: the stored session is dropped.
    expect(await tab.evaluate(() => window.review.state())).toBe('loggedOut')
    expect(await tab.evaluate(() => window.review.warnings)).toContain(
      'the stored session was not restored: its DPoP key is gone.',
    )
    // On this code: [] — nothing said while it could still be acted on.
    expect(before.join('\n')).toMatch(/DPoP/)
  })
})
