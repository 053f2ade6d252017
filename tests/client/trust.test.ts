import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { inspect as utilInspect } from 'node:util'
import axios, { type InternalAxiosRequestConfig, isCancel } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { type InspectionEvent, waitFor } from 'xstate'
import {
  AuthError,
  createAuthClient,
  LoggedOutError,
  memorySession,
  RefreshTimeoutError,
  type Session,
  SessionExpiredError,
  type TokenStorage,
} from '../../src/index.js'
import { createManualClock, createTestAuthServer } from '../../src/testing/index.js'
import {
  createHarness,
  type Harness,
  outcomes,
  refreshAt,
  safeStringify,
  signInAt,
} from '../helpers.js'

// The defects of the adversarial review, one regression test each (numbers as in issue 9).

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

/** Lets pending promise jobs and I/O callbacks run once. */
const turn = () => new Promise((done) => setImmediate(done))

/** A storage whose `get()` answers only when the test says so (or never). */
function deferredStorage() {
  const stored = memorySession()
  let answer: (value: unknown) => void = () => undefined
  const storage: TokenStorage = {
    get: () =>
      new Promise((done) => {
        answer = done as (value: unknown) => void
      }) as ReturnType<TokenStorage['get']>,
    set: (session) => stored.set(session),
    remove: () => stored.remove(),
  }
  return { storage, stored, answer: (value: unknown) => answer(value) }
}

/** A client whose storage read answers when the test says, recording what `revoke` got. */
async function clientBeforeReady() {
  const server = await createTestAuthServer()
  const deferred = deferredStorage()
  const revoked: Session[] = []
  const auth = createAuthClient({
    http: axios.create({ baseURL: server.url }),
    storage: deferred.storage,
    refresh: refreshAt(server.url),
    revoke: async (session) => {
      revoked.push(session)
    },
  })
  const close = async () => {
    auth.dispose()
    await server.close()
  }
  return { ...deferred, server, auth, revoked, close }
}

/**
 * Two clients persisting to one storage, with no cross-tab coordination: A signs in as
 * `username` and B restores that session from the shared storage.
 */
async function clientsOnOneStorage(server: Harness['server'], username = 'ada') {
  const shared = memorySession()
  const client = () => {
    const http = axios.create({ baseURL: server.url })
    const auth = createAuthClient({ http, storage: shared, refresh: refreshAt(server.url) })
    return { http, auth }
  }
  const a = client()
  a.auth.login(await signInAt(server.url, username))
  await turn() // A's write reaches the shared storage
  const b = client()
  await b.auth.ready
  expect(b.auth.actor.getSnapshot().matches('authenticated')).toBe(true)
  const dispose = () => {
    a.auth.dispose()
    b.auth.dispose()
  }
  return { a, b, dispose }
}

describe('2: a refresh answer is never dropped', () => {
  it('an answer arriving during the backoff is adopted: 1 call, 0 reuse', async () => {
    h = await createHarness({
      refreshTimeout: 5000,
      retry: { retries: 2, baseDelay: 60_000, maxDelay: 60_000 },
    })
    await h.signIn()
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    h.clock.advance(5000)
    expect(h.auth.actor.getSnapshot().matches({ refreshing: 'backoff' })).toBe(true)

    slow.release()
    await expect(request).resolves.toMatchObject({ status: 200 })
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'fresh' })).toBe(true)
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it('an answer arriving after the client gave up (stale) is adopted, not spent again', async () => {
    h = await createHarness({ refreshTimeout: 5000, retry: false })
    await h.signIn()
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    h.clock.advance(5000)
    await expect(request).rejects.toBeInstanceOf(RefreshTimeoutError)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'stale' })).toBe(true)

    slow.release()
    await h.until({ authenticated: 'fresh' })
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
  })
})

