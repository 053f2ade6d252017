/**
 * FINDING (high): the session ends (SessionExpiredError, user signed out) because of a
 * nonce, with its refresh token never spent. `dpop.fetch` retries a token endpoint's
 * `use_dpop_nonce` once; when the retry is challenged too (the nonce rotated in between, or
 * an authorization server behind a load balancer whose nodes keep their own nonces), it
 * returns that 400 to the app's `refresh`, which throws as the README/DESIGN example does:
 * `Object.assign(new Error('refresh failed'), { status: res.status })`. That error carries
 * no body and no headers, so `dpop.refusal()` cannot see the nonce, the refresher skips its
 * own nonce retry, and `isRefreshRejected` (HTTP 400) ends the session. The handle knew the
 * answer was a nonce challenge; nothing passes that on.
 */
import { afterEach, expect, it } from 'vitest'
import { createHarness, type Harness } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

it('a token endpoint that challenges twice in a row (nonce rotated meanwhile) does not end the session', async () => {
  // The harness' refresh is dpopRefreshAt: dpop.fetch, and `{ status }` thrown on !ok.
  const h = await createHarness({ dpop: true }, { dpop: { nonce: 'both' } }, 'fetch')
  harness = h
  await h.signIn()
  h.server.expireAccessTokens()
  const first = h.server.hold('/auth/refresh')
  const answer = h.request('/api/after').catch((e: unknown) => e)
  await first.untilWaiting(1)
  h.server.rotateDpopNonce() // the first refresh call now carries a stale nonce
  const challenged = h.server.waitFor((s) => (s.counters.dpopNonceChallenges ?? 0) >= 1)
  first.release()
  await challenged
  // The handle's retry (with the nonce just given) meets a node with another nonce.
  const second = h.server.hold('/auth/refresh')
  await second.untilWaiting(1)
  h.server.rotateDpopNonce()
  second.release()
  const outcome = await answer
  expect(
    h.server.counters.refreshSuccesses + h.server.counters.refreshFailures,
  ).toBeLessThanOrEqual(1)
  expect(h.auth.actor.getSnapshot().value).not.toBe('expired')
  expect(outcome).toMatchObject({ status: 200 })
})
