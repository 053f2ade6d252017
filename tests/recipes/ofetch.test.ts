import { type $Fetch, createFetch, FetchError, type FetchOptions } from 'ofetch'
import { afterEach, describe, expect, it } from 'vitest'
import { AuthError, SessionExpiredError } from '../../src/fetch.js'
import type { Harness } from '../helpers.js'
import {
  BURST,
  currentToken,
  type Echo,
  expectItemReplayedOnce,
  expectOneRefreshForTheBurst,
  expireToken,
  ITEM,
  signedIn,
  tokenSent,
  withRejectedReplay,
} from './support.js'

// ofetch with `createFetch({ fetch: auth.fetch })`. ofetch calls fetch with a URL string and
// its whole options object as init (a JSON body already serialised to a string).

let h: Harness
afterEach(async () => {
  await h?.close()
})

/**
 * ofetch re-sends a failed GET once, and to ofetch a rejected fetch is a 500 to retry. The
 * session's errors are final: rethrown from the hook, they reach the caller as they are.
 */
const sessionErrorsAreFinal: FetchOptions = {
  onRequestError({ error }) {
    if (error instanceof AuthError) throw error
  },
}

function protectedOfetch(defaults: FetchOptions = sessionErrorsAreFinal): $Fetch {
  return createFetch({ fetch: h.auth.fetch, defaults: { baseURL: h.server.url, ...defaults } })
}

describe('ofetch with fetch: auth.fetch', () => {
  it(`${BURST} concurrent calls on an expired token: 1 refresh, each call replayed at most once`, async () => {
    h = await signedIn()
    const api = protectedOfetch()
    const expired = await expireToken(h)

    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, call) => api<Echo>('/api/burst', { query: { call } })),
    )

    expect(answers.filter((answer) => answer.ok)).toHaveLength(BURST)
    expectOneRefreshForTheBurst(h, '/api/burst', { expired, fresh: await currentToken(h) })
  })

  it('a POST with a JSON body that meets a 401 is replayed with the same body', async () => {
    h = await signedIn()
    const api = protectedOfetch()
    const expired = await expireToken(h)

    const answer = await api<Echo>('/api/items', {
      method: 'POST',
      body: ITEM,
    })

    expect(answer).toMatchObject({ ok: true, method: 'POST', path: '/api/items' })
    await expectItemReplayedOnce(h, expired)
  })

  it('a 401 that survives the replay is thrown as ofetch FetchError 401, without a second refresh', async () => {
    h = await signedIn()
    const api = protectedOfetch()

    const error = await withRejectedReplay(h, () => api('/api/me')).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(FetchError)
    expect(error).toMatchObject({ status: 401, data: { error: 'invalid_token' } })
    expect(tokenSent(h.server, '/api/me')).toEqual([true, true])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a refused refresh reaches the caller as SessionExpiredError with the recipe hook', async () => {
    h = await signedIn()
    const api = protectedOfetch()
    h.server.revokeSessions()

    const results = await Promise.allSettled([
      api('/api/me'),
      api('/api/items', { method: 'POST', body: { title: 'milk' } }),
    ])

    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(SessionExpiredError)
    }
    // No retry went out: one attempt per call.
    expect(tokenSent(h.server, '/api/me')).toEqual([true])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('without the hook, a POST gets FetchError with the SessionExpiredError as its cause', async () => {
    h = await signedIn()
    const api = protectedOfetch({})
    h.server.revokeSessions()

    const error = await api('/api/items', { method: 'POST', body: { title: 'milk' } }).catch(
      (e: unknown) => e,
    )

    expect(error).toBeInstanceOf(FetchError)
    expect((error as FetchError).cause).toBeInstanceOf(SessionExpiredError)
    expect((error as FetchError).status).toBeUndefined()
  })

  it('without the hook, ofetch re-sends the GET after the session ended: FetchError 401, no cause', async () => {
    h = await signedIn()
    const api = protectedOfetch({})
    h.server.revokeSessions()

    const error = await api('/api/me').catch((e: unknown) => e)

    // The retry left while signed out, so without a token, and met a plain 401.
    expect(error).toBeInstanceOf(FetchError)
    expect((error as FetchError).status).toBe(401)
    expect((error as FetchError).cause).toBeUndefined()
    expect(tokenSent(h.server, '/api/me')).toEqual([true, false])
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})
