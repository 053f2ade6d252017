/**
 * The client with DPoP against the test token server (proofs verified, tokens bound, nonces
 * required), on both transports: what goes out, nonce challenges that never refresh, the
 * token endpoint's nonce, and what never leaves (tokens and proofs elsewhere, in errors, in
 * inspection).
 */
import axios, { isAxiosError } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient as createFetchClient } from '../../src/fetch.js'
import { createAuthClient, DpopError, memorySession } from '../../src/index.js'
import type { TestDpopOptions } from '../../src/testing/index.js'
import { createHarness, type Harness, safeStringify, type Transport } from '../helpers.js'

const TRANSPORTS: Transport[] = ['axios', 'fetch']
let harness: Harness | undefined

afterEach(async () => {
  await harness?.close()
  harness = undefined
})

async function dpopHarness(
  transport: Transport,
  dpop: TestDpopOptions = { nonce: 'both' },
  options: Parameters<typeof createHarness>[0] = {},
) {
  harness = await createHarness({ dpop: true, ...options }, { dpop }, transport)
  return harness
}

describe.each(TRANSPORTS)('DPoP through %s', (transport) => {
  it('every protected request carries a DPoP token and its own proof; the server verifies each', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    // The sign-in met the token endpoint's challenge; what follows is counted from here.
    h.server.resetCounters()
    const answers = await Promise.all([1, 2, 3].map((i) => h.request(`/api/r/${i}?q=${i}`)))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
    const sent = h.server.requests.filter((r) => r.path.startsWith('/api/'))
    expect(sent).toHaveLength(3)
    for (const request of sent) {
      expect(request.authorization).toMatch(/^DPoP /)
      expect(request.dpop).toBeDefined()
    }
    expect(new Set(sent.map((r) => r.dpop)).size).toBe(3)
    // The login's response told the nonce: no request was challenged for it.
    expect(h.server.counters).toMatchObject({ dpopNonceChallenges: 0, dpopProofsRefused: 0 })
  })

  it('a new nonce: the request is challenged, sent once more with it, and no refresh happens', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    h.server.resetCounters()
    h.server.rotateDpopNonce()
    const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => h.request(`/api/n/${i}`)))
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200])
    expect(h.server.counters).toMatchObject({ dpopNonceChallenges: 5, refreshCalls: 0 })
    expect(h.auth.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
  })

  it('a server that keeps asking for a nonce: one retry, then its 401 as it is; never a refresh', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    h.server.resetCounters()
    const first = h.server.challengeDpopNonce('/api/stubborn')
    // The retry is held; when it arrives, the server challenges it again.
    const answer = h.request('/api/stubborn')
    await first.untilWaiting(1)
    h.server.challengeDpopNonce('/api/stubborn')
    first.release()
    expect((await answer).status).toBe(401)
    expect(h.server.counters).toMatchObject({ dpopNonceChallenges: 2, refreshCalls: 0 })
    expect(h.auth.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
  })

  it('a proof the server refuses (invalid_dpop_proof) is returned as it is: no refresh, no replay', async () => {
    const h = await dpopHarness(transport, { nonce: 'both', iatWindow: 5 })
    await h.signIn()
    // The client's clock runs ahead of the server's: its proofs are from the future.
    const skewed = createHarnessClockSkew(h, 60_000)
    const answer = await h.request('/api/skewed')
    skewed.undo()
    expect(answer.status).toBe(401)
    expect(h.server.counters).toMatchObject({ dpopProofsRefused: 1, refreshCalls: 0 })
    expect(h.server.requests.filter((r) => r.path === '/api/skewed')).toHaveLength(1)
  })

  it('an expired token: one refresh (its nonce challenge at the token endpoint is not a failure), every request replayed once', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    h.server.rotateDpopNonce()
    h.server.expireAccessTokens()
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => h.request(`/api/e/${i}`)),
    )
    expect(answers.every((a) => a.status === 200)).toBe(true)
    expect(h.server.counters).toMatchObject({
      refreshSuccesses: 1,
      refreshFailures: 0,
      reuseDetections: 0,
    })
    expect(h.auth.actor.getSnapshot().context.attempt).toBe(0)
  })

  it('requests to other origins carry neither the token nor a proof', async () => {
    const h = await dpopHarness(transport)
    const other = await createHarness({}, {}, 'fetch')
    try {
      await h.signIn()
      const seen: Array<string | undefined> = []
      if (transport === 'axios') await h.http.get(`${other.server.url}/public`)
      else await h.auth.fetch(`${other.server.url}/public`)
      const logged = other.server.requests.at(-1)
      seen.push(logged?.authorization, logged?.dpop)
      expect(seen).toEqual([undefined, undefined])
    } finally {
      await other.close()
    }
  })

  it('neither the token nor any proof reaches inspection output or a serialised error', async () => {
    const events: string[] = []
    const h = await dpopHarness(
      transport,
      { nonce: 'both' },
      { inspect: (event) => events.push(safeStringify(event)) },
    )
    await h.signIn()
    h.server.rotateDpopNonce()
    h.server.expireAccessTokens()
    await h.request('/api/x')
    let serialised = ''
    try {
      await h.http.get('/api/soft-401', { validateStatus: (s) => s === 599 })
    } catch (error) {
      serialised = isAxiosError(error) ? JSON.stringify(error.toJSON()) : ''
    }
    const secrets = h.server.requests.flatMap((r) => [
      r.dpop,
      r.authorization?.replace(/^DPoP /, ''),
    ])
    const text = events.join('\n') + serialised
    for (const secret of secrets) if (secret) expect(text).not.toContain(secret)
  })
})

