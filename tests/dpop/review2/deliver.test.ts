/**
 * review2: `deliver` with DPoP (src/client.ts) checks each session message's key before
 * taking it, in an async queue, and a request that cannot read its key ends the session
 * (keyLost → SESSION_ENDED).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { memoryKeyStore } from '../../../src/dpop/keys.js'
import { tinyServer } from '../review/support.js'
import { controllableStore, drain, settle, signIn, tab } from './support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('review2: a session message that waits for its key check', () => {
  // Without DPoP a message is taken as it arrives: LOGIN B, then the user's logout ends B.
  // With DPoP the LOGIN waits for `keys.has` (an IndexedDB read, up to 3 s) while logout()
  // acts at once, so the LOGIN that came first is applied after the logout: the tab is signed
  // in again (as B) right after the user signed out here, and its `ended` announcement has
  // meanwhile ended B in the other tabs. Invariant 7 in spirit: logout wins.
  it('a LOGIN that arrived before logout() does not sign the tab in again after it', async () => {
    const shared = memoryKeyStore()
    const one = controllableStore(shared)
    const tab1 = tab(one.store)
    const tab2 = tab(shared)
    closers.push(
      () => tab1.auth.dispose(),
      () => tab2.auth.dispose(),
    )
    await signIn(tab1.auth, 'token-a')
    await settle()
    await signIn(tab2.auth, 'token-b')
    await settle()
    const loginB = tab2.announced.find((m) => m.type === 'session' && m.reason === 'login')
    expect(loginB).toBeDefined()

    const release = one.hold() // tab1's IndexedDB read is slow (busy database)
    tab1.deliver(loginB as never) // arrives first
    await tab1.auth.logout() // the user signs out in tab1
    expect(tab1.auth.actor.getSnapshot().context.session).toBeNull()
    release()
    await drain(tab1, one)

    expect(tab1.auth.actor.getSnapshot().context.session).toBeNull()
    expect(tab1.auth.actor.getSnapshot().matches('loggedOut')).toBe(true)
  })

  // Another tab signs in (maybe as another user): its login deletes the session it replaced
  // (A) from the shared key store. This tab's check of B's key fails once (a read that timed
  // out, or the store fell back to memory after a first failure): the LOGIN is dropped for
  // good, and the tab stays signed in as A, whose key is gone from the store, signing with
  // the copy it keeps in memory. Two tabs, two users; nothing ever retries or ends A here.
  it('a LOGIN whose key check fails does not leave the tab in the session it replaced', async () => {
    const shared = memoryKeyStore()
    const one = controllableStore(shared)
    const two = controllableStore(shared)
    const tab1 = tab(one.store)
    const tab2 = tab(two.store)
    closers.push(
      () => tab1.auth.dispose(),
      () => tab2.auth.dispose(),
    )
    await signIn(tab1.auth, 'token-a')
    await settle()
    const loginA = tab1.announced.find((m) => m.type === 'session' && m.reason === 'login')
    tab2.deliver(loginA as never) // tab2 shares A, as tabs do
    await drain(tab2, two)
    expect(tab2.auth.actor.getSnapshot().context.session?.accessToken).toBe('token-a')

    await signIn(tab2.auth, 'token-b') // the user signs in again in tab2 (maybe as someone else)
    await settle()
    const loginB = tab2.announced.find(
      (m) => m.type === 'session' && m.reason === 'login' && m.session.accessToken === 'token-b',
    )
    const idA = tab1.auth.actor.getSnapshot().context.session?.id as string
    expect((await shared.read())?.sessions?.[idA]).toBeUndefined() // tab2 removed A's key

    one.failNext() // one read of tab1's key store fails
    tab1.deliver(loginB as never)
    await drain(tab1, one)

    expect(tab1.auth.actor.getSnapshot().context.session?.accessToken).not.toBe('token-a')
  })
})

describe('review2: a request whose key cannot be read', () => {
  // proofFor treats any rejection of keys.session() as "the key is gone": a read that failed
  // (the 3 s bound, an IndexedDB error after a first success, a custom store's hiccup) ends
  // the session with SESSION_ENDED, and the subscription then deletes the session's key from
  // the shared store, which signs every other tab out too. Only DPOP_KEY_MISSING should.
  it('a failed key read does not end the session nor delete its key', async () => {
    const api = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
    closers.push(() => api.close())
    const shared = memoryKeyStore()
    const one = controllableStore(shared)
    const tab1 = tab(one.store, [api.url])
    const tab2 = tab(shared)
    closers.push(
      () => tab1.auth.dispose(),
      () => tab2.auth.dispose(),
    )
    await signIn(tab1.auth, 'token-a')
    await settle()
    const idA = tab1.auth.actor.getSnapshot().context.session?.id as string

    // Crossing messages: a refresh of another sign-in (X) reaches tab1. The machine ignores
    // it (not this sign-in), but its key check has made X the key tab1 remembers.
    await signIn(tab2.auth, 'token-x')
    await settle()
    const x = tab2.auth.actor.getSnapshot().context.session
    tab1.deliver({ type: 'session', reason: 'refresh', session: x as never })
    await drain(tab1, one)
    expect(tab1.auth.actor.getSnapshot().context.session?.accessToken).toBe('token-a')

    one.failNext() // a transient IndexedDB failure
    await tab1.auth.fetch(`${api.url}/api/me`).catch(() => undefined)
    await settle()

    expect(tab1.auth.actor.getSnapshot().context.session?.accessToken).toBe('token-a')
    expect((await shared.read())?.sessions?.[idA]).toBeDefined()
  })
})
