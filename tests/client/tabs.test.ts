import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { createHarness, type Harness, refreshAt } from '../helpers.js'

// Node has BroadcastChannel but neither Web Locks nor IndexedDB: here crossTab hands sessions
// over and degrades to in-tab single flight. The browser suite covers locks and IndexedDB.
let h: Harness
let second: AuthClient | undefined
afterEach(async () => {
  second?.dispose()
  second = undefined
  await h?.close()
})

let channel = 0
async function twoTabs() {
  const crossTab = { name: `test-${process.pid}-${++channel}` }
  h = await createHarness({ crossTab })
  const http = axios.create({ baseURL: h.server.url })
  second = createAuthClient({
    http,
    crossTab,
    refresh: refreshAt(h.server.url),
  })
  return { other: second, http }
}

describe('cross-tab hand-over (BroadcastChannel)', () => {
  it('a login in one client signs the other in', async () => {
    const { other, http } = await twoTabs()
    await h.signIn()
    await waitFor(other.actor, (s) => s.matches('authenticated'))
    expect(other.actor.getSnapshot().context.session?.accessToken).toBe(
      await h.auth.getAccessToken(),
    )
    await expect(http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
  })

  it('a refresh in one client is adopted by the other without a second refresh', async () => {
    const { other, http } = await twoTabs()
    await h.signIn()
    await waitFor(other.actor, (s) => s.matches('authenticated'))
    h.server.expireAccessTokens()
    await h.http.get('/api/resource')
    const fresh = await h.auth.getAccessToken()
    await waitFor(other.actor, (s) => s.context.session?.accessToken === fresh)
    await expect(http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
    expect(h.server.counters.refreshCalls).toBe(1)
    expect(h.server.counters.reuseDetections).toBe(0)
  })

  it('a logout in one client logs the other out; it sends nothing more with the old token', async () => {
    const { other, http } = await twoTabs()
    const ended: unknown[] = []
    other.actor.on('loggedOut', (event) => ended.push(event))
    await h.signIn()
    await waitFor(other.actor, (s) => s.matches('authenticated'))
    await h.auth.logout()
    await waitFor(other.actor, (s) => s.matches('loggedOut'))
    expect(ended).toHaveLength(1)
    const before = h.server.requests.length
    await http.get('/api/resource').catch(() => undefined)
    expect(h.server.requests.slice(before).every((r) => r.authorization === undefined)).toBe(true)
  })

  it('crossTab is off by default outside browsers', async () => {
    h = await createHarness()
    const http = axios.create({ baseURL: h.server.url })
    second = createAuthClient({ http, refresh: async () => ({ accessToken: 'x' }) })
    await h.signIn()
    // A round trip through the server gives any channel message time to arrive.
    await h.http.get('/public')
    expect(second.actor.getSnapshot().value).toBe('loggedOut')
  })
})
