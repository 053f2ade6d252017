/**
 * FINDING: a sign-in started while a session is alive signs with that session's key (the
 * key store hands out the bound key); when that session then ends before `login()` (the
 * usual "switch account" code: get the new tokens, `await auth.logout()`, `auth.login()`;
 * or the old session expiring meanwhile), its key is deleted with it, and `login()` of the
 * new tokens throws InvalidSessionError ("no DPoP key of this client was used to sign in"):
 * the new user's tokens are bound to a key that no longer exists. The sign-in is lost.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, dpopSignInAt, type Harness, type Transport } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

describe.each<Transport>(['fetch', 'axios'])('switch account with DPoP (%s)', (transport) => {
  it('tokens obtained with auth.dpop before logout() can be used with login() after it', async () => {
    const h = await createHarness({ dpop: true }, { dpop: { nonce: 'both' } }, transport)
    harness = h
    await h.signIn() // ada
    const bob = await dpopSignInAt(h.server.url, h.auth.dpop, 'bob')
    await h.auth.logout()
    let thrown: unknown
    try {
      h.auth.login(bob)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeUndefined()
    const answer = await h.request('/api/whoami').catch((e: unknown) => e)
    expect(answer).toMatchObject({ status: 200, data: { sub: 'bob' } })
  })
})
