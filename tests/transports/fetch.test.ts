import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient } from '../../src/fetch.js'
import {
  AuthError,
  createAuthClient as createMainClient,
  LoggedOutError,
  SessionExpiredError,
} from '../../src/index.js'
import {
  createManualClock,
  createTestAuthServer,
  type TestAuthServer,
} from '../../src/testing/index.js'
import { createHarness, type Harness, refreshAt, signInAt } from '../helpers.js'

// auth.fetch against the real token server: fetch's own rules where fetch has an answer
// (statuses resolve, relative URLs in Node fail, aborts reject with the reason), the
// session's rules where the session decides (DESIGN.md, "auth.fetch").

let h: Harness
const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await h?.close()
  for (const close of closers.splice(0)) await close()
})

async function fetchHarness(options: Parameters<typeof createHarness>[0] = {}) {
  h = await createHarness(options, {}, 'fetch')
  await h.signIn()
  return h
}

async function otherServer(): Promise<TestAuthServer> {
  const server = await createTestAuthServer()
  closers.push(() => server.close())
  return server
}

/** A server that refuses every token: a 401 that survives the replay. */
async function alwaysUnauthorized(): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const server: Server = createServer((_, res) => {
    hits += 1
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"nope"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

const api = (path: string) => `${h.server.url}${path}`
const bodiesAt = (path: string) =>
  h.server.requests.filter((r) => r.path === path).map((r) => r.body)

describe('auth.fetch: where the token goes', () => {
  it('sends the token to attachTo origins only, and never to another origin', async () => {
    await fetchHarness()
    const other = await otherServer()
    expect((await h.auth.fetch(api('/api/me'))).status).toBe(200)
    expect((await h.auth.fetch(`${other.url}/public`)).status).toBe(200)
    expect(h.server.requests.at(-1)?.authorization).toMatch(/^Bearer /)
    expect(other.requests.at(-1)?.authorization).toBeUndefined()
  })

  it('decides on the URL fetch will use: look-alikes, Request subclasses, fickle toString', async () => {
    await fetchHarness()
    const other = await otherServer()
    const allowed = api('/api/me')
    const lookAlike = { url: allowed, clone: () => lookAlike, toString: () => `${other.url}/a` }
    class Sneaky extends Request {
      override get url() {
        return allowed
      }
    }
    let calls = 0
    const fickle = { toString: () => (calls++ === 0 ? allowed : `${other.url}/c`) }
    await h.auth.fetch(lookAlike as unknown as Request)
    await h.auth.fetch(new Sneaky(`${other.url}/b`))
    await h.auth.fetch(fickle as unknown as string)
    expect(other.requests.map((r) => [r.path, r.authorization])).toEqual([
      ['/a', undefined],
      ['/b', undefined],
    ])
    // The fickle URL was read once, and that very URL was requested.
    expect(h.server.requests.at(-1)?.authorization).toMatch(/^Bearer /)
  })

  it('a redirect to another origin does not carry the token (fetch drops it)', async () => {
    await fetchHarness()
    const other = await otherServer()
    const redirector = createServer((_, res) => {
      res.writeHead(302, { location: `${other.url}/public` }).end()
    })
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve))
    closers.push(() => new Promise((resolve) => redirector.close(() => resolve())))
    const from = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`
    const auth = createAuthClient({ refresh: refreshAt(h.server.url), attachTo: [from] })
    auth.login(await signInAt(h.server.url))
    expect((await auth.fetch(`${from}/start`)).status).toBe(200)
    expect(other.requests.map((r) => [r.path, r.authorization])).toEqual([['/public', undefined]])
    auth.dispose()
  })

  it('a relative URL fails in Node as fetch fails, and gets no token on the way', async () => {
    await fetchHarness()
    await expect(h.auth.fetch('/api/me')).rejects.toBeInstanceOf(TypeError)
    expect(h.server.requests.filter((r) => r.path === '/api/me')).toHaveLength(0)
  })

  it('skipAuth sends no token and is not passed on to fetch', async () => {
    const seen: Array<RequestInit | undefined> = []
    await fetchHarness({
      fetch: (input, init) => {
        seen.push(init)
        return fetch(input, init)
      },
    })
    h.server.expireAccessTokens()
    const response = await h.auth.fetch(api('/api/me'), { skipAuth: true })
    expect(response.status).toBe(401)
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
    expect(seen.at(-1)).not.toHaveProperty('skipAuth')
    expect(h.server.counters.refreshCalls).toBe(0)
  })

  it('signed out, a request goes without a token and resolves as fetch does', async () => {
    await fetchHarness()
    await h.auth.logout()
    const response = await h.auth.fetch(api('/api/me'))
    expect(response.status).toBe(401)
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
  })

  it('keeps the caller headers of a Request and of init, and adds only Authorization', async () => {
    await fetchHarness()
    const seen: Headers[] = []
    const auth = createAuthClient({
      refresh: refreshAt(h.server.url),
      attachTo: [h.server.url],
      fetch: (input, init) => {
        seen.push(new Headers(init?.headers))
        return fetch(input, init)
      },
    })
    auth.login(await signInAt(h.server.url))
    const request = new Request(api('/api/me'), { headers: { 'x-trace': 'r' } })
    await auth.fetch(request)
    await auth.fetch(api('/api/me'), { headers: [['x-trace', 'i']] })
    expect(seen.map((headers) => headers.get('x-trace'))).toEqual(['r', 'i'])
    expect(seen.every((headers) => headers.get('authorization')?.startsWith('Bearer '))).toBe(true)
    expect(request.headers.has('authorization')).toBe(false)
    auth.dispose()
  })

  it('warns once when no origin may receive the token (Node, no attachTo)', async () => {
    await fetchHarness()
    const warnings: string[] = []
    const auth = createAuthClient({
      refresh: refreshAt(h.server.url),
      onWarning: (message) => warnings.push(message),
    })
    auth.login(await signInAt(h.server.url))
    expect(warnings).toEqual([])
    await auth.fetch(api('/public'))
    await auth.fetch(api('/public'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/attachTo/)
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
    auth.dispose()
  })
})

describe('auth.fetch: one refresh, one replay', () => {
  it('30 concurrent 401s share one refresh and each request is replayed once', async () => {
    await fetchHarness()
    h.server.expireAccessTokens()
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => h.auth.fetch(api(`/api/item/${i}`))),
    )
    expect(responses.map((r) => r.status)).toEqual(Array(30).fill(200))
    expect(h.server.counters.refreshCalls).toBe(1)
    for (let i = 0; i < 30; i += 1) {
      expect(h.server.requests.filter((r) => r.path === `/api/item/${i}`)).toHaveLength(2)
    }
  })

  it.each([
    ['a string', () => '{"n":1}', '{"n":1}'],
    ['URLSearchParams', () => new URLSearchParams({ n: '1' }), 'n=1'],
    ['a Blob', () => new Blob(['blob-body']), 'blob-body'],
    ['an ArrayBuffer', () => new TextEncoder().encode('buffer').buffer as ArrayBuffer, 'buffer'],
    ['a Uint8Array', () => new TextEncoder().encode('bytes'), 'bytes'],
  ])('replays %s body with the same bytes', async (_, body, sent) => {
    await fetchHarness()
    h.server.expireAccessTokens()
    const response = await h.auth.fetch(api('/api/echo'), { method: 'POST', body: body() })
    expect(response.status).toBe(200)
    expect(bodiesAt('/api/echo')).toEqual([sent, sent])
  })

  it('replays a FormData body and a Request body (the Request is copied before it is sent)', async () => {
    await fetchHarness()
    h.server.expireAccessTokens()
    const form = new FormData()
    form.set('field', 'value')
    const [formAnswer, requestAnswer] = await Promise.all([
      h.auth.fetch(api('/api/form'), { method: 'POST', body: form }),
      h.auth.fetch(new Request(api('/api/request'), { method: 'POST', body: '{"r":1}' })),
    ])
    expect([formAnswer.status, requestAnswer.status]).toEqual([200, 200])
    const forms = bodiesAt('/api/form')
    expect(forms).toHaveLength(2)
    expect(forms[0]).toContain('value')
    expect(bodiesAt('/api/request')).toEqual(['{"r":1}', '{"r":1}'])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a streamed body is not replayed: its 401 comes back, and the refresh still runs', async () => {
    await fetchHarness()
    h.server.expireAccessTokens()
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'))
        controller.close()
      },
    })
    const init = { method: 'POST', body: stream, duplex: 'half' } as RequestInit
    const response = await h.auth.fetch(api('/api/stream'), init)
    expect(response.status).toBe(401)
    expect(bodiesAt('/api/stream')).toEqual(['streamed'])
    await h.server.waitFor((server) => server.counters.refreshCalls === 1)
    expect((await h.auth.fetch(api('/api/stream'), { method: 'POST', body: 'again' })).status).toBe(
      200,
    )
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a 401 that survives the replay resolves as that Response, body readable', async () => {
    const refuser = await alwaysUnauthorized()
    await fetchHarness({ attachTo: [] })
    h.auth.dispose()
    const auth = createAuthClient({ refresh: refreshAt(h.server.url), attachTo: [refuser.url] })
    auth.login(await signInAt(h.server.url))
    const response = await auth.fetch(`${refuser.url}/anything`)
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ error: 'nope' })
    expect(refuser.hits()).toBe(2)
    expect(h.server.counters.refreshCalls).toBe(1)
    auth.dispose()
  })

  it('an async isAuthFailure reads a clone: a soft 401 is replayed, other bodies stay whole', async () => {
    await fetchHarness({
      isAuthFailure: async (response) =>
        response.status === 401 ||
        ((await (response as Response).json()) as { code?: number }).code === 401,
    })
    expect(await (await h.auth.fetch(api('/api/me'))).json()).toMatchObject({ ok: true })
    h.server.expireAccessTokens()
    const soft = await h.auth.fetch(api('/api/soft-401'))
    expect(await soft.json()).toMatchObject({ ok: true })
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a throwing isAuthFailure rejects the request with its error', async () => {
    const mistake = new Error('predicate bug')
    await fetchHarness({
      isAuthFailure: () => {
        throw mistake
      },
    })
    await expect(h.auth.fetch(api('/api/me'))).rejects.toBe(mistake)
  })
})

describe('auth.fetch: when the session cannot serve the request', () => {
  it('a refused refresh rejects every waiting request with SessionExpiredError', async () => {
    await fetchHarness()
    h.server.revokeSessions()
    const outcomes = await Promise.allSettled([
      h.auth.fetch(api('/api/a')),
      h.auth.fetch(api('/api/b')),
    ])
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected')
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionExpiredError)
    }
    expect(h.auth.actor.getSnapshot().matches('expired')).toBe(true)
  })

  it('an abort rejects with signal.reason at once, while queued and before', async () => {
    await fetchHarness()
    const held = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const controller = new AbortController()
    const waiting = h.auth.fetch(api('/api/me'), { signal: controller.signal })
    await h.until('refreshing')
    await h.server.waitFor((server) => server.counters.unauthorized >= 1)
    await waitForQueue(1)
    const reason = new Error('user left the page')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    expect(h.auth.actor.getSnapshot().context.queue).toHaveLength(0)
    const early = AbortSignal.abort(reason)
    await expect(h.auth.fetch(api('/api/me'), { signal: early })).rejects.toBe(reason)
    held.release()
  })

  it('an abort while the stored session is still being read rejects at once', async () => {
    await fetchHarness()
    const never = { get: () => new Promise<never>(() => undefined), set() {}, remove() {} }
    const auth = createAuthClient({
      refresh: refreshAt(h.server.url),
      attachTo: [h.server.url],
      storage: never,
      // Its clock never moves, so the 3 s bound on the read never ends the wait either.
      clock: createManualClock(Date.now()),
      onWarning: () => undefined,
    })
    const controller = new AbortController()
    const waiting = auth.fetch(api('/api/me'), { signal: controller.signal })
    const reason = new Error('gone')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    auth.dispose()
  })

  it('the same abort on axios rejects at once with its CanceledError, nothing sent', async () => {
    await fetchHarness()
    const never = { get: () => new Promise<never>(() => undefined), set() {}, remove() {} }
    const http = axios.create({ baseURL: h.server.url })
    const auth = createMainClient({
      refresh: refreshAt(h.server.url),
      http,
      storage: never,
      clock: createManualClock(Date.now()),
      onWarning: () => undefined,
    })
    const controller = new AbortController()
    const waiting = http.get('/api/axios-abort', { signal: controller.signal })
    controller.abort()
    const error = await waiting.catch((caught: unknown) => caught)
    expect(axios.isCancel(error)).toBe(true)
    expect(h.server.requests.filter((r) => r.path === '/api/axios-abort')).toHaveLength(0)
    auth.dispose()
  })

  it('a logout while the 401 waits for the refresh rejects with LoggedOutError, unreplayed', async () => {
    await fetchHarness()
    const held = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const waiting = h.auth.fetch(api('/api/once'))
    await waitForQueue(1)
    await h.auth.logout()
    await expect(waiting).rejects.toBeInstanceOf(LoggedOutError)
    held.release()
    expect(h.server.requests.filter((r) => r.path === '/api/once')).toHaveLength(1)
  })

  it("a 401 for the previous user's token is never replayed as the next user", async () => {
    await fetchHarness()
    const held = h.server.hold('/api/slow')
    const first = h.auth.fetch(api('/api/slow'))
    await h.server.waitFor((server) => server.requests.some((r) => r.path === '/api/slow'))
    await h.auth.logout()
    h.auth.login(await signInAt(h.server.url, 'grace'))
    h.server.expireAccessTokens()
    held.release()
    await expect(first).rejects.toBeInstanceOf(LoggedOutError)
    const slow = h.server.requests.filter((r) => r.path === '/api/slow')
    expect(slow).toHaveLength(1)
  })

  it('a logout and a new login as the refresh lands: the waiting 401 is not replayed as them', async () => {
    await fetchHarness()
    const grace = await signInAt(h.server.url, 'grace')
    h.server.expireAccessTokens()
    let wasRefreshing = false
    h.auth.actor.subscribe((snapshot) => {
      if (snapshot.matches('refreshing')) wasRefreshing = true
      else if (wasRefreshing) {
        // In the same tick the queue is released: before the request can be replayed.
        wasRefreshing = false
        void h.auth.logout()
        h.auth.login(grace)
      }
    })
    await expect(h.auth.fetch(api('/api/switch'))).rejects.toBeInstanceOf(LoggedOutError)
    expect(h.server.requests.filter((r) => r.path === '/api/switch')).toHaveLength(1)
  })

  it('dispose() rejects waiting requests and every later one with DISPOSED', async () => {
    await fetchHarness()
    const held = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const waiting = h.auth.fetch(api('/api/me'))
    await waitForQueue(1)
    h.auth.dispose()
    await expect(waiting).rejects.toMatchObject({ code: 'DISPOSED' })
    await expect(h.auth.fetch(api('/api/me'))).rejects.toBeInstanceOf(AuthError)
    held.release()
  })
})

/** Resolves once `n` requests wait in the machine's queue. */
async function waitForQueue(n: number) {
  const { waitFor } = await import('xstate')
  await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length >= n)
}