describe('3: a hung refresh endpoint', () => {
  it('refreshTimeout 1 s, 3 retries, first call hangs forever: every request succeeds within 4 s', async () => {
    h = await createHarness({ refreshTimeout: 1000, retry: { retries: 3 } })
    await h.signIn()
    h.server.failNextRefresh('hang')
    h.server.expireAccessTokens()
    const started = h.clock.now()
    const { http } = h
    const burst = outcomes(Array.from({ length: 5 }, () => http.get('/api/resource')))
    await h.server.waitFor((s) => s.counters.refreshCalls === 1)
    // Time passes until the retry that sends a new call; then the server answers it.
    const snapshot = () => h?.auth.actor.getSnapshot()
    while (
      !(snapshot()?.matches({ refreshing: 'requesting' }) && snapshot()?.context.attempt === 3)
    ) {
      h.clock.advance(50)
      await turn()
      expect(h.clock.now() - started).toBeLessThanOrEqual(4000)
    }
    const result = await burst
    expect(result.fulfilled).toBe(5)
    expect(h.clock.now() - started).toBeLessThanOrEqual(4000)
    expect(h.server.counters.refreshCalls).toBe(2)
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it('a server that answers after 1.5 s still hands its result over: 1 call, 0 reuse', async () => {
    h = await createHarness({ refreshTimeout: 1000, retry: { retries: 3 } })
    await h.signIn()
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    h.clock.advance(1500)
    slow.release()
    await expect(request).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
  })
})

describe('13: a 2xx refresh answer never leads to presenting the same refresh token again', () => {
  it('an unusable 2xx that arrives after the client gave up: the next attempt ends the session without a call', async () => {
    h = await createHarness({ refreshTimeout: 5000, retry: false })
    await h.signIn()
    h.server.failNextRefresh('malformed-json')
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const first = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    h.clock.advance(5000)
    await expect(first).rejects.toBeInstanceOf(RefreshTimeoutError)
    slow.release()
    await h.server.waitFor((s) => s.counters.refreshFailures + s.counters.refreshSuccesses === 1)
    await turn()

    const second = await h.http.get('/api/resource').catch((e: unknown) => e)
    expect(second).toBeInstanceOf(SessionExpiredError)
    expect(h.auth.actor.getSnapshot().value).toBe('expired')
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})

describe('4: never replayed as another user', () => {
  it("Alice's request, answered 401 after she logged out and Bob logged in, is rejected, not sent with Bob's token", async () => {
    h = await createHarness()
    await h.signIn()
    const parked = h.server.hold('/api/orders')
    const alices = h.http.post('/api/orders', { item: 1 })
    await parked.untilWaiting(1)
    await h.auth.logout()
    h.auth.login(await signInAt(h.server.url, 'bob'))
    h.server.expireAccessTokens() // Alice's token is dead; so is Bob's, which must not matter
    parked.release()
    await expect(alices).rejects.toBeInstanceOf(LoggedOutError)
    const orders = h.server.requests.filter((r) => r.path === '/api/orders')
    expect(orders).toHaveLength(1)
    expect(h.server.counters.refreshCalls).toBe(0)
  })
})

/**
 * Signs `harness` in, its instance keeping every response's config, as a retry library
 * keeps `error.config` to send it again later.
 */
async function signedInKeepingConfigs(harness: Harness): Promise<InternalAxiosRequestConfig[]> {
  const seen: InternalAxiosRequestConfig[] = []
  harness.http.interceptors.response.use((response) => {
    seen.push(response.config)
    return response
  })
  await harness.signIn()
  return seen
}

describe('5: no old token through another interceptor', () => {
  it('a config re-sent after logout (retry-library style) leaves without the token', async () => {
    h = await createHarness()
    const seen = await signedInKeepingConfigs(h)
    await h.http.get('/api/resource')
    await h.auth.logout()
    await h.http.request(seen[0] as InternalAxiosRequestConfig).catch(() => undefined)
    const last = h.server.requests.at(-1)
    expect(last?.path).toBe('/api/resource')
    expect(last?.authorization).toBeUndefined()
  })

  it('the replay marker does not travel: a replayed config re-sent later is refreshed and replayed again', async () => {
    h = await createHarness()
    const seen = await signedInKeepingConfigs(h)
    h.server.expireAccessTokens()
    await h.http.get('/api/resource') // 401, refresh, replay: the replay's config is seen
    const replayed = seen.at(-1) as InternalAxiosRequestConfig
    expect(Object.keys(replayed)).not.toContain('authMachineReplay')
    h.server.expireAccessTokens()
    await expect(h.http.request(replayed)).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(2)
  })
})

describe('6: logout() before ready wins', () => {
  it('clears the stored session, revokes it, and the restore does not undo it', async () => {
    const { server, auth, stored, answer, revoked, close } = await clientBeforeReady()
    try {
      const tokens = await signInAt(server.url)
      const session: Session = {
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
      }
      stored.set(session)
      const loggingOut = auth.logout()
      answer(session)
      await loggingOut
      await auth.ready
      expect(auth.actor.getSnapshot().value).toBe('loggedOut')
      expect(await stored.get()).toBeNull()
      expect(revoked.map((s) => s.refreshToken)).toEqual([tokens.refreshToken])
    } finally {
      await close()
    }
  })
})

describe('7: dispose() settles everything', () => {
  it('a request on the wire whose 401 arrives after dispose, and one waiting for ready', async () => {
    const server = await createTestAuthServer()
    const { storage } = deferredStorage() // never answers
    const http = axios.create({ baseURL: server.url })
    const auth = createAuthClient({ http, storage, refresh: refreshAt(server.url) })
    try {
      const waitingForReady = http.get('/api/resource').catch((e: unknown) => e)
      auth.login(await signInAt(server.url))
      await waitingForReady // login makes the restore moot: this one went out
      const parked = server.hold('/api/slow')
      const onTheWire = http.get('/api/slow').catch((e: unknown) => e)
      await parked.untilWaiting(1)

      const second = createAuthClient({
        http: axios.create({ baseURL: server.url }),
        storage: deferredStorage().storage,
        refresh: refreshAt(server.url),
      })
      const stuck = second.getAccessToken().catch((e: unknown) => e)

      server.expireAccessTokens()
      auth.dispose()
      second.dispose()
      parked.release()
      for (const error of [await onTheWire, await stuck]) {
        expect(error).toBeInstanceOf(AuthError)
        expect((error as AuthError).code).toBe('DISPOSED')
      }
    } finally {
      auth.dispose()
      await server.close()
    }
  })
})

describe('8: a token born expired', () => {
  it('expiresIn 0 from login and refresh: no refresh while idle, one per burst', async () => {
    h = await createHarness({
      refresh: async (session, context) => ({
        ...(await refreshAt((h as Harness).server.url)(session, context)),
        expiresIn: 0,
      }),
    })
    const tokens = await signInAt(h.server.url)
    h.auth.login({ ...tokens, expiresIn: 0 })
    for (let i = 0; i < 100; i += 1) {
      h.clock.advance(10)
      await turn()
    }
    expect(h.server.counters.refreshCalls).toBe(0)
    const { http } = h
    const burst = await outcomes(Array.from({ length: 5 }, () => http.get('/api/resource')))
    expect(burst.fulfilled).toBe(5)
    expect(h.server.counters.refreshCalls).toBe(1)
    for (let i = 0; i < 100; i += 1) {
      h.clock.advance(10)
      await turn()
    }
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})

describe('9: nothing an inspector receives reaches a token', () => {
  it('not through refs, parents, children, inputs or a deep util.inspect', async () => {
    const events: InspectionEvent[] = []
    h = await createHarness({ inspect: (event) => events.push(event) })
    await h.signIn()
    h.server.expireAccessTokens()
    await h.http.get('/api/resource')
    const token = await h.auth.getAccessToken()
    const secrets = [token as string, ...h.issuedRefreshTokens]
    const reachable: unknown[] = []
    for (const event of events) {
      const ref = event.actorRef as unknown as Record<string, unknown> & {
        getSnapshot(): unknown
        _parent?: { getSnapshot(): unknown }
      }
      reachable.push(event, ref.getSnapshot(), ref._parent?.getSnapshot(), ref.options)
      reachable.push((ref.getSnapshot() as { children?: unknown } | undefined)?.children)
    }
    const texts = [safeStringify(reachable), utilInspect(reachable, { depth: 12 })]
    for (const text of texts) for (const secret of secrets) expect(text).not.toContain(secret)
    expect(texts[0]).toContain('[redacted]')
  })
})

describe('11: a client never keeps Node alive by itself', () => {
  it('a script that signs in and does nothing else exits on its own', () => {
    const entry = resolve(import.meta.dirname, '../../dist/src/index.js')
    const script = `
      import axios from 'axios'
      import { createAuthClient } from ${JSON.stringify(entry)}
      const auth = createAuthClient({
        http: axios.create({ baseURL: 'http://127.0.0.1:9' }),
        refresh: async () => ({ accessToken: 'b' }),
      })
      auth.login({ accessToken: 'a', refreshToken: 'r', expiresIn: 3600 })
      console.log(auth.actor.getSnapshot().value.authenticated)
    `
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '../..'),
      timeout: 15_000,
      encoding: 'utf8',
    })
    expect(run.signal, 'killed: the process did not exit by itself').toBeNull()
    expect(run.status).toBe(0)
    expect(run.stdout.trim()).toBe('fresh')
  })
})

describe('14: smaller ones', () => {
  it('a storage.get() that never settles: login() does not wait for it, and it is bounded', async () => {
    const { storage } = deferredStorage()
    const warnings: string[] = []
    h = await createHarness({ storage, onWarning: (m) => warnings.push(m) })
    const before = h.http.get('/api/resource').catch((e: unknown) => e)
    await h.signIn()
    expect(await before).toMatchObject({ status: 200 })
    h.clock.advance(3000)
    expect(warnings.filter((w) => w.includes('did not answer'))).toHaveLength(1)
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
  })

  it('requests waiting only on a never-answering storage go on without it after 3 s', async () => {
    const { storage } = deferredStorage()
    h = await createHarness({ storage })
    const request = h.http.get('/public')
    await turn()
    h.clock.advance(3000)
    await expect(request).resolves.toMatchObject({ status: 200 })
  })

  it('login() during the restore of a malformed stored value keeps the login stored', async () => {
    const { storage, stored, answer } = deferredStorage()
    h = await createHarness({ storage })
    await h.signIn()
    answer({ accessToken: 42 })
    await h.auth.ready
    await turn()
    const kept = await stored.get()
    expect(kept?.accessToken).toBe(h.auth.actor.getSnapshot().context.session?.accessToken)
  })

  it('a queued request cancelled with the legacy CancelToken settles at once', async () => {
    h = await createHarness()
    await h.signIn()
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const keep = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    const source = axios.CancelToken.source()
    const cancelled = h.http.get('/api/resource', { cancelToken: source.token })
    await waitFor(h.auth.actor, (s) => s.context.queue.length === 2)
    source.cancel('not needed')
    const error = await cancelled.catch((e: unknown) => e)
    expect(isCancel(error)).toBe(true)
    expect(h.auth.actor.getSnapshot().context.queue).toHaveLength(1)
    slow.release()
    await expect(keep).resolves.toMatchObject({ status: 200 })
  })

  it('JSON.stringify of an axios error carries no bearer token', async () => {
    h = await createHarness()
    await h.signIn()
    const error = await h.http.get('/nowhere').catch((e: unknown) => e)
    const token = h.auth.actor.getSnapshot().context.session?.accessToken as string
    expect(h.server.requests.at(-1)?.authorization).toBe(`Bearer ${token}`)
    expect(JSON.stringify(error)).not.toContain(token)
  })

  it('in Node, no baseURL and no attachTo: one warning instead of silently sending nothing', () => {
    const warnings: string[] = []
    const auth = createAuthClient({
      http: axios.create(),
      refresh: async () => ({ accessToken: 'x' }),
      onWarning: (message) => warnings.push(message),
    })
    auth.dispose()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/attachTo/)
  })

  it('two clients on one storage (no cross-tab): the second adopts the rotated session instead of spending the token again', async () => {
    h = await createHarness()
    const { server } = h
    const { a, b, dispose } = await clientsOnOneStorage(server)
    try {
      server.expireAccessTokens()
      await a.http.get('/api/resource') // A refreshes and stores the rotated session
      await b.http.get('/api/resource') // B's 401: it finds A's session in storage
      expect(server.counters.refreshCalls).toBe(1)
      expect(server.counters.reuseDetections).toBe(0)
      expect(b.auth.actor.getSnapshot().context.session?.accessToken).toBe(
        a.auth.actor.getSnapshot().context.session?.accessToken,
      )
    } finally {
      dispose()
    }
  })
})

describe('found by the adversarial review of the fixes', () => {
  it('shared storage: another user signed in by a sibling client is a login here, not a refresh', async () => {
    h = await createHarness()
    const { server } = h
    const { a, b, dispose } = await clientsOnOneStorage(server, 'alice')
    try {
      const parked = server.hold('/api/transfer')
      const transfer = b.http.post('/api/transfer', { amount: 100 })
      await parked.untilWaiting(1)
      server.expireAccessTokens()
      await a.auth.logout()
      a.auth.login(await signInAt(server.url, 'bob'))
      parked.release()
      await expect(transfer).rejects.toBeInstanceOf(LoggedOutError)
      const sent = server.requests.filter((r) => r.path === '/api/transfer')
      expect(sent).toHaveLength(1)
    } finally {
      dispose()
    }
  })

  it("a retry interceptor re-sending Alice's request after logout and Bob's login: refused, not sent as Bob", async () => {
    h = await createHarness()
    const harness = h
    let retried = false
    h.http.interceptors.response.use(undefined, async (error) => {
      if (retried || !axios.isAxiosError(error) || !error.config) throw error
      retried = true
      await harness.auth.logout()
      harness.auth.login(await signInAt(harness.server.url, 'bob'))
      return harness.http.request(error.config)
    })
    await h.signIn()
    const before = h.server.requests.length
    const result = await h.http.get('/nowhere').catch((e: unknown) => e)
    expect(result).toBeInstanceOf(LoggedOutError)
    const sent = h.server.requests.slice(before).filter((r) => !r.path.startsWith('/auth/'))
    expect(sent.map((r) => r.path)).toEqual(['/nowhere'])
  })

  it('an interceptor that runs after ours and moves the request elsewhere: the token does not follow', async () => {
    const hits: Array<string | undefined> = []
    const { createServer } = await import('node:http')
    const other = createServer((req, res) => {
      hits.push(req.headers.authorization)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    await new Promise<void>((done) => other.listen(0, '127.0.0.1', done))
    const port = (other.address() as { port: number }).port
    try {
      const http = axios.create({ baseURL: 'http://127.0.0.1:1' })
      // Registered before the client: axios runs it after the client's interceptor.
      http.interceptors.request.use((config) => {
        config.baseURL = `http://localhost:${port}`
        return config
      })
      const auth = createAuthClient({
        http,
        refresh: async () => ({ accessToken: 'new' }),
        attachTo: ['http://127.0.0.1:1'],
      })
      auth.login({ accessToken: 'tok', refreshToken: 'r', expiresIn: 3600 })
      await http.get('/x')
      auth.dispose()
      expect(hits).toEqual([undefined])
    } finally {
      other.close()
    }
  })

  it('a request held by an async interceptor across logout() never leaves with the old token', async () => {
    h = await createHarness()
    let release: () => void = () => undefined
    const held = new Promise<void>((done) => {
      release = done
    })
    // Registered on an instance the client already protects, and one it is attached to
    // later: axios runs the later-registered interceptor first, the earlier one last.
    const early = axios.create({ baseURL: h.server.url })
    early.interceptors.request.use(async (config) => {
      await held // e.g. fetching a CSRF token, after the client attached the token
      return config
    })
    const auth = createAuthClient({ http: early, clock: h.clock, refresh: refreshAt(h.server.url) })
    auth.login(await signInAt(h.server.url))
    const request = early.get('/api/resource').catch((e: unknown) => e)
    await turn()
    await auth.logout()
    const before = h.server.requests.length
    release()
    expect(await request).toBeInstanceOf(LoggedOutError)
    expect(h.server.requests.length).toBe(before)
    auth.dispose()
  })

  it('logout(); login(bob) before ready: Bob stays signed in and stored, and is not revoked', async () => {
    const { server, auth, stored, answer, revoked, close } = await clientBeforeReady()
    try {
      const loggingOut = auth.logout()
      auth.login(await signInAt(server.url, 'bob'))
      await turn()
      answer(await stored.get()) // the read sees what is stored now: Bob's session
      await loggingOut
      const bob = auth.actor.getSnapshot().context.session
      expect(bob).not.toBeNull()
      expect((await stored.get())?.accessToken).toBe(bob?.accessToken)
      expect(revoked).toEqual([])
    } finally {
      await close()
    }
  })

  it('logout() with a storage that never answers: it settles, and clears what it cannot read', async () => {
    const clock = createManualClock(Date.now())
    let removed = 0
    const auth = createAuthClient({
      http: axios.create({ baseURL: 'http://127.0.0.1:1' }),
      clock,
      onWarning: () => undefined,
      refresh: async () => ({ accessToken: 'x' }),
      storage: {
        get: () => new Promise(() => undefined),
        set: () => new Promise(() => undefined),
        remove: () => {
          removed += 1
          return new Promise(() => undefined)
        },
      },
    })
    const loggingOut = auth.logout()
    await turn()
    clock.advance(3000) // the read's bound
    await turn()
    clock.advance(3000) // the write's bound
    await loggingOut
    expect(removed).toBe(1)
    auth.dispose()
  })

  it("a config of Alice's session re-sent after 33 of Bob's refreshes is still refused", async () => {
    h = await createHarness()
    const seen = await signedInKeepingConfigs(h)
    await h.http.get('/api/resource')
    const alices = seen[0] as InternalAxiosRequestConfig
    await h.auth.logout()
    h.auth.login(await signInAt(h.server.url, 'bob'))
    for (let i = 0; i < 33; i += 1) {
      h.server.expireAccessTokens()
      await h.http.get('/api/resource')
    }
    const before = h.server.requests.length
    await expect(h.http.request(alices)).rejects.toBeInstanceOf(LoggedOutError)
    expect(h.server.requests.slice(before).filter((r) => r.path === '/api/resource')).toEqual([])
  })

  it('two clients on one storage meeting one expiry at the same instant: one refresh, no reuse', async () => {
    h = await createHarness()
    const { server } = h
    const { a, b, dispose } = await clientsOnOneStorage(server)
    try {
      server.expireAccessTokens()
      const both = await outcomes([a.http.get('/api/resource'), b.http.get('/api/resource')])
      expect(both.fulfilled).toBe(2)
      expect(server.counters.refreshCalls).toBe(1)
      expect(server.counters.reuseDetections).toBe(0)
    } finally {
      dispose()
    }
  })

  it('sub-second lifetimes get no proactive timer: no loop', async () => {
    h = await createHarness()
    const tokens = await signInAt(h.server.url)
    h.auth.login({ ...tokens, expiresIn: 0.01 })
    for (let i = 0; i < 100; i += 1) {
      h.clock.advance(10)
      await turn()
    }
    expect(h.server.counters.refreshCalls).toBe(0)
  })
})
