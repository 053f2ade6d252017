import { isCancel } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { MAX_TIMER_DELAY } from '../../machines/index.js'
import {
  AuthError,
  InvalidSessionError,
  LoggedOutError,
  type Session,
  type TokenStorage,
} from '../../src/index.js'
import { createHarness, type Harness, outcomes } from '../helpers.js'

let h: Harness
afterEach(async () => {
  await h?.close()
})

const DAY = 86_400_000

describe('session lifecycle', () => {
  it('logout during a refresh rejects waiters and ignores the late result (invariant 7)', async () => {
    h = await createHarness()
    await h.signIn()
    const oldToken = await h.auth.getAccessToken()
    const loggedOut: unknown[] = []
    h.auth.actor.on('loggedOut', (event) => loggedOut.push(event))
    const refresh = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const waiting = outcomes(Array.from({ length: 5 }, () => h.http.get('/api/resource')))
    await refresh.untilWaiting(1)
    await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 5)

    await h.auth.logout()
    const sentBefore = h.server.requests.length
    refresh.release()
    await h.server.waitFor((s) => s.counters.refreshSuccesses === 1)

    const result = await waiting
    expect(result.fulfilled).toBe(0)
    for (const error of result.rejected) expect(error).toBeInstanceOf(LoggedOutError)
    expect(loggedOut).toHaveLength(1)
    expect(h.auth.actor.getSnapshot().value).toBe('loggedOut')
    expect(h.auth.actor.getSnapshot().context.session).toBeNull()
    expect(await h.auth.getAccessToken()).toBeNull()

    await h.http.get('/api/resource').catch(() => undefined)
    const after = h.server.requests.slice(sentBefore).filter((r) => r.path !== '/auth/refresh')
    expect(after.length).toBeGreaterThan(0)
    for (const request of after) expect(request.authorization).toBeUndefined()
    expect(h.server.requests.filter((r) => r.authorization === `Bearer ${oldToken}`).length).toBe(5)
  })

  it('an aborted queued request rejects alone; the others succeed', async () => {
    h = await createHarness()
    await h.signIn()
    const refresh = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const controller = new AbortController()
    const aborted = h.http.get('/api/resource', { signal: controller.signal })
    const others = outcomes([h.http.get('/api/resource'), h.http.get('/api/resource')])
    await refresh.untilWaiting(1)
    await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 3)

    controller.abort()
    const error = await aborted.catch((e: unknown) => e)
    expect(isCancel(error)).toBe(true)
    expect(h.auth.actor.getSnapshot().context.queue).toHaveLength(2)

    refresh.release()
    expect(await others).toEqual({ fulfilled: 2, rejected: [] })
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a request aborted before it is queued never reaches the server', async () => {
    h = await createHarness()
    await h.signIn()
    const refresh = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const first = h.http.get('/api/resource')
    await refresh.untilWaiting(1)
    const controller = new AbortController()
    controller.abort()
    await expect(h.http.get('/public', { signal: controller.signal })).rejects.toSatisfy(isCancel)
    refresh.release()
    await first
    expect(h.server.requests.filter((r) => r.path === '/public')).toHaveLength(0)
  })

  it('30-day token lifetimes arm no timer beyond 2^31-1 ms and cause no refresh loop (invariant 9)', async () => {
    h = await createHarness({}, { accessTokenTtl: 30 * 86_400, refreshTokenTtl: 90 * 86_400 })
    await h.signIn()
    expect(h.clock.maxDelayArmed).toBeLessThanOrEqual(MAX_TIMER_DELAY)
    h.clock.advance(MAX_TIMER_DELAY)
    h.clock.advance(5 * DAY)
    expect(h.server.counters.refreshCalls).toBe(0)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'fresh' })).toBe(true)
    // The margin before expiry: exactly one refresh, then quiet again.
    h.clock.advance(30 * DAY - 60_000 - MAX_TIMER_DELAY - 5 * DAY)
    await h.server.waitFor((s) => s.counters.refreshSuccesses === 1)
    await h.until('authenticated')
    h.clock.advance(DAY)
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.clock.maxDelayArmed).toBeLessThanOrEqual(MAX_TIMER_DELAY)
  })

  it('a token that lives shorter than the margin is refreshed at half-life, not in a loop', async () => {
    h = await createHarness({ refreshMargin: 60_000 }, { accessTokenTtl: 20 })
    await h.signIn()
    h.clock.advance(9_999)
    expect(h.server.counters.refreshCalls).toBe(0)
    h.clock.advance(1)
    await h.server.waitFor((s) => s.counters.refreshSuccesses === 1)
    await h.until('authenticated')
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('an opaque token without expiresIn gets no proactive refresh', async () => {
    h = await createHarness()
    h.auth.login({ accessToken: 'opaque-token', refreshToken: 'r' })
    h.clock.advance(MAX_TIMER_DELAY)
    h.clock.advance(MAX_TIMER_DELAY)
    expect(h.server.counters.refreshCalls).toBe(0)
    expect(h.auth.actor.getSnapshot().context.session?.expiresAt).toBeUndefined()
  })

  it('storage that throws on every call: still works in memory, with one clear warning each', async () => {
    const broken: TokenStorage = {
      get: () => {
        throw new DOMException('denied', 'SecurityError')
      },
      set: () => {
        throw new DOMException('full', 'QuotaExceededError')
      },
      remove: () => {
        throw new DOMException('denied', 'SecurityError')
      },
    }
    h = await createHarness({ storage: broken })
    await h.auth.ready
    await h.signIn()
    h.server.expireAccessTokens()
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    await h.auth.logout()
    expect(h.warnings).toEqual([
      'storage.get() failed (SecurityError); the session is kept in memory only.',
      'storage.set() failed (QuotaExceededError); the session is kept in memory only.',
      'storage.remove() failed (SecurityError); the session is kept in memory only.',
    ])
  })

  it('restores a session from async storage, and writes refreshes back in order', async () => {
    const stored: Session[] = []
    let current: Session | null = null
    const storage: TokenStorage = {
      get: async () => current,
      set: async (session) => {
        await Promise.resolve()
        current = session
        stored.push(session)
      },
      remove: async () => {
        current = null
      },
    }
    let allowRead: () => void = () => undefined
    const readable = new Promise<void>((resolve) => {
      allowRead = resolve
    })
    h = await createHarness({ storage: { ...storage, get: () => readable.then(() => current) } })
    const tokens = h.server.login()
    current = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken }
    // Requests made before restoring finishes wait for it.
    const early = h.http.get('/api/resource')
    allowRead()
    await h.auth.ready
    expect(h.auth.actor.getSnapshot().matches('authenticated')).toBe(true)
    await expect(early).resolves.toMatchObject({ status: 200 })
    h.server.expireAccessTokens()
    await h.http.get('/api/resource')
    await h.http.get('/api/resource')
    const latest = await h.auth.getAccessToken()
    expect(stored.map((session) => session.accessToken)).toEqual([latest])
    expect((current as Session | null)?.accessToken).toBe(latest)
    await h.auth.logout()
    expect(current).toBeNull()
  })

  it('a malformed stored session is discarded with a warning', async () => {
    let removed = false
    h = await createHarness({
      storage: {
        get: () => ({ accessToken: 42 }) as unknown as Session,
        set: () => undefined,
        remove: () => {
          removed = true
        },
      },
    })
    await h.auth.ready
    expect(h.auth.actor.getSnapshot().value).toBe('loggedOut')
    expect(h.warnings).toEqual(['discarded a malformed stored session.'])
    expect(removed).toBe(true)
  })

  it('login() rejects unusable tokens with InvalidSessionError that does not quote them', async () => {
    h = await createHarness()
    const bad = [
      {},
      { accessToken: '' },
      { accessToken: 'has space' },
      { accessToken: 'ok', refreshToken: '' },
      { accessToken: 'ok', expiresIn: Number.NaN },
      { accessToken: 'ok', expiresIn: -5 },
      null,
      'secret-token-string',
    ]
    for (const tokens of bad) {
      let error: unknown
      try {
        h.auth.login(tokens as never)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(InvalidSessionError)
      expect((error as Error).message).not.toContain('secret-token-string')
      expect((error as Error).message).not.toContain('has space')
    }
    expect(h.auth.actor.getSnapshot().value).toBe('loggedOut')
  })

  it('login() accepts OAuth snake_case and reads the lifetime from a JWT', async () => {
    h = await createHarness()
    const tokens = h.server.login()
    h.auth.login({ access_token: tokens.accessToken, refresh_token: tokens.refreshToken } as never)
    const session = h.auth.actor.getSnapshot().context.session
    expect(session?.refreshToken).toBe(tokens.refreshToken)
    expect((session?.expiresAt ?? 0) - h.clock.now()).toBe(1_800_000)
  })

  it('before any login, requests go out without a token and their 401 reaches the app', async () => {
    h = await createHarness()
    await expect(h.http.get('/public')).resolves.toMatchObject({ status: 200 })
    await expect(h.http.get('/api/resource')).rejects.toMatchObject({ response: { status: 401 } })
    expect(h.server.requests.every((r) => r.authorization === undefined)).toBe(true)
    expect(h.server.counters.refreshCalls).toBe(0)
  })

  it('getAccessToken waits for a running refresh and returns null when signed out', async () => {
    h = await createHarness()
    expect(await h.auth.getAccessToken()).toBeNull()
    await h.signIn()
    const before = await h.auth.getAccessToken()
    const refresh = h.server.hold('/auth/refresh')
    h.clock.advance(1_800_000 - 60_000)
    await refresh.untilWaiting(1)
    const token = h.auth.getAccessToken()
    refresh.release()
    expect(await token).not.toBe(before)
    expect(h.server.verifyAccessToken((await token) ?? '')).not.toBeNull()
  })

  it('dispose() ejects the interceptors and rejects what still waits', async () => {
    h = await createHarness()
    await h.signIn()
    const refresh = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const waiting = h.http.get('/api/resource').catch((e: unknown) => e)
    await refresh.untilWaiting(1)
    h.auth.dispose()
    expect(await waiting).toMatchObject({ code: 'DISPOSED' })
    expect(await waiting).toBeInstanceOf(AuthError)
    refresh.release()
    await h.http.get('/public')
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
  })

  it('logout() calls revoke with the ended session and survives its failure', async () => {
    const revoked: string[] = []
    h = await createHarness({
      revoke: async (session) => {
        revoked.push(session.refreshToken ?? '')
        throw new Error('offline')
      },
    })
    await h.signIn()
    const refreshToken = h.auth.actor.getSnapshot().context.session?.refreshToken
    await h.auth.logout()
    expect(revoked).toEqual([refreshToken])
    expect(h.warnings).toEqual(['revoke() failed (Error).'])
  })
})
