// @vitest-environment happy-dom
// auth-machine/vue in happy-dom: components mounted with Vue Test Utils, against the real
// token server. The same app as a Vite-built page in Chromium: tests/bindings/browser.test.ts.
import { mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, effectScope, h as el, nextTick, ref, watch } from 'vue'
import { waitFor } from 'xstate'
import type { AuthClient } from '../../src/index.js'
import {
  type AuthRefs,
  authClientKey,
  createAuthPlugin,
  provideAuth,
  useAuth,
  useAuthClient,
  useAuthEvent,
  useAuthSelector,
} from '../../src/vue/index.js'
import {
  CHANGES_WHEN_REFRESH_LANDS,
  componentHarnesses,
  growth,
  knownTokens,
} from '../bindings/harnesses.js'
import { listenersOf } from '../bindings/listeners.js'
import { outcomes, signInAt } from '../helpers.js'

const harness = componentHarnesses()

afterEach(async () => {
  vi.restoreAllMocks()
})

/** Mounts `setup` as a component under the plugin, returning what it returned. */
function withAuth<T>(client: AuthClient, setup: () => T) {
  let result: T | undefined
  const wrapper = mount(
    defineComponent({
      setup() {
        result = setup()
        return () => null
      },
    }),
    { global: { plugins: [createAuthPlugin(client)] } },
  )
  return { result: result as T, wrapper }
}

/** The refs' current values, without the actions. */
function values(refs: AuthRefs): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(refs).flatMap(([name, value]) =>
      typeof value === 'function' ? [] : [[name, value.value]],
    ),
  )
}

describe('providing the client', () => {
  it('throws a helpful error when nothing provided the client', () => {
    vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const Orphan = defineComponent({
      setup() {
        useAuth()
        return () => null
      },
    })
    expect(() => mount(Orphan)).toThrow(/createAuthPlugin\(auth\), or call provideAuth\(auth\)/)
  })

  it('finds the client from the plugin, from provideAuth and under authClientKey', async () => {
    const h = await harness()
    expect(withAuth(h.auth, useAuthClient).result).toBe(h.auth)

    let found: AuthClient | undefined
    const Child = defineComponent({
      setup() {
        found = useAuthClient()
        return () => null
      },
    })
    mount(
      defineComponent({
        setup() {
          provideAuth(h.auth)
          return () => el(Child)
        },
      }),
    )
    expect(found).toBe(h.auth)
    mount(Child, { global: { provide: { [authClientKey]: h.auth } } })
    expect(found).toBe(h.auth)
  })
})

describe('useAuth', () => {
  it('follows a session through sign-in, a proactive refresh and logout', async () => {
    const h = await harness({ refreshMargin: 60_000 })
    const { result: auth } = withAuth(h.auth, useAuth)
    expect(values(auth)).toEqual({
      status: 'loggedOut',
      isAuthenticated: false,
      isRefreshing: false,
      isStale: false,
      generation: 0,
      error: null,
      expiresAt: null,
    })

    await h.signIn()
    expect(values(auth)).toMatchObject({
      status: 'authenticated',
      isAuthenticated: true,
      generation: 1,
      expiresAt: h.clock.now() + 1800_000,
    })

    const gate = h.server.hold('/auth/refresh')
    h.clock.advance(1800_000 - 60_000)
    expect(values(auth)).toMatchObject({
      status: 'refreshing',
      isAuthenticated: true,
      isRefreshing: true,
    })
    await gate.untilWaiting(1)
    gate.release()
    await h.until('authenticated')
    expect(values(auth)).toMatchObject({ status: 'authenticated', generation: 2, error: null })
    expect(h.server.counters.refreshCalls).toBe(1)

    const token = await auth.getAccessToken()
    expect(token && h.server.verifyAccessToken(token)).toBeTruthy()
    // No ref holds a token, so none can end up in devtools or markup by accident.
    const serialized = JSON.stringify(values(auth))
    for (const secret of knownTokens(h)) expect(serialized).not.toContain(secret)

    await auth.logout()
    expect(values(auth)).toMatchObject({ status: 'loggedOut', isAuthenticated: false })
    expect(await auth.getAccessToken()).toBeNull()
  })

  it('logs in with tokens from the app and reports a kept session after a transient failure', async () => {
    const h = await harness({ retry: false })
    const { result: auth } = withAuth(h.auth, useAuth)
    auth.login(await signInAt(h.server.url))
    expect(values(auth)).toMatchObject({ status: 'authenticated', generation: 1 })

    h.server.failNextRefresh(500)
    h.server.expireAccessTokens()
    const { rejected } = await outcomes([h.http.get('/api/resource')])
    expect(rejected[0]).toMatchObject({ code: 'REFRESH_FAILED' })
    expect(values(auth)).toMatchObject({
      status: 'authenticated',
      isAuthenticated: true,
      isStale: true,
      error: { code: 'REFRESH_FAILED', status: 500 },
    })
  })

  it('updates nothing while requests queue, and each changed ref once when the refresh lands', async () => {
    const h = await harness()
    const renders = { generation: 0, status: 0 }
    const triggers: Record<string, number> = {}
    const Counted = defineComponent({
      setup() {
        const auth = useAuth()
        for (const [name, value] of Object.entries(auth)) {
          if (typeof value === 'function') continue
          triggers[name] = 0
          watch(
            value,
            () => {
              triggers[name] = (triggers[name] ?? 0) + 1
            },
            { flush: 'sync' },
          )
        }
        return () => null
      },
    })
    // Two children, each rendering one selected value and counting its renders.
    const Generation = defineComponent({
      setup() {
        const generation = useAuthSelector((snapshot) => snapshot.context.generation)
        return () =>
          el(
            'span',
            { 'data-testid': 'generation' },
            [renders.generation++, generation.value].join(':'),
          )
      },
    })
    const Status = defineComponent({
      setup() {
        const { status } = useAuth()
        return () =>
          el('span', { 'data-testid': 'status' }, [renders.status++, status.value].join(':'))
      },
    })
    const wrapper = mount(
      defineComponent({ setup: () => () => [el(Counted), el(Generation), el(Status)] }),
      { global: { plugins: [createAuthPlugin(h.auth)] } },
    )
    await h.signIn()
    h.clock.advance(1000)
    const gate = h.server.hold('/auth/refresh')
    h.server.expireAccessTokens()
    const requests = [h.http.get('/api/resource')]
    await gate.untilWaiting(1)
    await nextTick()
    expect(wrapper.get('[data-testid="status"]').text()).toMatch(/:refreshing$/)
    const before = { renders: { ...renders }, triggers: { ...triggers } }

    for (let i = 0; i < 5; i++) requests.push(h.http.get('/api/resource'))
    await waitFor(h.auth.actor, (snapshot) => snapshot.context.queue.length === 6)
    await nextTick()
    expect(triggers).toEqual(before.triggers)
    expect(renders).toEqual(before.renders)

    gate.release()
    await h.until('authenticated')
    expect((await outcomes(requests)).fulfilled).toBe(6)
    await nextTick()
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(growth(triggers, before.triggers)).toEqual(CHANGES_WHEN_REFRESH_LANDS)
    expect(renders).toEqual({
      generation: before.renders.generation + 1,
      status: before.renders.status + 1,
    })
    expect(wrapper.get('[data-testid="generation"]').text()).toMatch(/:2$/)
    wrapper.unmount()
  })
})

