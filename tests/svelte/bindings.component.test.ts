// auth-machine/svelte in happy-dom: Svelte 5 components (tests/svelte/components) rendered by
// Svelte Testing Library, and the stores on their own, against the real token server.
import { act, render, screen } from '@testing-library/svelte'
import type { Readable } from 'svelte/store'
import { describe, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { type AuthStores, useAuth, useAuthSelector } from '../../src/svelte/index.js'
import {
  CHANGES_WHEN_REFRESH_LANDS,
  componentHarnesses,
  growth,
  knownTokens,
} from '../bindings/harnesses.js'
import { listenersOf } from '../bindings/listeners.js'
import { outcomes, signInAt } from '../helpers.js'
import Orphan from './components/Orphan.svelte'
import WithClient from './components/WithClient.svelte'

const harness = componentHarnesses()

const text = (testId: string) => screen.getByTestId(testId).textContent

/** Subscribes to every store of `stores`, counting the notifications after the first value. */
function countNotifications(stores: AuthStores) {
  const counts: Record<string, number> = {}
  const values: Record<string, unknown> = {}
  const stops: (() => void)[] = []
  for (const [name, store] of Object.entries(stores)) {
    if (typeof store === 'function') continue
    counts[name] = -1
    stops.push(
      (store as Readable<unknown>).subscribe((value) => {
        counts[name] = (counts[name] ?? 0) + 1
        values[name] = value
      }),
    )
  }
  return {
    counts,
    values,
    stop() {
      for (const stop of stops) stop()
    },
  }
}

describe('setAuthClient and useAuth in components', () => {
  it('throws a helpful error when no ancestor set the client', () => {
    expect(() => render(Orphan)).toThrow(/setAuthClient/)
  })

  it('renders the session through sign-in, a refresh that fails transiently, and expiry', async () => {
    const h = await harness({ retry: false })
    render(WithClient, { props: { client: h.auth } })
    expect(text('status')).toBe('loggedOut')
    expect(text('signed-in')).toBe('false')
    expect(text('expires-at')).toBe('none')

    await act(() => h.signIn())
    expect(text('status')).toBe('authenticated')
    expect(text('signed-in')).toBe('true')
    expect(text('generation')).toBe('1')
    expect(text('expires-at')).toBe(String(h.clock.now() + 1800_000))

    h.server.failNextRefresh(503)
    h.server.expireAccessTokens()
    await act(() => outcomes([h.http.get('/api/resource')]))
    expect(text('stale')).toBe('true')
    expect(text('error')).toBe('REFRESH_FAILED')
    expect(text('status')).toBe('authenticated')

    h.server.revokeSessions()
    const { rejected } = await act(() => outcomes([h.http.get('/api/resource')]))
    expect(rejected[0]).toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(text('status')).toBe('expired')
    expect(text('signed-in')).toBe('false')
    expect(text('expired')).toBe('SESSION_EXPIRED')
    expect(text('error')).toBe('SESSION_EXPIRED')

    // Nothing rendered holds a token.
    for (const token of knownTokens(h)) expect(document.body.innerHTML).not.toContain(token)
  })

  it('leaves no subscription or listener behind, after twenty components came and went', async () => {
    const h = await harness()
    // Signed in first: signing in changes the client's own subscriptions.
    await h.signIn()
    const before = listenersOf(h.auth)
    const views = Array.from({ length: 20 }, () =>
      render(WithClient, { props: { client: h.auth } }),
    )
    const mounted = listenersOf(h.auth)
    expect(mounted.observers).toBeGreaterThanOrEqual(before.observers + 20)
    expect(mounted.listeners).toBe(before.listeners + 20)
    for (const view of views) view.unmount()
    expect(listenersOf(h.auth)).toEqual(before)
  })

  it('stops delivering events once the component is destroyed', async () => {
    const h = await harness()
    const heard: string[] = []
    const { unmount } = render(WithClient, { props: { client: h.auth, heard } })
    await act(() => h.signIn())
    h.server.revokeSessions()
    await act(() => outcomes([h.http.get('/api/resource')]))
    expect(text('expired')).toBe('SESSION_EXPIRED')
    expect(heard).toEqual(['SESSION_EXPIRED'])

    unmount()
    await h.signIn()
    h.server.revokeSessions()
    await outcomes([h.http.get('/api/resource')])
    expect(h.auth.actor.getSnapshot().matches('expired')).toBe(true)
    expect(heard).toEqual(['SESSION_EXPIRED'])
  })
})

describe('useAuth as stores', () => {
  it('notifies nothing while requests queue, and each changed store once when the refresh lands', async () => {
    const h = await harness()
    // Outside a component the client is passed in; the stores work the same.
    const stores = useAuth(h.auth)
    const generation = useAuthSelector((s) => s.context.generation, undefined, h.auth)
    const queue = useAuthSelector((s) => s.context.queue.length, undefined, h.auth)
    const seen = countNotifications(stores)
    let generationCalls = -1
    let queueCalls = -1
    const stopGeneration = generation.subscribe(() => generationCalls++)
    const stopQueue = queue.subscribe(() => queueCalls++)
    await h.signIn()
    expect(seen.values).toMatchObject({ status: 'authenticated', generation: 1 })

    // A second later, so the new token's expiry differs from the old one's.
    h.clock.advance(1000)
    const gate = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const requests = [h.http.get('/api/resource')]
    await gate.untilWaiting(1)
    expect(seen.values).toMatchObject({ status: 'refreshing', isRefreshing: true })
    const before = { counts: { ...seen.counts }, generationCalls, queueCalls }

    // Five more join the queue: five snapshots that change none of the stores' values.
    for (let i = 0; i < 5; i++) requests.push(h.http.get('/api/resource'))
    await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 6)
    expect(seen.counts).toEqual(before.counts)
    expect(generationCalls).toBe(before.generationCalls)
    expect(queueCalls).toBeGreaterThan(before.queueCalls)

    gate.release()
    await h.until('authenticated')
    expect((await outcomes(requests)).fulfilled).toBe(6)
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(growth(seen.counts, before.counts)).toEqual(CHANGES_WHEN_REFRESH_LANDS)
    expect(generationCalls).toBe(before.generationCalls + 1)

    // No store holds a token.
    const serialized = JSON.stringify(seen.values)
    for (const token of knownTokens(h)) expect(serialized).not.toContain(token)
    seen.stop()
    stopGeneration()
    stopQueue()
  })

  it('hands out the actions, and selectors compare as asked', async () => {
    const h = await harness()
    const { login, logout, getAccessToken, wake } = useAuth(h.auth)
    const signedIn = useAuthSelector(
      (snapshot) => ({ signedIn: snapshot.context.session !== null }),
      (a, b) => a.signedIn === b.signedIn,
      h.auth,
    )
    let notified = -1
    const stop = signedIn.subscribe(() => notified++)
    login(await signInAt(h.server.url))
    expect(notified).toBe(1)
    // A second login replaces the session: a new snapshot, the same selected value.
    login(await signInAt(h.server.url))
    expect(h.auth.actor.getSnapshot().context.generation).toBe(2)
    expect(notified).toBe(1)
    const token = await getAccessToken()
    expect(token && h.server.verifyAccessToken(token)).toBeTruthy()
    wake()
    await logout()
    expect(await getAccessToken()).toBeNull()
    expect(notified).toBe(2)
    stop()
  })
})
