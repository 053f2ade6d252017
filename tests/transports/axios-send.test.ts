import axios, { type AxiosInstance, type InternalAxiosRequestConfig } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { createHarness, type Harness, refreshAt, signInAt } from '../helpers.js'
import { deferred, redirector, switchUserWhenRefreshLands, userOf } from './support.js'

// The axios transport writes the token at the moment of sending (its request transformer) and
// nowhere else, for the URL axios will really request and the session still live then; only a
// response from a request that carried the token can prove it wrong. Each test is an attack
// from the adversarial review that the first version failed (named in the test's comment).

let auth: AuthClient | undefined
let h: Harness | undefined
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  auth?.dispose()
  auth = undefined
  await h?.close()
  h = undefined
  for (const close of closers.splice(0)) await close()
})

/** The API the token is for (it issues and refreshes it) and another origin. */
async function twoOrigins() {
  const api = await createTestAuthServer()
  const other = await createTestAuthServer()
  closers.push(
    () => api.close(),
    () => other.close(),
  )
  return { api, other }
}

/**
 * Protects `http` with a client whose token is for `api` only, signed in. Interceptors the
 * test registered on `http` before this call run after the transport's.
 */
async function protect(
  http: AxiosInstance,
  api: TestAuthServer,
  session: { expiresIn?: number } = {},
): Promise<AuthClient> {
  const client = createAuthClient({
    http,
    attachTo: [api.url],
    refresh: refreshAt(api.url),
    onWarning: () => undefined,
  })
  auth = client
  client.login({ ...(await signInAt(api.url)), ...session })
  await client.ready
  return client
}

const withToken = (server: TestAuthServer) =>
  server.requests.filter((request) => request.authorization !== undefined)

/** The request reached `server` once, and without the token. */
function expectReachedWithoutToken(server: TestAuthServer) {
  expect(server.requests).toHaveLength(1)
  expect(withToken(server)).toEqual([])
}

describe('axios: the token goes where axios really sends the request', () => {
  it('an interceptor that builds a new config for another origin sends it without the token', async () => {
    // Attack A1: a config from scratch (no transformRequest) that reuses the headers.
    const { api, other } = await twoOrigins()
    const http = axios.create({ baseURL: api.url })
    http.interceptors.request.use(
      (config) =>
        ({
          url: `${other.url}/public`,
          method: config.method,
          headers: config.headers,
        }) as InternalAxiosRequestConfig,
    )
    await protect(http, api)
    await http.get('/public').catch(() => undefined)
    expectReachedWithoutToken(other)
  })

  it('an interceptor that empties transformRequest and moves baseURL sends no token there', async () => {
    // Attack A2.
    const { api, other } = await twoOrigins()
    const http = axios.create({ baseURL: api.url })
    http.interceptors.request.use((config) => {
      config.transformRequest = []
      config.baseURL = other.url
      return config
    })
    await protect(http, api)
    await http.get('/public').catch(() => undefined)
    expectReachedWithoutToken(other)
  })

  it('an interceptor that sets one transformRequest function and moves baseURL sends no token there', async () => {
    // Attack A3: a case converter replacing the transformer list with a single function.
    const { api, other } = await twoOrigins()
    const http = axios.create({ baseURL: api.url })
    http.interceptors.request.use((config) => {
      config.transformRequest = (data: unknown) => JSON.stringify(data)
      config.baseURL = other.url
      return config
    })
    await protect(http, api)
    await http.post('/public', { a: 1 }).catch(() => undefined)
    expectReachedWithoutToken(other)
  })

  it('a URL object moved to another port in place carries no token', async () => {
    // Attack A4: the url is a URL object (axios accepts one) that an interceptor mutates.
    const { api, other } = await twoOrigins()
    const http = axios.create()
    http.interceptors.request.use((config) => {
      ;(config.url as unknown as URL).port = String(other.port)
      return config
    })
    await protect(http, api)
    await http.get(new URL(`${api.url}/public`) as unknown as string).catch(() => undefined)
    expectReachedWithoutToken(other)
  })

  it('allowAbsoluteUrls turned off sends the request to baseURL, which gets no token', async () => {
    // Attack A8: url and baseURL unchanged, yet axios now requests baseURL + url.
    const { api, other } = await twoOrigins()
    const http = axios.create({ baseURL: other.url })
    http.interceptors.request.use((config) => {
      config.allowAbsoluteUrls = false
      return config
    })
    await protect(http, api)
    await http.get(`${api.url}/public`).catch(() => undefined)
    expectReachedWithoutToken(other)
  })

  it('a URL object as url may wait for the token, then goes out', async () => {
    // Attack A4c: describing the waiting request threw a TypeError on a URL object.
    const { api } = await twoOrigins()
    const http = axios.create()
    // Born expired: the request waits for a refresh (a zero lifetime arms no timer).
    await protect(http, api, { expiresIn: 0 })
    const error = await http.get(new URL(`${api.url}/public`) as unknown as string).then(
      () => null,
      (caught: unknown) => caught,
    )
    expect(error).toBeNull()
    expect(api.requests.filter((request) => request.path === '/public')).toHaveLength(1)
  })
})

