/**
 * What held up under attack: each test here PASSES on the reviewed commit and pins down a
 * property of the DPoP feature that the review tried, and failed, to break.
 */
import axios, { isAxiosError } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient as createFetchClient } from '../../../src/fetch.js'
import { createAuthClient, type RefreshFunction } from '../../../src/index.js'
import {
  createHarness,
  dpopSignInAt,
  type Harness,
  safeStringify,
  signInAt,
  type Transport,
} from '../../helpers.js'
import { claimsOf, noRefresh, type SeenRequest, tinyServer } from './support.js'

let harness: Harness | undefined
const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await harness?.close()
  harness = undefined
})

const TRANSPORTS: Transport[] = ['fetch', 'axios']

async function dpopHarness(
  transport: Transport,
  options: Parameters<typeof createHarness>[0] = {},
  nonce: 'both' | 'resource' | 'token' | false = 'both',
) {
  harness = await createHarness({ dpop: true, ...options }, { dpop: { nonce } }, transport)
  return harness
}

/** A protected call on a client of our own, for either transport, any status resolving. */
async function opaqueClient(
  transport: Transport,
  api: string,
  refresh: RefreshFunction = noRefresh,
) {
  const http = axios.create({ baseURL: api })
  const auth =
    transport === 'axios'
      ? createAuthClient({ refresh, dpop: true, http, retry: false })
      : createFetchClient({ refresh, dpop: true, attachTo: [api], retry: false })
  closers.push(() => auth.dispose())
  await auth.dpop?.thumbprint()
  auth.login({
    access_token: 'opaque-dpop-token',
    refresh_token: 'opaque-refresh',
    token_type: 'DPoP',
    expires_in: 3600,
  })
  const get = async (path: string) => {
    if (transport === 'axios') {
      const r = await http.get(path, { validateStatus: null })
      return { status: r.status }
    }
    const r = await auth.fetch(`${api}${path}`)
    await r.arrayBuffer()
    return { status: r.status }
  }
  return { auth, http, get }
}

describe('contrast for the double-login finding', () => {
  it('without DPoP, login() twice with the same tokens is a harmless no-op', async () => {
    harness = await createHarness({}, {}, 'fetch')
    const tokens = await signInAt(harness.server.url)
    harness.auth.login(tokens)
    harness.auth.login(tokens)
    expect((await harness.request('/api/x')).status).toBe(200)
  })
})

