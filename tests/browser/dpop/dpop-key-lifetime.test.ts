// FINDING (low/medium): "a non-extractable ES256 key made for each sign-in … deleted when the
// session ends" (the `dpop` option) holds only for an explicit logout or an expiry seen by a
// tab. With memory storage, closing every tab ends the session for good (no tab can ever use
// it again), but its key stays in IndexedDB, bound to the dead session id, and the next
// sign-in — maybe another person on the same profile — reuses it: `keys.signIn()` takes any
// stored key, bound or not.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Harness } from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

describe('DPoP key lifetime', () => {
  it('a sign-in after every tab was closed (memory storage, no logout) gets a new key, not the ended sign-in’s', async () => {
    await h.fresh('fetch')
    const first = await h.open('memory')
    await first.evaluate(() => window.review.login())
    const before = await first.evaluate(() => window.review.key())
    await first.close()

    // The browser is opened again: nothing is signed in, and nothing can be restored.
    const next = await h.open('memory')
    expect(await next.evaluate(() => window.review.state())).toBe('loggedOut')
    await next.evaluate(() => window.review.login())
    const after = await next.evaluate(() => window.review.key())
    expect(await next.evaluate(() => window.review.fire(1))).toEqual({ ok: 1, errors: [] })
    // On this code: the same thumbprint.
    expect(after.jkt).not.toBe(before.jkt)
  })
})
