import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, type Harness, outcomes } from '../helpers.js'

let h: Harness
afterEach(async () => {
  await h?.close()
})

describe('one refresh for everyone', () => {
  it('100 concurrent requests rejected by the server with 401 cause exactly 1 refresh', async () => {
    h = await createHarness()
    await h.signIn()
    h.server.expireAccessTokens()

    const result = await outcomes(
      Array.from({ length: 100 }, () => h.http.get('/api/resource').then((r) => r.data)),
    )

    expect(result).toEqual({ fulfilled: 100, rejected: [] })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.maxConcurrentRefreshes).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
    expect(h.server.counters.protectedOk).toBe(100)
    expect(h.auth.actor.getSnapshot().context.queue).toEqual([])
    expect(h.auth.actor.getSnapshot().context.generation).toBe(2)
  })

  it('100 concurrent requests on a token past its expiry refresh once before sending', async () => {
    h = await createHarness({ refreshMargin: 0 }, { accessTokenTtl: 600 })
    await h.signIn()
    // Both sides see the token expire; no 401 is needed to notice it.
    h.clock.advance(600_000)
    await h.until('refreshing')
    const result = await outcomes(Array.from({ length: 100 }, () => h.http.get('/api/resource')))

    expect(result.fulfilled).toBe(100)
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.unauthorized).toBe(0)
  })

  it('a 401 that arrives after the refresh finished does not start a second refresh', async () => {
    h = await createHarness()
    await h.signIn()
    const slow = h.server.hold('/api/slow')
    const late = h.http.get('/api/slow')
    await slow.untilWaiting(1)

    h.server.expireAccessTokens()
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)

    // The held request is now answered 401 for the token of the previous generation.
    slow.release()
    await expect(late).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.unauthorized).toBe(2)
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it('5 sequential expiries cause 5 refreshes', async () => {
    h = await createHarness()
    await h.signIn()
    for (let round = 1; round <= 5; round += 1) {
      h.server.expireAccessTokens()
      const result = await outcomes([h.http.get('/api/resource'), h.http.get('/api/resource')])
      expect(result.fulfilled).toBe(2)
      expect(h.server.counters.refreshCalls).toBe(round)
    }
    expect(h.server.counters.reuseDetections).toBe(0)
    expect(h.auth.actor.getSnapshot().context.generation).toBe(6)
  })

  it('5 proactive refreshes fire on the clock, before any request fails', async () => {
    h = await createHarness({ refreshMargin: 60_000 })
    await h.signIn()
    for (let round = 1; round <= 5; round += 1) {
      h.clock.advance(1_800_000 - 60_000)
      await h.server.waitFor((s) => s.counters.refreshSuccesses === round)
      await h.until('authenticated')
      await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    }
    expect(h.server.counters.refreshCalls).toBe(5)
    expect(h.server.counters.unauthorized).toBe(0)
  })

  it('a request replayed once is not replayed again (invariant 4)', async () => {
    // This backend calls every response to /public an auth failure, so a replay loop would show.
    h = await createHarness({
      isAuthFailure: (response) =>
        response.status === 401 || ('config' in response && response.config.url === '/public'),
    })
    await h.signIn()
    const response = await h.http.get('/public')
    expect(response.status).toBe(200)
    expect(h.server.requests.filter((r) => r.path === '/public')).toHaveLength(2)
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('treats a 200 carrying { code: 401 } as an auth failure when told to', async () => {
    h = await createHarness({
      isAuthFailure: (response) =>
        response.status === 401 ||
        ('data' in response && (response.data as { code?: number })?.code === 401),
    })
    await h.signIn()
    h.server.expireAccessTokens()
    const response = await h.http.get('/api/soft-401')
    expect(response.data).toMatchObject({ ok: true })
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})
