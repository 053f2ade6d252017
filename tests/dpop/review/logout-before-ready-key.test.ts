/**
 * FINDING (low): logout() before the stored session was restored (the documented "logout
 * wins over a restore in progress") clears and revokes the stored session, but its DPoP key
 * stays in the shared key store (IndexedDB for tabs), still bound to the ended session: the
 * key is deleted only by the actor subscription when a session *in the machine* changes id,
 * and this one never entered the machine. The next sign-in then picks that old key up
 * (keys.signIn() takes any stored key), so "a new key for each sign-in, deleted when its
 * session ends" does not hold, and a key outlives the session it was made for.
 *
 * The shared key store is modelled with the public Coordinator interface's `dpopKeys`
 * (what tabsCoordinator() fills with IndexedDB).
 */
import { afterEach, expect, it } from 'vitest'
import type { Session } from '../../../machines/types.js'
import { memoryKeyStore } from '../../../src/dpop/keys.js'
import { createAuthClient as createFetchClient } from '../../../src/fetch.js'
import type { TokenStorage } from '../../../src/index.js'
import { createTestAuthServer, type TestAuthServer } from '../../../src/testing/index.js'
import { dpopSignInAt } from '../../helpers.js'
import { keyStoreCoordinator, noRefresh } from './support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

it("logout() before ready deletes the stored session's DPoP key; the next sign-in gets a new key", async () => {
  const server: TestAuthServer = await createTestAuthServer({ dpop: {} })
  closers.push(() => server.close())
  const keys = memoryKeyStore()
  let stored: Session | null = null
  let written: () => void = () => undefined
  const wasWritten = new Promise<void>((resolve) => {
    written = resolve
  })
  const storage: TokenStorage = {
    id: 'review-logout-before-ready',
    get: () => stored,
    set: (session) => {
      stored = session
      written()
    },
    remove: () => {
      stored = null
    },
  }
  const options = {
    dpop: true,
    storage,
    coordinator: keyStoreCoordinator(keys),
    attachTo: [server.url],
    refresh: noRefresh,
  } as const

  const first = createFetchClient(options)
  first.login(await dpopSignInAt(server.url, first.dpop))
  await wasWritten
  const oldJkt = Object.values((await keys.read())?.sessions ?? {})[0]?.jkt
  first.dispose() // a reload: session and key stay stored
  expect(Object.values((await keys.read())?.sessions ?? {})[0]?.sessionId).toBe(
    (stored as Session | null)?.id,
  )

  const second = createFetchClient(options)
  closers.push(() => second.dispose())
  await second.logout() // before the stored session was restored
  await second.ready
  expect(stored).toBeNull() // the session is gone…
  expect((await keys.read())?.sessions).toBeUndefined() // …and so should its key be
  expect(await second.dpop?.thumbprint()).not.toBe(oldJkt)
})
