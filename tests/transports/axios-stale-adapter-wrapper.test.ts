import axios, { type AxiosAdapter } from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, deferred, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F7: the holding() wrapper is stored on the config (`config.adapter`) and marked with HOLDS;
// a check that finds HOLDS does not wrap again. A config re-sent through ANOTHER client's
// instance keeps the first client's wrapper: the request is held under the first client's
// queue and epoch. The second client's logout then does not abort it (its token leaves
// after its logout); and the first client's logout aborts the second client's request.

const clients: AuthClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.dispose()
})

const OTHER = 'https://other.test'

it("a config from client A's instance, re-sent through client B's, is held by B's session", async () => {
  let gate: ReturnType<typeof deferred<void>> | undefined
  let reached = deferred()
  const seen: Array<{ aborted: boolean | undefined; authorization: unknown }> = []
  const adapter: AxiosAdapter = async (config) => {
    reached.resolve()
    if (gate) await gate.promise
    seen.push({
      aborted: (config.signal as AbortSignal | undefined)?.aborted,
      authorization: config.headers.get('Authorization'),
    })
    return { data: {}, status: 200, statusText: '', headers: {}, config, request: {} }
  }
  const a = axios.create({ baseURL: API, adapter })
  const b = axios.create({ adapter })
  const A = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  const B = createAuthClient({ refresh: async () => tokens(20), onWarning: () => undefined })
  clients.push(A, B)
  A.attach(a, { attachTo: [API] })
  B.attach(b, { attachTo: [OTHER] })
  A.login(tokens(1))
  B.login(tokens(10))
  await A.ready
  await B.ready
  const first = await a.get('/me')
  seen.length = 0
  gate = deferred()
  reached = deferred()
  const request = b.request({ ...first.config, baseURL: OTHER, url: '/me' }).catch(() => undefined)
  await reached.promise
  await B.logout() // B's session ends while B's token is inside the adapter
  gate.resolve()
  await request
  expect(seen).toEqual([{ aborted: true, authorization: 'Bearer access-10' }])
})
