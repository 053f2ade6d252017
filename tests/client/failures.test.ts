import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import {
  AuthError,
  RefreshFailedError,
  RefreshTimeoutError,
  SessionExpiredError,
} from '../../src/index.js'
import { createHarness, type Harness, outcomes } from '../helpers.js'

let h: Harness
afterEach(async () => {
  await h?.close()
})

const burst = (n: number) => Array.from({ length: n }, () => h.http.get('/api/resource'))

describe('refresh failures', () => {
  it('a rejected refresh rejects every waiting request with SessionExpiredError', async () => {
    h = await createHarness()
    await h.signIn()
    const expired: unknown[] = []
    h.auth.actor.on('sessionExpired', (event) => expired.push(event))
    h.server.failNextRefresh(401)
    h.server.expireAccessTokens()

    const result = await outcomes(burst(20))

    expect(result.fulfilled).toBe(0)
    expect(result.rejected).toHaveLength(20)
    for (const error of result.rejected) expect(error).toBeInstanceOf(SessionExpiredError)
    expect(h.auth.actor.getSnapshot().value).toBe('expired')
    expect(h.auth.actor.getSnapshot().context.session).toBeNull()
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(expired).toHaveLength(1)
    // Signed out now: a request goes out bare and its 401 reaches the app untouched.
    await expect(h.http.get('/api/resource')).rejects.toMatchObject({ response: { status: 401 } })
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
  })

  it('a revoked session (invalid_grant) ends in expired, not in a retry loop', async () => {
    h = await createHarness()
    await h.signIn()
    h.server.revokeSessions()
    await expect(h.http.get('/api/resource')).rejects.toBeInstanceOf(SessionExpiredError)
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('500 once then success: requests succeed after one retry', async () => {
    h = await createHarness({ retry: { retries: 3, baseDelay: 1000, maxDelay: 1000 } })
    await h.signIn()
    h.server.failNextRefresh(500)
    h.server.expireAccessTokens()
    const pending = outcomes(burst(10))

    await h.server.waitFor((s) => s.counters.refreshFailures === 1)
    await h.until({ refreshing: 'backoff' })
    h.clock.advance(1000)

    expect(await pending).toEqual({ fulfilled: 10, rejected: [] })
    expect(h.server.counters.refreshCalls).toBe(2)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'fresh' })).toBe(true)
  })

  it('transient failures never end the session (invariant 8)', async () => {
    h = await createHarness({ retry: { retries: 2, baseDelay: 100, maxDelay: 100 } })
    await h.signIn()
    h.server.failNextRefresh(503, { times: 3 })
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    for (let calls = 1; calls <= 2; calls += 1) {
      await h.server.waitFor((s) => s.counters.refreshFailures === calls)
      await h.until({ refreshing: 'backoff' })
      h.clock.advance(100)
    }

    const error = await request.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RefreshFailedError)
    expect(error).toMatchObject({ code: 'REFRESH_FAILED', status: 503 })
    const snapshot = h.auth.actor.getSnapshot()
    expect(snapshot.matches({ authenticated: 'stale' })).toBe(true)
    expect(snapshot.context.session).not.toBeNull()
    // The server is back: the next request refreshes and succeeds on the same session.
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(4)
  })

  it('a refresh that hangs ends in RefreshTimeoutError and nothing hangs', async () => {
    h = await createHarness({
      refreshTimeout: 5000,
      retry: { retries: 1, baseDelay: 200, maxDelay: 200 },
    })
    await h.signIn()
    h.server.failNextRefresh('hang')
    h.server.expireAccessTokens()
    const pending = outcomes(burst(5))
    await h.server.waitFor((s) => s.counters.refreshCalls === 1)
    await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 5)
    h.clock.advance(5000)
    h.clock.advance(200)
    // The retry joins the call still on the wire instead of spending the token again.
    expect(h.auth.actor.getSnapshot().matches({ refreshing: 'requesting' })).toBe(true)
    h.clock.advance(5000)

    const result = await pending
    expect(result.fulfilled).toBe(0)
    expect(result.rejected).toHaveLength(5)
    for (const error of result.rejected) expect(error).toBeInstanceOf(RefreshTimeoutError)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'stale' })).toBe(true)
    expect(h.server.counters.refreshCalls).toBe(1)
    // Giving up does not cancel the call: an answer may still come and would be adopted.
    expect(h.server.refreshInFlight).toBe(1)
    // Past its patience (two refreshTimeouts) the call is presumed lost: the next request
    // cancels it, and sends a new one once the old one has let go. (The server may notice
    // the closed socket only after the new call arrived, so it can count two for a moment.)
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(2)
    await h.server.waitFor((s) => s.refreshInFlight === 0)
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it('a slow refresh the server still processes after the timeout is adopted, not spent twice', async () => {
    h = await createHarness({
      refreshTimeout: 5000,
      retry: { retries: 2, baseDelay: 100, maxDelay: 100 },
    })
    await h.signIn()
    const slow = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await slow.untilWaiting(1)
    h.clock.advance(5000)
    h.clock.advance(100)
    expect(h.auth.actor.getSnapshot().context.attempt).toBe(2)

    slow.release()
    await expect(request).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'fresh' })).toBe(true)
  })

  it('a reset connection is transient: typed error, session kept, nothing spent', async () => {
    h = await createHarness({ retry: false })
    await h.signIn()
    h.server.failNextRefresh('reset')
    h.server.expireAccessTokens()

    const error = await h.http.get('/api/resource').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RefreshFailedError)
    expect(error).toBeInstanceOf(AuthError)
    expect((error as Error).message).toMatch(/network/)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'stale' })).toBe(true)
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it.each([
    ['malformed', 'HTML instead of JSON'],
    ['malformed-json', 'JSON without an access token'],
  ] as const)(
    'a 2xx refresh answer without a usable token (%s: %s) ends the session: its refresh token is never presented again',
    async (kind, _description) => {
      h = await createHarness({ retry: { retries: 3, baseDelay: 10, maxDelay: 10 } })
      await h.signIn()
      h.server.failNextRefresh(kind)
      h.server.expireAccessTokens()

      const error = await h.http.get('/api/resource').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SessionExpiredError)
      expect(h.auth.actor.getSnapshot().value).toBe('expired')
      expect(h.auth.actor.getSnapshot().context.error?.message).toMatch(/without a usable token/)
      // One call: a server that answered 2xx may have rotated the token, so no retry spends it.
      expect(h.server.counters.refreshCalls).toBe(1)
      const presented = h.server.requests
        .filter((r) => r.path === '/auth/refresh')
        .map((r) => r.body)
      expect(new Set(presented).size).toBe(presented.length)
    },
  )

  it('wake() cuts a backoff short and retries a stale session at once', async () => {
    h = await createHarness({ retry: { retries: 1, baseDelay: 60_000, maxDelay: 60_000 } })
    await h.signIn()
    h.server.failNextRefresh(503, { times: 2 })
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await h.server.waitFor((s) => s.counters.refreshFailures === 1)
    await h.until({ refreshing: 'backoff' })
    h.auth.wake()
    await expect(request).rejects.toBeInstanceOf(RefreshFailedError)
    expect(h.server.counters.refreshCalls).toBe(2)
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'stale' })).toBe(true)
    h.auth.wake()
    await h.server.waitFor((s) => s.counters.refreshSuccesses === 1)
    await h.until({ authenticated: 'fresh' })
    expect(h.server.counters.refreshCalls).toBe(3)
  })

  it('a refresh function that throws synchronously is a transient failure', async () => {
    h = await createHarness({
      retry: false,
      refresh: () => {
        throw new TypeError('boom')
      },
    })
    await h.signIn()
    h.server.expireAccessTokens()
    await expect(h.http.get('/api/resource')).rejects.toBeInstanceOf(RefreshFailedError)
  })

  it('network errors and non-auth statuses pass through untouched', async () => {
    h = await createHarness()
    await h.signIn()
    await expect(h.http.get('/nowhere')).rejects.toMatchObject({ response: { status: 404 } })
    await expect(h.http.get('http://127.0.0.1:1/api')).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    })
    expect(h.server.counters.refreshCalls).toBe(0)
  })
})
