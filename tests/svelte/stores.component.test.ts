// auth-machine/svelte's stores as store consumers (derived, subscribe) combine them, and its
// helpers outside components: the review's findings, each failing before its fix.
import { derived, get } from 'svelte/store'
import { describe, expect, it } from 'vitest'
import { useAuth, useAuthEvent } from '../../src/svelte/index.js'
import { componentHarnesses } from '../bindings/harnesses.js'
import { listenersOf } from '../bindings/listeners.js'

const harness = componentHarnesses()

describe('useAuth as stores, combined', () => {
  it('never shows a combination of fields that the session never had', async () => {
    const h = await harness()
    const { status, isAuthenticated, isRefreshing, logout } = useAuth(h.auth)
    const seen: string[] = []
    // A common Svelte pattern: one derived view over several of the stores.
    const view = derived(
      [status, isAuthenticated, isRefreshing],
      ([$status, $signedIn, $refreshing]) => `${$status}/${$signedIn}/${$refreshing}`,
    )
    const stop = view.subscribe((value) => seen.push(value))
    await h.signIn()
    await logout()
    stop()
    // Every combination seen is one of the session's real ones (seven separate selectors
    // showed `authenticated/false/false` on login and `loggedOut/true/false` on logout).
    const real = ['loggedOut/false/false', 'authenticated/true/false', 'refreshing/true/true']
    expect(seen.filter((value) => !real.includes(value))).toEqual([])
  })

  it('notifies a derived view once when the refresh lands', async () => {
    const h = await harness()
    const { status, isRefreshing, generation, expiresAt } = useAuth(h.auth)
    let notifications = -1
    const view = derived([status, isRefreshing, generation, expiresAt], (values) => values)
    const stop = view.subscribe(() => notifications++)
    await h.signIn()
    h.clock.advance(1000)
    const gate = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const request = h.http.get('/api/resource')
    await gate.untilWaiting(1)
    const before = notifications
    gate.release()
    await request
    expect(get(status)).toBe('authenticated')
    // Seven stores on seven selectors notified one after another: 4 updates, not 1.
    expect(notifications - before).toBe(1)
    stop()
  })
})

describe('helpers outside components, with the client passed', () => {
  it('useAuthEvent refuses outside a component and leaves no listener behind', async () => {
    const h = await harness()
    const before = listenersOf(h.auth)
    const heard: string[] = []
    // It threw, but only after subscribing: the handler stayed attached for good.
    expect(() => useAuthEvent('loggedOut', (event) => heard.push(event.type), h.auth)).toThrow()
    expect(listenersOf(h.auth)).toEqual(before)
    await h.signIn()
    await h.auth.logout()
    expect(heard).toEqual([])
  })
})

describe('helpers outside components, without a client', () => {
  it("useAuth() says what to do (pass the client), not only Svelte's lifecycle error", () => {
    // Svelte's "lifecycle_outside_component" came first: the binding's advice was never reached.
    expect(() => useAuth()).toThrow(/auth-machine\/svelte: .*pass auth as the last argument/)
  })
})
