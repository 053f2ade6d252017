/**
 * FINDING (medium): on protected requests a nonce challenge is recognised from
 * `WWW-Authenticate` only. Browser code cannot read that header on a cross-origin API unless
 * the server lists it in `Access-Control-Expose-Headers` (RFC 9449 asks servers to expose
 * `DPoP-Nonce`; nothing makes them expose `WWW-Authenticate`). There, the API's
 * `401 DPoP error="use_dpop_nonce"` looks like any 401: the client refreshes (spends the
 * refresh token) for a request whose token was fine, on every nonce rotation, although the
 * response also carries a new `DPoP-Nonce` and a body `{"error":"use_dpop_nonce"}`, which
 * the token-endpoint path (`asksForNonce`) does read. If the token endpoint is down at that
 * moment, requests with a valid token fail with RefreshFailedError.
 *
 * The browser's CORS view is emulated with the `fetch` option: it hides the response
 * headers the server did not expose (here: the server exposes DPoP-Nonce only).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, type Harness } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

/** fetch as browser JS sees a cross-origin response that exposes only `DPoP-Nonce`. */
const corsView: typeof fetch = async (input, init) => {
  const response = await fetch(input, init)
  const headers = new Headers()
  for (const name of ['content-type', 'dpop-nonce']) {
    const value = response.headers.get(name)
    if (value !== null) headers.set(name, value)
  }
  return new Response(response.body, { status: response.status, headers })
}

describe('a nonce challenge whose WWW-Authenticate the client cannot read', () => {
  it('is not taken for a rejected token: no refresh, sent once more with the new nonce', async () => {
    const h = await createHarness(
      { dpop: true, fetch: corsView },
      { dpop: { nonce: 'resource' } },
      'fetch',
    )
    harness = h
    await h.signIn()
    h.server.resetCounters()
    h.server.rotateDpopNonce()
    const answer = await h.request('/api/after-rotation')
    expect(answer.status).toBe(200)
    expect(h.server.counters).toMatchObject({ dpopNonceChallenges: 1, refreshCalls: 0 })
  })
})
