import axios, { type InternalAxiosRequestConfig } from 'axios'
import { afterEach, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, deferred, fakeAdapter, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F2: `decided` (what sameTarget compares with at send time) is read in attach(), AFTER the
// wait for a refresh, while the origin was decided by mayAttach() BEFORE it. A change to the
// config during the wait becomes the "decided" target and the send-time check skips the
// origin check. Before cf02cd6 the send-time check always decided again and sent no token.

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

it('a config moved to another origin while it waits for the refresh gets no token', async () => {
  const fake = fakeAdapter()
  const http = axios.create({ baseURL: API, adapter: fake.adapter })
  const gate = deferred()
  auth = createAuthClient({
    refresh: async () => {
      await gate.promise
      return tokens(2)
    },
    onWarning: () => undefined,
  })
  auth.attach(http, { attachTo: [API] })
  // Registered after attach: runs before the transport's interceptor, keeps the config.
  let kept: InternalAxiosRequestConfig | undefined
  http.interceptors.request.use((config) => {
    kept = config
    return config
  })
  auth.login({ ...tokens(1), expiresIn: 0 }) // born expired: the request waits for a refresh
  await auth.ready
  const request = http.get('/me')
  await waitFor((auth as AuthClient).actor, (snapshot) => snapshot.context.queue.length === 1)
  // e.g. a failover helper that repoints configs still pending
  if (kept) kept.baseURL = 'https://evil.test'
  gate.resolve()
  await request
  expect(
    fake.calls.map((c) => [new URL(c.url, 'https://evil.test').origin, c.authorization]),
  ).toEqual([['https://evil.test', undefined]])
})

it('a baseURL getter that answers another origin later gets no token there', async () => {
  const fake = fakeAdapter()
  const http = axios.create({ adapter: fake.adapter })
  auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  auth.attach(http, { attachTo: [API] })
  http.interceptors.request.use((config) => {
    let reads = 0
    // first read (mayAttach) says API; every later read (attach's `decided`, axios' flat copy)
    // says evil: decided === sent, so the send-time re-check is skipped.
    Object.defineProperty(config, 'baseURL', {
      get: () => (reads++ === 0 ? API : 'https://evil.test'),
      enumerable: true,
      configurable: true,
    })
    return config
  })
  auth.login(tokens(1))
  await auth.ready
  await http.get('/me')
  expect(fake.calls.map((c) => c.authorization)).toEqual([undefined])
})
