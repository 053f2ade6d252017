// @vitest-environment happy-dom
// auth-machine/vue under server rendering, providing and reading in one component, and calls
// outside any scope: the review's findings, each failing before its fix.
import { renderToString } from '@vue/server-renderer'
import { mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, createSSRApp, defineComponent, h as el } from 'vue'
import {
  createAuthPlugin,
  provideAuth,
  useAuth,
  useAuthEvent,
  useAuthSelector,
} from '../../src/vue/index.js'
import { componentHarnesses } from '../bindings/harnesses.js'
import { listenersOf } from '../bindings/listeners.js'

const harness = componentHarnesses()

afterEach(() => {
  vi.restoreAllMocks()
})

describe('server-side rendering', () => {
  it('leaves no listener on a module-level client after renderToString', async () => {
    const h = await harness()
    await h.signIn()
    const before = listenersOf(h.auth)
    const Header = defineComponent({
      setup() {
        const { status } = useAuth()
        const queued = useAuthSelector((snapshot) => snapshot.context.queue.length)
        useAuthEvent('sessionExpired', () => undefined)
        return () => el('header', `${status.value} ${queued.value}`)
      },
    })
    // One server, one client created at module level (as the README asks), ten requests.
    for (let i = 0; i < 10; i++) {
      const html = await renderToString(createSSRApp(Header).use(createAuthPlugin(h.auth)))
      expect(html).toContain('authenticated 0')
    }
    // Vue never stops a server-rendered component's scope: a listener ended by
    // onScopeDispose stayed on the client, with the component it closes over.
    expect(listenersOf(h.auth)).toEqual(before)
  })
})

describe('provideAuth', () => {
  it('is seen by useAuth in the component that called it', async () => {
    const h = await harness()
    await h.signIn()
    vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const App = defineComponent({
      setup() {
        provideAuth(h.auth)
        const { status } = useAuth()
        return () => el('p', status.value)
      },
    })
    // Vue's inject reads only what ancestors provide: this threw "no auth client provided".
    expect(mount(App).text()).toBe('authenticated')
  })

  it('the component that provides a client reads that client, not the plugin one', async () => {
    const a = await harness()
    const b = await harness()
    await b.signIn()
    const App = defineComponent({
      setup() {
        provideAuth(b.auth)
        const { status } = useAuth()
        return () => el('p', status.value)
      },
    })
    // Read client `a` (signed out) from the plugin.
    expect(mount(App, { global: { plugins: [createAuthPlugin(a.auth)] } }).text()).toBe(
      'authenticated',
    )
  })
})

describe('outside any effect scope', () => {
  it('refuses to subscribe where nothing could ever end the subscription', async () => {
    const h = await harness()
    const before = listenersOf(h.auth)
    const app = createApp({ render: () => null }).use(createAuthPlugin(h.auth))
    // e.g. a router guard or a plain module using the app's context, with no effectScope:
    // the listener and the observers stayed on the client for good.
    for (const call of [
      () => useAuthEvent('loggedOut', () => undefined),
      () => useAuth(),
      () => useAuthSelector((snapshot) => snapshot.context.generation),
    ]) {
      expect(() => app.runWithContext(call)).toThrow(/in setup\(\) or inside an effectScope\(\)/)
    }
    expect(listenersOf(h.auth)).toEqual(before)
  })
})
