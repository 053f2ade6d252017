import axios, { type AxiosAdapter } from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, deferred, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F4: only `typeof config.adapter === 'function'` was wrapped by holding(). Custom code given
// to axios in the other documented shapes (an adapter list `[fn]`, `['fetch', fn]` where
// fetch is unavailable, axios' fetch adapter with `env.fetch`) gets the caller's signal, not
// the session's: a logout while it holds the request does not abort it, the old token leaves.

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

async function setup(adapter: unknown, extra: Record<string, unknown> = {}) {
  const http = axios.create({ baseURL: API, adapter: adapter as AxiosAdapter, ...extra })
  auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  auth.attach(http, { attachTo: [API] })
  auth.login(tokens(1))
  await auth.ready
  return http
}

for (const shape of ['[fn]', "['xhr', fn] (xhr unavailable in Node)"] as const) {
  it(`adapter ${shape}: a logout while it holds the request aborts it`, async () => {
    const reached = deferred()
    const gate = deferred()
    const seen: Array<{ aborted: boolean | undefined; authorization: unknown }> = []
    const fn: AxiosAdapter = async (config) => {
      reached.resolve()
      await gate.promise // an offline queue / rate limiter
      seen.push({
        aborted: (config.signal as AbortSignal | undefined)?.aborted,
        authorization: config.headers.get('Authorization'),
      })
      return { data: {}, status: 200, statusText: '', headers: {}, config, request: {} }
    }
    const http = await setup(shape === '[fn]' ? [fn] : ['xhr', fn])
    const request = http.get('/held').catch(() => undefined)
    await reached.promise
    await auth?.logout()
    gate.resolve()
    await request
    // With `adapter: fn` the signal is aborted (tests/transports/axios-send X5).
    expect(seen).toEqual([{ aborted: true, authorization: 'Bearer access-1' }])
  })
}
