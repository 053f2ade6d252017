import axios from 'axios'
import { afterEach, expect, it, vi } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { fakeAdapter, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F10 (browser only, low): sameTarget() compares the config fields but not the page bases a
// relative URL resolves against (document.baseURI / location.href, see pageBases()). An
// interceptor that runs after the transport's (registered earlier) and awaits, during which
// the page's <base href> changes, now gets the token written for a relative URL that resolves
// to another origin. Before cf02cd6 the send-time check always decided again.

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
  vi.unstubAllGlobals()
})

it('a relative URL whose page base moved to another origin before sending gets no token', async () => {
  const page = { href: 'https://app.test/home' }
  const doc = { baseURI: 'https://app.test/home' }
  vi.stubGlobal('location', page)
  vi.stubGlobal('document', doc)
  const fake = fakeAdapter()
  const http = axios.create({ adapter: fake.adapter })
  // Registered before attach: runs after the transport's interceptor.
  http.interceptors.request.use(async (config) => {
    await Promise.resolve()
    doc.baseURI = 'https://cdn.evil.test/' // e.g. <base href> injected/changed meanwhile
    return config
  })
  auth = createAuthClient({
    refresh: async () => tokens(2),
    attachTo: ['https://app.test'],
    crossTab: false,
    onWarning: () => undefined,
  })
  auth.attach(http)
  auth.login(tokens(1))
  await auth.ready
  await http.get('api/me') // the xhr adapter would open https://cdn.evil.test/api/me
  expect(fake.calls.map((c) => c.authorization)).toEqual([undefined])
})
