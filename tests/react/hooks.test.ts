// @vitest-environment happy-dom
import { act, cleanup, render, renderHook, screen } from '@testing-library/react'
import { createElement, type ReactNode } from 'react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { waitFor } from 'xstate'
import type { AuthClient } from '../../src/index.js'
import {
  AuthProvider,
  authStatus,
  useAuth,
  useAuthClient,
  useAuthEvent,
  useAuthSelector,
} from '../../src/react/index.js'
import { componentHarnesses, knownTokens } from '../bindings/harnesses.js'
import { outcomes, signInAt } from '../helpers.js'

const harness = componentHarnesses()

afterEach(() => {
  cleanup()
  vi.restoreAllMocks()
})

function providerFor(client: AuthClient) {
  return ({ children }: { children?: ReactNode }) =>
    createElement(AuthProvider, { client }, children)
}

// Components for the render-count test, each counting its own renders.
const counted = { generation: 0, status: 0, queue: 0 }

function Generation() {
  const generation = useAuthSelector((snapshot) => snapshot.context.generation)
  counted.generation++
  return createElement('span', { 'data-testid': 'generation' }, String(generation))
}

function Status() {
  const { status } = useAuth()
  counted.status++
  return createElement('span', { 'data-testid': 'status' }, status)
}

function Queue() {
  const queued = useAuthSelector((snapshot) => snapshot.context.queue.length)
  counted.queue++
  return createElement('span', { 'data-testid': 'queue' }, String(queued))
}

describe('AuthProvider and useAuthClient', () => {
  it('throws a helpful error when a hook is used without a provider', () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined)
    expect(() => renderHook(() => useAuth())).toThrow(/AuthProvider/)
    expect(() => renderHook(() => useAuthSelector(authStatus))).toThrow(/AuthProvider/)
  })

  it('hands out the client it was given, and follows a new one', async () => {
    const first = await harness()
    const second = await harness()
    await act(() => second.signIn())
    let client = first.auth
    const { result, rerender } = renderHook(() => ({ client: useAuthClient(), auth: useAuth() }), {
      wrapper: ({ children }) => createElement(AuthProvider, { client }, children),
    })
    expect(result.current.client).toBe(first.auth)
    expect(result.current.auth.status).toBe('loggedOut')
    client = second.auth
    rerender()
    expect(result.current.client).toBe(second.auth)
    expect(result.current.auth.status).toBe('authenticated')
  })
})

describe('useAuth', () => {
  it('follows a session through sign-in, a proactive refresh and logout', async () => {
    const h = await harness({ refreshMargin: 60_000 })
    const { result } = renderHook(() => useAuth(), { wrapper: providerFor(h.auth) })
    expect(result.current).toMatchObject({
      status: 'loggedOut',
      isAuthenticated: false,
      isRefreshing: false,
      generation: 0,
      expiresAt: null,
      error: null,
    })

    await act(() => h.signIn())
    expect(result.current).toMatchObject({
      status: 'authenticated',
      isAuthenticated: true,
      isStale: false,
      generation: 1,
      expiresAt: h.clock.now() + 1800_000,
    })

    const gate = h.server.hold('/auth/refresh')
    act(() => h.clock.advance(1800_000 - 60_000))
    expect(result.current).toMatchObject({
      status: 'refreshing',
      isAuthenticated: true,
      isRefreshing: true,
    })
    await gate.untilWaiting(1)
    gate.release()
    await act(() => h.until('authenticated'))
    expect(result.current).toMatchObject({ status: 'authenticated', generation: 2, error: null })
    expect(h.server.counters.refreshCalls).toBe(1)

    const token = await result.current.getAccessToken()
    expect(token && h.server.verifyAccessToken(token)).toBeTruthy()
    // The hook's state holds no token, so none can end up in DevTools or markup by accident.
    const serialized = JSON.stringify(result.current)
    for (const secret of knownTokens(h)) expect(serialized).not.toContain(secret)

    await act(() => result.current.logout())
    expect(result.current).toMatchObject({ status: 'loggedOut', isAuthenticated: false })
    expect(await result.current.getAccessToken()).toBeNull()
  })

  it('logs in with tokens from the app and reports a kept session after transient failures', async () => {
    const h = await harness({ retry: false })
    const { result } = renderHook(() => useAuth(), { wrapper: providerFor(h.auth) })
    const data = await signInAt(h.server.url)
    act(() => result.current.login(data))
    expect(result.current).toMatchObject({ status: 'authenticated', generation: 1 })

    h.server.failNextRefresh(500)
    h.server.expireAccessTokens()
    const { fulfilled, rejected } = await act(() => outcomes([h.http.get('/api/resource')]))
    expect(fulfilled).toBe(0)
    expect(rejected[0]).toMatchObject({ code: 'REFRESH_FAILED' })
    expect(result.current).toMatchObject({
      status: 'authenticated',
      isAuthenticated: true,
      isStale: true,
      error: { code: 'REFRESH_FAILED', status: 500 },
    })
  })

  it('keeps its actions stable across renders', async () => {
    const h = await harness()
    const { result } = renderHook(() => useAuth(), { wrapper: providerFor(h.auth) })
    const { login, logout, getAccessToken, wake } = result.current
    await act(() => h.signIn())
    expect(result.current.generation).toBe(1)
    expect(result.current.login).toBe(login)
    expect(result.current.logout).toBe(logout)
    expect(result.current.getAccessToken).toBe(getAccessToken)
    expect(result.current.wake).toBe(wake)
  })
})