describe.each(TRANSPORTS)('nonce challenges on protected requests (%s)', (transport) => {
  it('401 use_dpop_nonce WITHOUT a DPoP-Nonce header: returned as it is, no retry, no refresh', async () => {
    const api = await tinyServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"' })
      res.end()
    })
    closers.push(() => api.close())
    let refreshes = 0
    const client = await opaqueClient(transport, api.url, async () => {
      refreshes += 1
      throw new Error('no')
    })
    expect((await client.get('/api/x')).status).toBe(401)
    expect(api.seen).toHaveLength(1)
    expect(refreshes).toBe(0)
    expect(client.auth.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
  })

  it('`Bearer error="invalid_token", DPoP error="use_dpop_nonce"` with a nonce: one retry with it, no refresh', async () => {
    const api = await tinyServer((req, res) => {
      const proof = req.headers.dpop
      const nonce = typeof proof === 'string' ? claimsOf(proof).nonce : undefined
      if (nonce === 'n-2') {
        res.writeHead(200)
        return res.end('{}')
      }
      res.writeHead(401, {
        'www-authenticate': 'Bearer error="invalid_token", DPoP error="use_dpop_nonce"',
        'dpop-nonce': 'n-2',
      })
      res.end()
    })
    closers.push(() => api.close())
    let refreshes = 0
    const client = await opaqueClient(transport, api.url, async () => {
      refreshes += 1
      throw new Error('no')
    })
    expect((await client.get('/api/x')).status).toBe(200)
    expect(api.seen).toHaveLength(2)
    expect(refreshes).toBe(0)
  })

  it('a server that answers use_dpop_nonce with a new nonce forever: two sends, then its 401; never a refresh', async () => {
    let n = 0
    const api = await tinyServer((_req, res) => {
      n += 1
      res.writeHead(401, {
        'www-authenticate': 'DPoP error="use_dpop_nonce"',
        'dpop-nonce': `n${n}`,
      })
      res.end()
    })
    closers.push(() => api.close())
    let refreshes = 0
    const client = await opaqueClient(transport, api.url, async () => {
      refreshes += 1
      throw new Error('no')
    })
    expect((await client.get('/api/x')).status).toBe(401)
    expect(api.seen).toHaveLength(2)
    expect(refreshes).toBe(0)
  })

  it('a hostile nonce (huge, quoted, control characters) is never echoed in a proof', async () => {
    const evil = ['x'.repeat(5000), 'a"b', 'a\\b', 'a b', 'é']
    let i = 0
    const api = await tinyServer((_req, res) => {
      const nonce = evil[i % evil.length] as string
      i += 1
      res.writeHead(200, {
        'dpop-nonce':
          encodeURIComponent(nonce) === nonce
            ? nonce
            : Buffer.from(nonce, 'utf8').toString('latin1'),
      })
      res.end('{}')
    })
    closers.push(() => api.close())
    const client = await opaqueClient(transport, api.url)
    for (let k = 0; k < evil.length + 1; k += 1) await client.get(`/api/${k}`)
    const nonces = api.seen.map((r: SeenRequest) => claimsOf(String(r.headers.dpop)).nonce)
    expect(nonces.every((nonce) => nonce === undefined)).toBe(true)
  })

  it('a nonce from another origin a redirect led to is not learned for the API', async () => {
    const elsewhere = await tinyServer((_req, res) => {
      res.writeHead(200, { 'dpop-nonce': 'from-elsewhere' })
      res.end('{}')
    })
    let first = true
    const api = await tinyServer((_req, res) => {
      if (first) {
        first = false
        res.writeHead(307, { location: `${elsewhere.url}/landing` })
        return res.end()
      }
      res.writeHead(200)
      res.end('{}')
    })
    closers.push(
      () => elsewhere.close(),
      () => api.close(),
    )
    const client = await opaqueClient(transport, api.url)
    await client.get('/api/redirected')
    await client.get('/api/next')
    const last = api.seen.at(-1)
    expect(claimsOf(String(last?.headers.dpop)).nonce).toBeUndefined()
  })
})

describe.each(TRANSPORTS)('sessions and nonces (%s)', (transport) => {
  it('a burst of 20 with a rotated nonce and expired tokens: one refresh, all 200, each sent at most 3 times', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    h.server.resetCounters()
    h.server.rotateDpopNonce()
    h.server.expireAccessTokens()
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => h.request(`/api/b/${i}`)),
    )
    expect(answers.every((a) => a.status === 200)).toBe(true)
    expect(h.server.counters.refreshSuccesses).toBe(1)
    expect(h.server.maxConcurrentRefreshes).toBe(1)
    for (let i = 0; i < 20; i += 1) {
      expect(h.server.requests.filter((r) => r.path === `/api/b/${i}`).length).toBeLessThanOrEqual(
        3,
      )
    }
    expect(h.auth.actor.getSnapshot().context.queue).toEqual([])
  })

  it('a nonce challenge that arrives while a refresh runs waits for it, then goes once more with the new token', async () => {
    const h = await dpopHarness(transport)
    await h.signIn()
    h.server.resetCounters()
    // A request on the wire with the current token…
    const onTheWire = h.server.hold('/api/challenged')
    const challenged = h.request('/api/challenged')
    await onTheWire.untilWaiting(1)
    // …while another one's 401 starts a refresh, which the server holds.
    const refresh = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const expired = h.request('/api/expired')
    await refresh.untilWaiting(1)
    // The first is answered use_dpop_nonce (checked before its token) during the refresh.
    const challenge = h.server.challengeDpopNonce('/api/challenged')
    onTheWire.release()
    await h.server.waitFor((s) => (s.counters.dpopNonceChallenges ?? 0) >= 1)
    expect(h.auth.actor.getSnapshot().matches('refreshing')).toBe(true)
    refresh.release()
    await challenge.untilWaiting(1)
    challenge.release()
    expect((await expired).status).toBe(200)
    expect((await challenged).status).toBe(200)
    expect(h.server.counters.refreshSuccesses).toBe(1)
    const sent = h.server.requests.filter((r) => r.path === '/api/challenged')
    expect(sent).toHaveLength(2)
    expect(sent[0]?.authorization).not.toBe(sent[1]?.authorization)
  })
})