/** Makes the client's proofs carry an `iat` `ms` ahead of the server's clock, until undone. */
function createHarnessClockSkew(h: Harness, ms: number) {
  // The client reads `now` from the harness' clock object on every call; the server was
  // given the function itself, so it keeps the true time.
  const clock = h.clock as { now: () => number }
  const original = clock.now
  clock.now = () => original() + ms
  return {
    undo() {
      clock.now = original
    },
  }
}

describe('the token endpoint', () => {
  it("an axios refresh with the handle's proof: use_dpop_nonce is sent once more, not counted", async () => {
    const h = await dpopHarness(
      'fetch',
      { nonce: 'token' },
      {
        refresh: async (session, { signal, dpop }) => {
          if (!dpop) throw new Error('no dpop')
          const url = `${h.server.url}/auth/refresh`
          const response = await axios.post(
            url,
            { refreshToken: session.refreshToken },
            { signal, headers: { DPoP: await dpop.proof('POST', url) } },
          )
          return response.data
        },
      },
    )
    await h.signIn()
    h.server.rotateDpopNonce()
    h.server.expireAccessTokens()
    expect((await h.request('/api/after')).status).toBe(200)
    expect(h.server.counters).toMatchObject({
      dpopNonceChallenges: 1,
      refreshSuccesses: 1,
      refreshFailures: 0,
    })
    expect(h.auth.actor.getSnapshot().context.error).toBeNull()
  })

  it('a refresh answered with a Bearer token (a downgrade) ends the session', async () => {
    const h = await dpopHarness(
      'fetch',
      { nonce: false },
      {
        refresh: async () => ({ access_token: 'plain', token_type: 'Bearer', expires_in: 60 }),
      },
    )
    await h.signIn()
    h.server.expireAccessTokens()
    await expect(h.request('/api/x')).rejects.toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(h.auth.actor.getSnapshot().value).toBe('expired')
  })

  it('a proof refused at the token endpoint keeps the session (the refresh token was not looked at)', async () => {
    const h = await dpopHarness(
      'fetch',
      { nonce: false },
      {
        retry: false,
        refresh: async (session, { signal }) => {
          const response = await fetch(`${h.server.url}/auth/refresh`, {
            method: 'POST',
            signal,
            headers: { 'content-type': 'application/json', dpop: 'not-a-proof' },
            body: JSON.stringify({ refreshToken: session.refreshToken }),
          })
          const body = await response.json()
          if (!response.ok) {
            throw Object.assign(new Error('refused'), {
              status: response.status,
              response: { data: body },
            })
          }
          return body
        },
      },
    )
    await h.signIn()
    h.server.expireAccessTokens()
    await expect(h.request('/api/x')).rejects.toMatchObject({ code: 'REFRESH_FAILED' })
    expect(h.auth.actor.getSnapshot().value).toEqual({ authenticated: 'stale' })
  })
})

describe('keys and sessions', () => {
  it('a stored session whose key is gone (a restarted process) is not restored', async () => {
    const h = await dpopHarness('fetch')
    const storage = memorySession()
    const first = createFetchClient({
      dpop: true,
      storage,
      attachTo: [h.server.url],
      refresh: async () => {
        throw new Error('unused')
      },
    })
    first.login(await dpopSignIn(h, first))
    await new Promise((resolve) => setTimeout(resolve, 0))
    first.dispose()
    const warnings: string[] = []
    const second = createFetchClient({
      dpop: true,
      storage,
      attachTo: [h.server.url],
      onWarning: (message) => warnings.push(message),
      refresh: async () => {
        throw new Error('unused')
      },
    })
    await second.ready
    expect(second.actor.getSnapshot().value).toBe('loggedOut')
    expect(warnings).toEqual(['the stored session was not restored: its DPoP key is gone.'])
    second.dispose()
  })

  it('axios: an interceptor that moves the request after the proof was made: not sent, a DpopError', async () => {
    const h = await dpopHarness('axios')
    // Registered before the client's interceptor, so it runs after it, once the proof is made.
    const http = axios.create({ baseURL: h.server.url })
    http.interceptors.request.use((config) => ({ ...config, url: '/api/elsewhere' }))
    const auth = createAuthClient({
      dpop: { keyPair: (await h.auth.dpop?.keyPair()) as CryptoKeyPair },
      http,
      refresh: async () => {
        throw new Error('unused')
      },
    })
    try {
      auth.login(await dpopSignIn(h, auth))
      const before = h.server.requests.length
      const error = await http.get('/api/here').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(DpopError)
      expect(error).toMatchObject({ code: 'DPOP_PROOF_MISMATCH' })
      expect(h.server.requests.length).toBe(before)
    } finally {
      auth.dispose()
    }
  })
})

async function dpopSignIn(h: Harness, auth: { dpop?: { fetch: typeof fetch } | undefined }) {
  const response = await auth.dpop?.fetch(`${h.server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'ada', password: 'secret' }),
  })
  if (!response?.ok) throw new Error('login refused')
  return response.json()
}