describe('useAuthSelector', () => {
  it('re-renders only when the selected value changes, not on unrelated context changes', async () => {
    const h = await harness()
    const renders = counted
    renders.generation = 0
    renders.status = 0
    renders.queue = 0
    render(
      createElement(
        AuthProvider,
        { client: h.auth },
        createElement(Generation),
        createElement(Status),
        createElement(Queue),
      ),
    )
    await act(() => h.signIn())
    expect(screen.getByTestId('generation').textContent).toBe('1')

    // One request meets the expired token and starts the refresh, which the server holds.
    const gate = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const requests = [h.http.get('/api/resource')]
    await act(() => gate.untilWaiting(1))
    expect(screen.getByTestId('status').textContent).toBe('refreshing')
    const before = { ...renders }

    // Five more join the queue: five context changes that touch neither generation nor status.
    for (let i = 0; i < 5; i++) requests.push(h.http.get('/api/resource'))
    await act(() => waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 6))
    expect(screen.getByTestId('queue').textContent).toBe('6')
    expect(renders.queue).toBeGreaterThan(before.queue)
    expect(renders.generation).toBe(before.generation)
    expect(renders.status).toBe(before.status)

    // The refresh lands: one new generation, one render of the generation component.
    gate.release()
    await act(async () => {
      await h.until('authenticated')
      expect((await outcomes(requests)).fulfilled).toBe(6)
    })
    expect(screen.getByTestId('generation').textContent).toBe('2')
    expect(renders.generation).toBe(before.generation + 1)
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('takes a custom comparison', async () => {
    const h = await harness()
    let renders = 0
    const { result } = renderHook(
      () => {
        renders++
        return useAuthSelector(
          (snapshot) => ({ signedIn: snapshot.context.session !== null }),
          (a, b) => a.signedIn === b.signedIn,
        )
      },
      { wrapper: providerFor(h.auth) },
    )
    expect(result.current.signedIn).toBe(false)
    await act(() => h.signIn())
    expect(result.current.signedIn).toBe(true)
    const afterLogin = renders
    // A second login replaces the session: a new snapshot, the same selected value.
    await act(() => h.signIn())
    expect(h.auth.actor.getSnapshot().context.generation).toBe(2)
    expect(renders).toBe(afterLogin)
  })
})

describe('authStatus', () => {
  it('names the top-level state of nested states', async () => {
    const h = await harness({ retry: false })
    expect(authStatus(h.auth.actor.getSnapshot())).toBe('loggedOut')
    await h.signIn()
    expect(authStatus(h.auth.actor.getSnapshot())).toBe('authenticated')
    h.server.failNextRefresh(503)
    h.server.expireAccessTokens()
    await outcomes([h.http.get('/api/resource')])
    expect(h.auth.actor.getSnapshot().matches({ authenticated: 'stale' })).toBe(true)
    expect(authStatus(h.auth.actor.getSnapshot())).toBe('authenticated')
  })
})

describe('useAuthEvent', () => {
  it('delivers emitted events to the latest handler until unmount', async () => {
    const h = await harness()
    const seen: string[] = []
    const { rerender, unmount } = renderHook(
      ({ label }: { label: string }) =>
        useAuthEvent('sessionExpired', (event) => seen.push(`${label}:${event.error.code}`)),
      { wrapper: providerFor(h.auth), initialProps: { label: 'first' } },
    )
    rerender({ label: 'second' })
    await act(() => h.signIn())
    h.server.revokeSessions()
    const { rejected } = await act(() => outcomes([h.http.get('/api/resource')]))
    expect(rejected[0]).toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(seen).toEqual(['second:SESSION_EXPIRED'])

    unmount()
    await h.signIn()
    h.server.revokeSessions()
    await outcomes([h.http.get('/api/resource')])
    expect(h.auth.actor.getSnapshot().matches('expired')).toBe(true)
    expect(seen).toEqual(['second:SESSION_EXPIRED'])
  })
})
