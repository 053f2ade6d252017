import ky, { HTTPError, type KyInstance, type Options } from 'ky'
import { afterEach, describe, expect, it } from 'vitest'
import { AuthError, SessionExpiredError, type SkipAuthOption } from '../../src/fetch.js'
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

// ky with `fetch: auth.fetch`. ky hands auth.fetch a Request (its body included) and, as the
// second argument, only the options it does not know itself: that is how `skipAuth` gets
// through.

let h: Harness
afterEach(async () => {
  await h?.close()
})

/** The recipe: ky's own retries stay away from the session's errors. */
function protectedKy(): KyInstance {
  return ky.create({
    prefixUrl: h.server.url,
    fetch: h.auth.fetch,
    retry: { shouldRetry: ({ error }) => (error instanceof AuthError ? false : undefined) },
  })
}

describe('ky with fetch: auth.fetch', () => {
  it(`${BURST} concurrent calls on an expired token: 1 refresh, each call replayed at most once`, async () => {
    h = await signedIn()
    const api = protectedKy()
    const expired = await expireToken(h)

    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, call) =>
        api.get('api/burst', { searchParams: { call } }).json<Echo>(),
      ),
    )

    expect(answers.filter((answer) => answer.ok)).toHaveLength(BURST)
    expectOneRefreshForTheBurst(h, '/api/burst', { expired, fresh: await currentToken(h) })
  })

  it('a POST with a JSON body that meets a 401 is replayed with the same body', async () => {
    h = await signedIn()
    const api = protectedKy()
    const expired = await expireToken(h)

    const answer = await api.post('api/items', { json: ITEM }).json<Echo>()

    expect(answer).toMatchObject({ ok: true, method: 'POST', path: '/api/items' })
    await expectItemReplayedOnce(h, expired)
  })

  it('a 401 that survives the replay is thrown as ky HTTPError 401, without a second refresh', async () => {
    h = await signedIn()
    const api = protectedKy()

    const error = await withRejectedReplay(h, () => api.get('api/me')).catch((e: unknown) => e)

    expect(error).toBeInstanceOf(HTTPError)
    expect((error as HTTPError).response.status).toBe(401)
    expect(tokenSent(h.server, '/api/me')).toEqual([true, true])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a refused refresh reaches the caller as SessionExpiredError, untouched by ky', async () => {
    h = await signedIn()
    const api = protectedKy()
    h.server.revokeSessions()

    const results = await Promise.allSettled([
      api.get('api/me'),
      api.post('api/items', { json: { title: 'milk' } }),
    ])

    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(SessionExpiredError)
    }
    expect(h.auth.actor.getSnapshot().matches('expired')).toBe(true)
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it("without the recipe's shouldRetry, ky re-sends the GET after the session ended: HTTPError 401", async () => {
    h = await signedIn()
    // ky's defaults but for the backoff (300 ms of real time): what matters is that it retries.
    const api = ky.create({
      prefixUrl: h.server.url,
      fetch: h.auth.fetch,
      retry: { delay: () => 0 },
    })
    h.server.revokeSessions()

    const error = await api.get('api/me').catch((e: unknown) => e)

    // The retry left while signed out, so without a token, and met a plain 401.
    expect(error).toBeInstanceOf(HTTPError)
    expect((error as HTTPError).response.status).toBe(401)
    expect(tokenSent(h.server, '/api/me')).toEqual([true, false])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('skipAuth passed as a ky option reaches auth.fetch: no token, and its 401 starts no refresh', async () => {
    h = await signedIn()
    const api = protectedKy()
    // ky's Options does not know skipAuth; a variable of the wider type carries it through.
    const options: Options & SkipAuthOption = { skipAuth: true, throwHttpErrors: false }

    const skipped = await api.get('api/me', options)
    const sent = await api.get('api/me', { throwHttpErrors: false })

    expect(skipped.status).toBe(401)
    expect(sent.status).toBe(200)
    expect(tokenSent(h.server, '/api/me')).toEqual([false, true])
    expect(h.server.counters.refreshCalls).toBe(0)
  })
})
