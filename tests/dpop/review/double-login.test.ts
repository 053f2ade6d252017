/**
 * FINDING: `login()` twice with the same tokens (React StrictMode runs effects twice; a
 * double-clicked button; an OAuth callback page that re-runs) re-binds the DPoP key to a
 * session id the machine never adopts (its LOGIN guard `isNewSession` drops the duplicate),
 * so the live session's key is "missing" from then on: every request fails with
 * DPOP_KEY_MISSING, and so does every refresh, which is counted as a transient failure, so
 * the session is never ended either (authenticated.stale, forever, until a logout). Without
 * DPoP the duplicate login is a harmless no-op (see holds.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, dpopSignInAt, type Harness, type Transport } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

describe.each<Transport>(['fetch', 'axios'])('double login with DPoP (%s)', (transport) => {
  it('login() called twice with the same tokens leaves the session usable', async () => {
    const h = await createHarness({ dpop: true }, { dpop: { nonce: 'both' } }, transport)
    harness = h
    const tokens = await dpopSignInAt(h.server.url, h.auth.dpop)
    h.auth.login(tokens)
    h.auth.login(tokens) // a no-op without DPoP (the machine's isNewSession guard)
    const answer = await h.request('/api/after-double-login').catch((e: unknown) => e)
    expect(answer).toMatchObject({ status: 200 })
  })

  it('after a double login, an expired token is still refreshed (the refresh can sign)', async () => {
    const h = await createHarness(
      { dpop: true, retry: false },
      { dpop: { nonce: 'both' } },
      transport,
    )
    harness = h
    const tokens = await dpopSignInAt(h.server.url, h.auth.dpop)
    h.auth.login(tokens)
    h.auth.login(tokens)
    h.server.expireAccessTokens()
    h.clock.advance(31 * 60_000)
    const answer = await h.request('/api/after-expiry').catch((e: unknown) => e)
    // Today: the refresh throws DPOP_KEY_MISSING before any call, is counted as transient
    // (REFRESH_FAILED), and the machine sits in authenticated.stale with a session that can
    // never be used again.
    expect(h.auth.actor.getSnapshot().value).not.toEqual({ authenticated: 'stale' })
    expect(answer).toMatchObject({ status: 200 })
  })
})
