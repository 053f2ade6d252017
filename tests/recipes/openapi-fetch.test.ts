import createClient from 'openapi-fetch'
import { afterEach, describe, expect, it } from 'vitest'
import { SessionExpiredError } from '../../src/fetch.js'
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

// openapi-fetch with `createClient({ baseUrl, fetch: auth.fetch })`. openapi-fetch builds a
// Request (its JSON body included) and calls fetch with it alone.

let h: Harness
afterEach(async () => {
  await h?.close()
})

type Json<T> = { headers: { [name: string]: unknown }; content: { 'application/json': T } }
type Refused = Json<{ error: string }>

// The test server's routes, as openapi-typescript would write them.
interface paths {
  '/api/burst': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never }
    get: {
      parameters: { query: { call: number }; header?: never; path?: never; cookie?: never }
      requestBody?: never
      responses: { 200: Json<Echo>; 401: Refused }
    }
  }
  '/api/me': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never }
    get: {
      parameters: { query?: never; header?: never; path?: never; cookie?: never }
      requestBody?: never
      responses: { 200: Json<Echo>; 401: Refused }
    }
  }
  '/api/items': {
    parameters: { query?: never; header?: never; path?: never; cookie?: never }
    post: {
      parameters: { query?: never; header?: never; path?: never; cookie?: never }
      requestBody: { content: { 'application/json': { title: string; qty?: number } } }
      responses: { 200: Json<Echo>; 401: Refused }
    }
  }
}

const protectedClient = () => createClient<paths>({ baseUrl: h.server.url, fetch: h.auth.fetch })

describe('openapi-fetch with fetch: auth.fetch', () => {
  it(`${BURST} concurrent calls on an expired token: 1 refresh, each call replayed at most once`, async () => {
    h = await signedIn()
    const api = protectedClient()
    const expired = await expireToken(h)

    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, call) =>
        api.GET('/api/burst', { params: { query: { call } } }),
      ),
    )

    expect(answers.filter(({ data }) => data?.ok)).toHaveLength(BURST)
    expectOneRefreshForTheBurst(h, '/api/burst', { expired, fresh: await currentToken(h) })
  })

  it('a POST with a JSON body that meets a 401 is replayed with the same body', async () => {
    h = await signedIn()
    const api = protectedClient()
    const expired = await expireToken(h)

    const { data } = await api.POST('/api/items', { body: ITEM })

    expect(data).toMatchObject({ ok: true, method: 'POST', path: '/api/items' })
    await expectItemReplayedOnce(h, expired)
  })

  it('a 401 that survives the replay comes back as { error, response } with status 401', async () => {
    h = await signedIn()
    const api = protectedClient()

    const { data, error, response } = await withRejectedReplay(h, () => api.GET('/api/me'))

    expect(data).toBeUndefined()
    expect(error).toEqual({ error: 'invalid_token' })
    expect(response.status).toBe(401)
    expect(tokenSent(h.server, '/api/me')).toEqual([true, true])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a refused refresh is thrown as SessionExpiredError, untouched by openapi-fetch', async () => {
    h = await signedIn()
    const api = protectedClient()
    h.server.revokeSessions()

    const results = await Promise.allSettled([
      api.GET('/api/me'),
      api.POST('/api/items', { body: { title: 'milk' } }),
    ])

    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(SessionExpiredError)
    }
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('skipAuth as an openapi-fetch option reaches auth.fetch on the Request it builds', async () => {
    h = await signedIn()
    const api = protectedClient()
    // openapi-fetch's types refuse skipAuth, and at run time it sets unknown options on the
    // Request it builds, never in an init: auth.fetch reads it there.
    const unknownOption: Record<string, unknown> = { skipAuth: true }

    const skipped = await api.GET('/api/me', unknownOption)
    const sent = await api.GET('/api/me')

    expect(skipped.response.status).toBe(401)
    expect(sent.response.status).toBe(200)
    expect(tokenSent(h.server, '/api/me')).toEqual([false, true])
    expect(h.server.counters.refreshCalls).toBe(0)
  })
})
