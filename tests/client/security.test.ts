import { afterEach, describe, expect, it } from 'vitest'
import type { InspectionEvent } from 'xstate'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { createHarness, type Harness, outcomes, safeStringify } from '../helpers.js'

let h: Harness
let other: TestAuthServer | undefined
afterEach(async () => {
  await h?.close()
  await other?.close()
  other = undefined
})

describe('tokens stay where they belong', () => {
  it('sends no Authorization header to an origin outside the allow-list (invariant 5)', async () => {
    h = await createHarness()
    other = await createTestAuthServer()
    await h.signIn()

    await expect(h.http.get(`${other.url}/public`)).resolves.toMatchObject({ status: 200 })
    // A protocol-relative URL is another origin too.
    await h.http.get(`//127.0.0.1:${other.port}/public`).catch(() => undefined)
    // A 401 from a foreign origin is its business: no refresh, no replay.
    await expect(h.http.get(`${other.url}/api/resource`)).rejects.toMatchObject({
      response: { status: 401 },
    })

    expect(other.requests.every((r) => r.authorization === undefined)).toBe(true)
    expect(h.server.counters.refreshCalls).toBe(0)
  })

  it('attaches to extra origins listed in attachTo, and to nothing else', async () => {
    other = await createTestAuthServer()
    const trusted = other.url
    h = await createHarness({ attachTo: [trusted] })
    await h.signIn()
    await h.http.get(`${trusted}/public`)
    await h.http.get('/public')
    expect(other.requests[0]?.authorization).toMatch(/^Bearer /)
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
  })

  it('skipAuth sends a request bare and leaves its 401 alone', async () => {
    h = await createHarness()
    await h.signIn()
    await expect(h.http.get('/api/resource', { skipAuth: true })).rejects.toMatchObject({
      response: { status: 401 },
    })
    expect(h.server.requests.at(-1)?.authorization).toBeUndefined()
    expect(h.server.counters.refreshCalls).toBe(0)
  })

  it('never puts a refresh token in a URL, a warning, an error or inspection output (invariant 6)', async () => {
    const inspected: unknown[] = []
    h = await createHarness({
      inspect: (event) => inspected.push(event),
      retry: false,
      storage: {
        get: () => null,
        set: () => {
          throw new Error('quota')
        },
        remove: () => undefined,
      },
    })
    await h.signIn()
    const errors: unknown[] = []
    for (const fault of [500, 'malformed', 401] as const) {
      h.server.expireAccessTokens()
      await h.http.get('/api/resource').catch((e: unknown) => errors.push(e))
      await h.signIn()
      h.server.failNextRefresh(fault)
    }
    h.server.expireAccessTokens()
    await outcomes<unknown>([h.http.get('/api/resource'), h.auth.getAccessToken()])

    expect(h.issuedRefreshTokens.length).toBeGreaterThan(3)
    expect(h.warnings).toEqual([
      'storage.set() failed (Error); the session is kept in memory only.',
    ])
    const urls = h.server.requests.map((r) => `${r.path}?${r.query}`).join('\n')
    const texts = [
      urls,
      h.warnings.join('\n'),
      errors.map((e) => `${(e as Error).message} ${safeStringify(e)}`).join('\n'),
      safeStringify(inspected),
    ]
    for (const token of h.issuedRefreshTokens) {
      for (const text of texts) expect(text).not.toContain(token)
    }
    expect(safeStringify(inspected)).toContain('[redacted]')
    // The refresh call carried the token in its JSON body, as it should.
    const refreshBodies = h.server.requests.filter((r) => r.path === '/auth/refresh')
    expect(refreshBodies.every((r) => r.body?.includes('refreshToken'))).toBe(true)
  })

  it('inspection output carries no access token either', async () => {
    const inspected: unknown[] = []
    h = await createHarness({ inspect: (event) => inspected.push(event) })
    await h.signIn()
    h.server.expireAccessTokens()
    await h.http.get('/api/resource')
    const token = await h.auth.getAccessToken()
    expect(token).toBeTruthy()
    expect(safeStringify(inspected)).not.toContain(token)
    expect(inspected.length).toBeGreaterThan(5)
    // Inspectors read snapshots from the refs too (the refresh actor's input is the session).
    const refSnapshots = inspected.flatMap((event) => {
      const inspection = event as InspectionEvent
      const source = 'sourceRef' in inspection ? inspection.sourceRef : undefined
      return [inspection.actorRef.getSnapshot(), source?.getSnapshot()]
    })
    expect(safeStringify(refSnapshots)).toContain('[redacted]')
    for (const secret of [token, ...h.issuedRefreshTokens]) {
      expect(safeStringify(refSnapshots)).not.toContain(secret)
    }
  })

  it('inspection names the guard of each transition taken, never its parameters', async () => {
    const inspected: InspectionEvent[] = []
    h = await createHarness({ retry: false, inspect: (event) => inspected.push(event) })
    await h.signIn()
    h.server.revokeSessions()
    await outcomes([h.http.get('/api/resource')])
    const taken = inspected.flatMap((event) =>
      event.type === '@xstate.microstep'
        ? event._transitions.map((t) => `${t.eventType} ${t.guard ?? '-'}`)
        : [],
    )
    // Two branches of one event tell apart by guard: a token rejection that starts the refresh
    // (isCurrentGeneration), and the refusal that ends the session (isRefreshRejected, whose
    // params carry the error: only the name goes out).
    expect(taken).toContain('TOKEN_REJECTED isCurrentGeneration')
    expect(taken).toEqual(expect.arrayContaining([expect.stringMatching(/ isRefreshRejected$/)]))
    const guards = inspected.flatMap((event) =>
      event.type === '@xstate.microstep' ? event._transitions.map((t) => t.guard) : [],
    )
    for (const guard of guards) expect(guard === undefined || typeof guard === 'string').toBe(true)
  })
})