describe('useAuthSelector', () => {
  it('takes a custom comparison', async () => {
    const h = await harness()
    const { result: signedIn } = withAuth(h.auth, () =>
      useAuthSelector(
        (snapshot) => ({ signedIn: snapshot.context.session !== null }),
        (a, b) => a.signedIn === b.signedIn,
      ),
    )
    let changes = 0
    const scope = effectScope()
    scope.run(() => watch(signedIn, () => changes++, { flush: 'sync' }))
    await h.signIn()
    expect(signedIn.value.signedIn).toBe(true)
    // A second login replaces the session: a new snapshot, the same selected value.
    await h.signIn()
    expect(h.auth.actor.getSnapshot().context.generation).toBe(2)
    expect(changes).toBe(1)
    scope.stop()
  })
})

describe('useAuthEvent', () => {
  it('delivers emitted events until the component unmounts', async () => {
    const h = await harness()
    const seen = ref<string[]>([])
    const { wrapper } = withAuth(h.auth, () =>
      useAuthEvent('sessionExpired', (event) => seen.value.push(event.error.code)),
    )
    await h.signIn()
    h.server.revokeSessions()
    const { rejected } = await outcomes([h.http.get('/api/resource')])
    expect(rejected[0]).toMatchObject({ code: 'SESSION_EXPIRED' })
    expect(seen.value).toEqual(['SESSION_EXPIRED'])

    wrapper.unmount()
    await h.signIn()
    h.server.revokeSessions()
    await outcomes([h.http.get('/api/resource')])
    expect(h.auth.actor.getSnapshot().matches('expired')).toBe(true)
    expect(seen.value).toEqual(['SESSION_EXPIRED'])
  })

  it('stops with the effect scope it was called in, outside components too', async () => {
    const h = await harness()
    const seen: string[] = []
    const scope = effectScope()
    const app = mount(defineComponent({ setup: () => () => null }), {
      global: { plugins: [createAuthPlugin(h.auth)] },
    })
    app.vm.$.appContext.app.runWithContext(() =>
      scope.run(() => useAuthEvent('loggedOut', (event) => seen.push(event.type))),
    )
    await h.signIn()
    await h.auth.logout()
    expect(seen).toEqual(['loggedOut'])
    scope.stop()
    await h.signIn()
    await h.auth.logout()
    expect(seen).toEqual(['loggedOut'])
  })
})

describe('unmounting', () => {
  it('leaves no subscription or listener behind, after twenty components came and went', async () => {
    const h = await harness()
    // Signed in first: signing in changes the client's own subscriptions.
    await h.signIn()
    const before = listenersOf(h.auth)
    const Everything = defineComponent({
      setup() {
        const { status } = useAuth()
        const queued = useAuthSelector((snapshot) => snapshot.context.queue.length)
        useAuthEvent('refreshed', () => undefined)
        useAuthEvent('loggedOut', () => undefined)
        return () => el('span', `${status.value} ${queued.value}`)
      },
    })
    const wrappers = Array.from({ length: 20 }, () =>
      mount(Everything, { global: { plugins: [createAuthPlugin(h.auth)] } }),
    )
    const mounted = listenersOf(h.auth)
    expect(mounted.observers).toBeGreaterThanOrEqual(before.observers + 40)
    expect(mounted.listeners).toBe(before.listeners + 40)
    for (const wrapper of wrappers) wrapper.unmount()
    expect(listenersOf(h.auth)).toEqual(before)
  })
})
