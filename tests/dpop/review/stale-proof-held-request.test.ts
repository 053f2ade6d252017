/**
 * FINDING (medium-low): the proof is signed before the request enters the app's own code
 * that may hold it: the `fetch` option (a rate limiter, a CSRF step, an offline queue: the
 * cases the fetch transport's session hold is built for), or, with axios, an interceptor
 * registered before the client's (it runs after the proof was made). Held longer than the
 * server's `iat` window, the proof is refused (`invalid_dpop_proof`), and the 401 is
 * returned as it is: no fresh proof, no retry. The token was fine throughout. A nonce server
 * answers the same wait with use_dpop_nonce and the request is saved; a server that bounds
 * freshness by `iat` alone (RFC 9449 §4.3 allows it) fails it.
 */
import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient } from '../../../src/index.js'
import { createHarness, dpopSignInAt, type Harness } from '../../helpers.js'

let harness: Harness | undefined
const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await harness?.close()
  harness = undefined
})

function gate() {
  let open: () => void = () => undefined
  let entered: () => void = () => undefined
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  const reached = new Promise<void>((resolve) => {
    entered = resolve
  })
  return { open, opened, reached, entered }
}

describe('a request held by the app after its proof was signed', () => {
  it('fetch option (a rate limiter) holds it past the iat window: it still succeeds', async () => {
    let held: ReturnType<typeof gate> | undefined
    const h = await createHarness(
      {
        dpop: true,
        fetch: async (input, init) => {
          const g = held
          if (g) {
            g.entered()
            await g.opened
          }
          return fetch(input, init)
        },
      },
      { dpop: { nonce: false, iatWindow: 5 } },
      'fetch',
    )
    harness = h
    await h.signIn()
    held = gate()
    const answer = h.request('/api/throttled')
    await held.reached
    h.clock.advance(10_000) // the limiter let it go 10 s later
    const g = held
    held = undefined
    g.open()
    const result = await answer
    expect(result.data).not.toMatchObject({ error: 'invalid_dpop_proof' })
    expect(result.status).toBe(200)
  })

  it('axios: an interceptor that runs after the proof holds it past the iat window: it still succeeds', async () => {
    const h = await createHarness({}, { dpop: { nonce: false, iatWindow: 5 } }, 'fetch')
    harness = h
    const held = gate()
    const http = axios.create({ baseURL: h.server.url })
    // Registered before the client's, so it runs after it: a rate limiter, say.
    http.interceptors.request.use(async (config) => {
      if (config.url === '/api/throttled') {
        held.entered()
        await held.opened
      }
      return config
    })
    const auth = createAuthClient({
      dpop: true,
      http,
      clock: h.clock,
      refresh: async () => {
        throw new Error('unused')
      },
    })
    closers.push(() => auth.dispose())
    auth.login(await dpopSignInAt(h.server.url, auth.dpop))
    const answer = http.get('/api/throttled', { validateStatus: null })
    await held.reached
    h.clock.advance(10_000)
    held.open()
    const result = await answer
    expect(result.data).not.toMatchObject({ error: 'invalid_dpop_proof' })
    expect(result.status).toBe(200)
  })
})