// axios runs its request interceptors a tick after the call, so a logout or abort right after
// the call precedes the signing there: these are made on the fetch transport, where the proof
// is being signed when auth.fetch() returns.
describe('fetch: while a proof is being signed', () => {
  it('logout() and a new login() while signing: LoggedOutError, nothing sent with either token', async () => {
    const h = await dpopHarness('fetch')
    await h.signIn()
    expect((await h.request('/api/warm')).status).toBe(200)
    const pending = h.request('/api/switched').catch((e: unknown) => e)
    await h.auth.logout()
    await h.signIn()
    const outcome = await pending
    expect(outcome).toMatchObject({ code: 'LOGGED_OUT' })
    expect(h.server.requests.filter((r) => r.path === '/api/switched')).toEqual([])
  })

  it('abort while signing: the caller gets the abort, nothing is sent', async () => {
    const h = await dpopHarness('fetch')
    await h.signIn()
    expect((await h.request('/api/warm')).status).toBe(200)
    const controller = new AbortController()
    const pending = h.request('/api/aborted', { signal: controller.signal })
    controller.abort()
    const outcome = await pending.catch((e: unknown) => e)
    expect(outcome).toBeInstanceOf(Error)
    expect(h.server.requests.filter((r) => r.path === '/api/aborted')).toEqual([])
  })
})

describe('more that holds', () => {
  it('a streamed body met by a nonce challenge: that 401 is returned, nothing re-sent, no refresh', async () => {
    const h = await dpopHarness('fetch')
    await h.signIn()
    h.server.resetCounters()
    const challenge = h.server.challengeDpopNonce('/api/stream')
    closers.push(() => challenge.release())
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"a":1}'))
        controller.close()
      },
    })
    const response = await h.auth.fetch(`${h.server.url}/api/stream`, {
      method: 'POST',
      body,
      duplex: 'half',
    } as RequestInit)
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(/use_dpop_nonce/)
    expect(h.server.requests.filter((r) => r.path === '/api/stream')).toHaveLength(1)
    expect(h.server.counters.refreshCalls).toBe(0)
  })

  it('a Request with a streamed body met by a nonce challenge is sent once more, body intact', async () => {
    const h = await dpopHarness('fetch')
    await h.signIn()
    const challenge = h.server.challengeDpopNonce('/api/req-stream')
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"a":1}'))
        controller.close()
      },
    })
    const request = new Request(`${h.server.url}/api/req-stream`, {
      method: 'POST',
      body,
      duplex: 'half',
    } as RequestInit)
    const pending = h.auth.fetch(request)
    await challenge.untilWaiting(1)
    challenge.release()
    expect((await pending).status).toBe(200)
    const sent = h.server.requests.filter((r) => r.path === '/api/req-stream')
    expect(sent.map((r) => r.body)).toEqual(['{"a":1}', '{"a":1}'])
  })

  it('logout() while a first sign-in is on the wire: its login() still works', async () => {
    const h = await dpopHarness('fetch')
    const signing = dpopSignInAt(h.server.url, h.auth.dpop)
    await h.auth.logout()
    h.auth.login(await signing)
    expect((await h.request('/api/x')).status).toBe(200)
  })

  it('dpop: {} is dpop: true', async () => {
    const h = await dpopHarness('fetch', { dpop: {} })
    await h.signIn()
    expect((await h.request('/api/x')).status).toBe(200)
  })

  it('a logout ends the key with the session: the next sign-in has a new key', async () => {
    const h = await dpopHarness('fetch')
    await h.signIn()
    // The key the session's tokens are bound to.
    const token = h.auth.actor.getSnapshot().context.session?.accessToken ?? ''
    const first = h.server.verifyAccessToken(token)?.cnf?.jkt
    expect(first).toBeDefined()
    await h.auth.logout()
    expect(await h.auth.dpop?.thumbprint()).not.toBe(first)
  })
})

