/**
 * FINDING (low): the check that a token is bound to this client's key (`cnf.jkt`) is made
 * only by login() and only for a generated key. (a) With the app's own `dpop: { keyPair }`
 * `currentThumbprint()` is `null` and bindKey skips the comparison: a token bound to another
 * key is accepted. (b) A refresh answer is never checked: a token bound to another key is
 * adopted as the session. Either way every request then fails with `invalid_dpop_proof`,
 * which is returned as it is and never refreshes, so the session is unusable but never ends
 * (no error names the cause). tests/dpop/units.test.ts shows the refusal login() is meant
 * to make ("login refuses … tokens bound to another key").
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient } from '../../../src/fetch.js'
import { InvalidSessionError } from '../../../src/index.js'
import { createManualClock } from '../../../src/testing/index.js'
import { jwt, noRefresh } from './support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

const generate = () =>
  crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]) as Promise<CryptoKeyPair>

describe('cnf.jkt of the tokens', () => {
  it("with the app's own keyPair, login() refuses a token bound to another key", async () => {
    const auth = createAuthClient({
      refresh: noRefresh,
      dpop: { keyPair: await generate() },
      attachTo: [],
    })
    closers.push(() => auth.dispose())
    const mine = await auth.dpop?.thumbprint()
    expect(mine).toBeTypeOf('string')
    const foreign = jwt({ cnf: { jkt: 'someone-elses-thumbprint' }, iat: 1, exp: 3601 })
    expect(() => auth.login({ access_token: foreign, token_type: 'DPoP' })).toThrow(
      InvalidSessionError,
    )
    expect(auth.actor.getSnapshot().value).toBe('loggedOut')
  })

  it('a refresh answer bound to another key is not adopted', async () => {
    const clock = createManualClock(1_000_000)
    const auth = createAuthClient({
      refresh: async () => ({
        access_token: jwt({ cnf: { jkt: 'someone-elses-thumbprint' }, iat: 1, exp: 3601 }),
        token_type: 'DPoP',
        expires_in: 3600,
      }),
      dpop: true,
      attachTo: [],
      retry: false,
      clock,
    })
    closers.push(() => auth.dispose())
    const jkt = await auth.dpop?.thumbprint()
    auth.login({
      access_token: jwt({ cnf: { jkt } }),
      refresh_token: 'r1',
      expires_in: 60,
      token_type: 'DPoP',
    })
    clock.advance(61_000)
    await auth.getAccessToken().catch(() => null)
    const { session } = auth.actor.getSnapshot().context
    const claims = session
      ? JSON.parse(Buffer.from(session.accessToken.split('.')[1] ?? '', 'base64url').toString())
      : null
    expect(claims?.cnf?.jkt).not.toBe('someone-elses-thumbprint')
  })
})
