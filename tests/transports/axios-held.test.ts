import { getEventListeners } from 'node:events'
import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, fakeAdapter, tokens } from './axiosFake.js'

// Second review: a request inside a custom adapter holds the session's signal. The hold is
// released when the adapter settles, whatever the interceptors or the adapter do: no
// listener stays on the caller's signal, and a later logout aborts nothing that finished.

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

const N = 25

async function setup(
  configure: (http: ReturnType<typeof axios.create>) => void,
  answer?: Parameters<typeof fakeAdapter>[0],
) {
  const fake = fakeAdapter(answer)
  const http = axios.create({ baseURL: API, adapter: fake.adapter })
  configure(http)
  auth = createAuthClient({
    http,
    attachTo: [API],
    refresh: async () => tokens(2),
    onWarning: () => undefined,
  })
  auth.login(tokens(1))
  await auth.ready
  return { http, fake }
}

/**
 * Sends N requests one after another on one caller signal, then logs out: the listeners
 * left on that signal, and how many finished requests the logout aborted.
 */
async function leftAfter(
  fake: ReturnType<typeof fakeAdapter>,
  send: (signal: AbortSignal) => Promise<unknown>,
) {
  const caller = new AbortController()
  for (let i = 0; i < N; i++) await send(caller.signal)
  const listeners = getEventListeners(caller.signal, 'abort').length
  await auth?.logout()
  return { listeners, abortedAfterLogout: fake.calls.filter((c) => c.signal?.aborted).length }
}

describe('held requests are released on every path', () => {
  it('adapter rejecting with a plain Error (not an AxiosError)', async () => {
    const { http, fake } = await setup(
      () => undefined,
      () => new TypeError('fetch failed'),
    )
    const left = await leftAfter(fake, (signal) =>
      http.get('/x', { signal }).catch(() => undefined),
    )
    expect(left).toEqual({ listeners: 0, abortedAfterLogout: 0 })
  })

  it('a response interceptor registered before attach that returns response.data', async () => {
    const { http, fake } = await setup((h) => h.interceptors.response.use((r) => r.data))
    const left = await leftAfter(fake, (signal) => http.get('/x', { signal }))
    expect(left).toEqual({ listeners: 0, abortedAfterLogout: 0 })
  })

  it('a response error interceptor registered before attach that wraps the error', async () => {
    const { http, fake } = await setup(
      (h) =>
        h.interceptors.response.use(undefined, (e) =>
          Promise.reject(new Error(`api: ${e.message}`)),
        ),
      () => 500,
    )
    const left = await leftAfter(fake, (signal) =>
      http.get('/x', { signal }).catch(() => undefined),
    )
    expect(left).toEqual({ listeners: 0, abortedAfterLogout: 0 })
  })

  it('a request transformer placed after ours that throws (axios docs: [...defaults.transformRequest, fn])', async () => {
    const { http } = await setup(() => undefined)
    const caller = new AbortController()
    const failing = () => {
      throw new Error('cannot serialise')
    }
    let errors = 0
    for (let i = 0; i < N; i++) {
      await http
        .post(
          '/x',
          { a: 1 },
          {
            signal: caller.signal,
            transformRequest: [...(http.defaults.transformRequest as []), failing],
          },
        )
        .catch(() => (errors += 1))
    }
    const listeners = getEventListeners(caller.signal, 'abort').length
    expect(errors).toBe(N)
    expect(listeners).toBe(0)
  })

  it('MaxListenersExceededWarning from leaked follow() listeners on one long-lived signal', async () => {
    const { http } = await setup(
      () => undefined,
      () => new TypeError('fetch failed'),
    )
    const caller = new AbortController()
    const seen: string[] = []
    const on = (w: Error) => seen.push(`${w.name}: ${w.message}`)
    process.on('warning', on)
    try {
      // Sequential requests: never more than one in flight.
      for (let i = 0; i < 15; i++)
        await http.get('/x', { signal: caller.signal }).catch(() => undefined)
      await new Promise((r) => setImmediate(r))
    } finally {
      process.off('warning', on)
    }
    expect(seen.filter((w) => w.includes('MaxListeners'))).toEqual([])
  })
})