describe('dispose() right after an axios request is made', () => {
  it('axios: DISPOSED, nothing sent (the interceptor runs after dispose; not a mid-signing test)', async () => {
    const h = await dpopHarness('axios')
    await h.signIn()
    expect((await h.request('/api/warm')).status).toBe(200)
    const pending = h.request('/api/after-dispose')
    h.auth.dispose()
    expect(await pending.catch((e: unknown) => e)).toMatchObject({ code: 'DISPOSED' })
    expect(h.server.requests.filter((r) => r.path === '/api/after-dispose')).toEqual([])
  })
})

describe('the token endpoint', () => {
  it('refresh errors that are nonce/proof matters never end the session (plain object, axios-shaped, oauth4webapi-shaped)', async () => {
    const shapes: unknown[] = [
      { error: 'use_dpop_nonce' },
      { error: 'invalid_dpop_proof', status: 400 },
      { response: { status: 400, data: { error: 'use_dpop_nonce' }, headers: {} } },
      {
        status: 401,
        cause: [{ scheme: 'dpop', parameters: { error: 'use_dpop_nonce' } }],
      },
      {
        response: {
          status: 401,
          headers: { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' },
        },
      },
    ]
    for (const shape of shapes) {
      let calls = 0
      const auth = createFetchClient({
        dpop: true,
        attachTo: [],
        retry: false,
        refresh: async () => {
          calls += 1
          throw shape
        },
      })
      closers.push(() => auth.dispose())
      await auth.dpop?.thumbprint()
      auth.login({ access_token: 'a', refresh_token: 'r', token_type: 'DPoP', expires_in: 0 })
      const outcome = await auth.getAccessToken().catch((e: unknown) => e)
      expect(outcome).toMatchObject({ code: 'REFRESH_FAILED' })
      expect(auth.actor.getSnapshot().value).toEqual({ authenticated: 'stale' })
      expect(calls).toBeLessThanOrEqual(2)
    }
  })

  it('an invalid_grant refresh is never sent again for a nonce (only use_dpop_nonce is retried)', async () => {
    let calls = 0
    const auth = createFetchClient({
      dpop: true,
      attachTo: [],
      retry: false,
      refresh: async () => {
        calls += 1
        throw {
          response: {
            status: 400,
            data: { error: 'invalid_grant' },
            headers: { 'dpop-nonce': 'n' },
          },
        }
      },
    })
    closers.push(() => auth.dispose())
    await auth.dpop?.thumbprint()
    auth.login({ access_token: 'a', refresh_token: 'r', token_type: 'DPoP', expires_in: 0 })
    await expect(auth.getAccessToken()).resolves.toBeNull()
    expect(calls).toBe(1)
    expect(auth.actor.getSnapshot().value).toBe('expired')
  })

  it('axios refresh with a baseURL and the default (http) adapter learns the nonce (contrast)', async () => {
    let base = ''
    const h = await dpopHarness('fetch', {
      retry: false,
      refresh: async (session, { signal, dpop }) => {
        const tokenHttp = axios.create({ baseURL: base })
        const proof = await dpop?.proof('POST', `${base}/auth/refresh`)
        return (
          await tokenHttp.post(
            '/auth/refresh',
            { refreshToken: session.refreshToken },
            { signal, headers: { DPoP: proof } },
          )
        ).data
      },
    })
    base = h.server.url
    await h.signIn()
    h.server.expireAccessTokens()
    const held = h.server.hold('/auth/refresh')
    const answer = h.request('/api/after')
    await held.untilWaiting(1)
    h.server.rotateDpopNonce()
    held.release()
    expect((await answer).status).toBe(200)
  })

  it('a downgrade at login (token_type Bearer) is refused; a client without dpop refuses DPoP tokens', async () => {
    const h = await dpopHarness('fetch')
    const tokens = await dpopSignInAt(h.server.url, h.auth.dpop)
    expect(() => h.auth.login({ ...tokens, tokenType: 'Bearer' })).toThrow(/Bearer/)
    const plain = createFetchClient({ refresh: noRefresh, attachTo: [] })
    closers.push(() => plain.dispose())
    expect(() => plain.login(tokens)).toThrow(/dpop/)
  })
})

describe('what never leaks', () => {
  it('axios: a proof for a URL with userinfo names the URL without it', async () => {
    const api = await tinyServer((_req, res) => {
      res.writeHead(200)
      res.end('{}')
    })
    closers.push(() => api.close())
    const http = axios.create({ baseURL: api.url.replace('http://', 'http://user:s3cret@') })
    const auth = createAuthClient({ refresh: noRefresh, dpop: true, http })
    closers.push(() => auth.dispose())
    await auth.dpop?.thumbprint()
    auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
    await http.get('/api/thing')
    expect(claimsOf(String(api.seen[0]?.headers.dpop)).htu).toBe(`${api.url}/api/thing`)
  })

  it('axios: a fresh config re-sent to another origin goes without token and proof', async () => {
    const ok = (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(200)
      res.end('{}')
    }
    const api = await tinyServer(ok)
    const elsewhere = await tinyServer(ok)
    closers.push(
      () => api.close(),
      () => elsewhere.close(),
    )
    const http = axios.create({ baseURL: api.url })
    const auth = createAuthClient({ refresh: noRefresh, dpop: true, http })
    closers.push(() => auth.dispose())
    await auth.dpop?.thumbprint()
    auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
    const first = await http.get('/api/first')
    await http.request({ ...first.config, baseURL: elsewhere.url })
    await http.request({ ...first.config, skipAuth: true })
    expect(elsewhere.seen[0]?.headers.authorization).toBeUndefined()
    expect(elsewhere.seen[0]?.headers.dpop).toBeUndefined()
    expect(api.seen.at(-1)?.headers.dpop).toBeUndefined()
  })

  it('axios: error.config re-sent by a retry helper after logout and a new login is refused (LoggedOutError)', async () => {
    const h = await dpopHarness('axios')
    await h.signIn()
    const failed = await h.http
      .get('/api/soft-401', { validateStatus: (s) => s === 599 })
      .catch((e: unknown) => e)
    expect(isAxiosError(failed)).toBe(true)
    const config = isAxiosError(failed) ? failed.config : undefined
    await h.auth.logout()
    await h.signIn()
    const before = h.server.requests.length
    const resent = await h.http.request({ ...config }).catch((e: unknown) => e)
    expect(resent).toMatchObject({ code: 'LOGGED_OUT' })
    expect(h.server.requests.length).toBe(before)
  })

  it('nonce challenges and a refresh: no token, proof or refresh token in warnings, inspection or a serialised axios error', async () => {
    const events: string[] = []
    const h = await dpopHarness('axios', { inspect: (e) => events.push(safeStringify(e)) })
    await h.signIn()
    h.server.rotateDpopNonce()
    const challenge = h.server.challengeDpopNonce('/api/c')
    const pending = h.request('/api/c')
    await challenge.untilWaiting(1)
    challenge.release()
    await pending
    h.server.expireAccessTokens()
    await h.request('/api/e')
    // An axios error after a nonce retry (the server challenges the retry as well).
    const again = h.server.challengeDpopNonce('/api/twice')
    const twice = h.http.get('/api/twice').catch((e: unknown) => e)
    await again.untilWaiting(1)
    h.server.challengeDpopNonce('/api/twice')
    again.release()
    const error = await twice
    expect(isAxiosError(error)).toBe(true)
    const serialised = isAxiosError(error) ? JSON.stringify(error.toJSON()) : ''
    const text = [...events, ...h.warnings, serialised].join('\n')
    const secrets = [
      ...h.issuedRefreshTokens,
      ...h.server.requests.flatMap((r) => [r.dpop, r.authorization?.replace(/^DPoP /, '')]),
    ].filter((s): s is string => typeof s === 'string' && s.length > 0)
    expect(secrets.length).toBeGreaterThan(5)
    for (const secret of secrets) expect(text).not.toContain(secret)
  })
})