describe('axios: what a response may prove', () => {
  it('a 401 on a config copied by an earlier-registered interceptor is still replayed', async () => {
    // Attack I1: an interceptor returning `{ ...config }` lost the record of the token sent.
    const { api } = await twoOrigins()
    const http = axios.create({ baseURL: api.url })
    http.interceptors.request.use(
      (config) => ({ ...config, headers: config.headers }) as InternalAxiosRequestConfig,
    )
    await protect(http, api)
    api.expireAccessTokens()
    const status = await http.get('/api/me').then(
      (response) => response.status,
      (error) => error.response?.status ?? error.name,
    )
    expect(status).toBe(200)
  })

  it("a 401 from a redirect's target, which the token never reached, starts no refresh", async () => {
    // Attack R2: every request to a redirecting endpoint spent the refresh token.
    const { api, other } = await twoOrigins()
    const from = await redirector(`${other.url}/api/landing`)
    closers.push(from.close)
    const http = axios.create({ baseURL: from.url })
    auth = createAuthClient({ http, refresh: refreshAt(api.url), onWarning: () => undefined })
    auth.login(await signInAt(api.url))
    for (let i = 0; i < 3; i += 1) await http.get('/go').catch(() => undefined)
    expect(withToken(other)).toEqual([])
    expect(api.counters.refreshCalls).toBe(0)
  })

  it('a redirect between two allowed origins: the target never saw the token, so no refresh', async () => {
    // Found while porting: only the final origin was checked, not whether it changed.
    const { api, other } = await twoOrigins()
    const from = await redirector(`${other.url}/api/landing`)
    closers.push(from.close)
    const http = axios.create({ baseURL: from.url })
    auth = createAuthClient({
      http,
      refresh: refreshAt(api.url),
      attachTo: [from.url, other.url],
      onWarning: () => undefined,
    })
    auth.login(await signInAt(api.url))
    for (let i = 0; i < 3; i += 1) await http.get('/go').catch(() => undefined)
    expect(withToken(other)).toEqual([])
    expect(other.requests.length).toBe(3)
    expect(api.counters.refreshCalls).toBe(0)
  })

  it('after a logout, a login with the same access token sends requests again', async () => {
    // Attack E1: the token was remembered with the first session's epoch and refused.
    h = await createHarness()
    const tokens = await signInAt(h.server.url)
    h.auth.login(tokens)
    await h.auth.ready
    await h.http.get('/api/a')
    await h.auth.logout()
    // An account switcher re-using cached tokens, or a server returning the live token.
    h.auth.login(tokens)
    const answer = await h.http.get('/api/b').then(
      (response) => response.status,
      (error: Error) => `${error.name}: ${error.message}`,
    )
    expect(answer).toBe(200)
  })
})

describe('axios: a request that outlives its session', () => {
  it("a request waiting for Alice's refresh is never sent with Bob's token", async () => {
    // Attack X2: a logout and Bob's login the moment the refresh lands.
    h = await createHarness()
    const alice = await signInAt(h.server.url, 'alice')
    const bob = await signInAt(h.server.url, 'bob')
    // Born expired: the request waits for a refresh (a zero lifetime arms no timer).
    h.auth.login({ ...alice, expiresIn: 0 })
    await h.auth.ready
    switchUserWhenRefreshLands(h.auth, bob)
    await h.http.post('/api/transfer', 'x').catch(() => undefined)
    const { server } = h
    const sent = server.requests.filter((request) => request.path === '/api/transfer')
    expect(sent.map((request) => userOf(server, request))).not.toContain('bob')
  })

  it('a logout while an adapter holds the request: the old token does not leave', async () => {
    // Attack X5: an offline-queue or rate-limiting adapter holds the request past the logout.
    h = await createHarness()
    await h.signIn()
    const reached = deferred()
    const gate = deferred()
    const send = axios.getAdapter('http')
    h.http.defaults.adapter = async (config) => {
      reached.resolve()
      await gate.promise
      return send(config)
    }
    const request = h.http.get('/api/held').catch(() => undefined)
    await reached.promise
    await h.auth.logout()
    gate.resolve()
    await request
    const sent = h.server.requests.filter((logged) => logged.path === '/api/held')
    expect(sent.every((logged) => logged.authorization === undefined)).toBe(true)
  })
})
