/**
 * FINDING: the token endpoint's `use_dpop_nonce` is retried by the refresher, but the nonce
 * is learned from the thrown error only where `nonceOfError` finds an absolute URL:
 * `response.url`, XHR's `responseURL`, follow-redirects' `res.responseUrl`, or an absolute
 * `config.url`. A refresh made with an axios instance that has a `baseURL` and a relative
 * path, on axios' fetch adapter (or with `maxRedirects: 0`), gives none of them
 * (`config.url` is '/auth/refresh'; the fetch adapter's `response.request` is a Request,
 * whose `url` is not looked at), so the nonce is never learned: the retry carries the same
 * stale nonce, is challenged again, and the refresh fails, every time: the session goes
 * stale and can never refresh while the token endpoint keeps that nonce.
 */
import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import type { RefreshFunction } from '../../../src/index.js'
import { createHarness, type Harness } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

function axiosRefresh(
  url: () => string,
  config: Parameters<typeof axios.create>[0],
): RefreshFunction {
  return async (session, { signal, dpop }) => {
    const tokenHttp = axios.create({ baseURL: url(), ...config })
    const proof = await dpop?.proof('POST', `${url()}/auth/refresh`)
    const response = await tokenHttp.post(
      '/auth/refresh',
      { refreshToken: session.refreshToken },
      { signal, headers: { DPoP: proof } },
    )
    return response.data
  }
}

describe.each([
  ['adapter: fetch', { adapter: 'fetch' as const }],
  ['maxRedirects: 0', { maxRedirects: 0 }],
])('refresh through an axios instance with baseURL (%s)', (_name, config) => {
  it("the token endpoint's new nonce is learned from the error, and the retry succeeds", async () => {
    let base = ''
    const h = await createHarness(
      { dpop: true, retry: false, refresh: axiosRefresh(() => base, config) },
      { dpop: { nonce: 'both' } },
      'fetch',
    )
    harness = h
    base = h.server.url
    await h.signIn()
    h.server.expireAccessTokens()
    // The token endpoint's nonce changes after the API's 401 told the old one.
    const held = h.server.hold('/auth/refresh')
    const answer = h.request('/api/after').catch((e: unknown) => e)
    await held.untilWaiting(1)
    h.server.rotateDpopNonce()
    held.release()
    expect(await answer).toMatchObject({ status: 200 })
    // The sign-in's first proof was challenged too (it had no nonce yet).
    expect(h.server.counters).toMatchObject({ refreshSuccesses: 1, dpopNonceChallenges: 2 })
  })
})
