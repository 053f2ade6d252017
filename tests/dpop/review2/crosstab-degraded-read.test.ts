/**
 * review2: crossTab.refresh (src/coordination/tabs/crossTab.ts) now takes a failed read of
 * the shared record inside the lock as "no record" and refreshes anyway. That read is the
 * only thing that stops a tab which queued on the lock behind another tab's refresh from
 * presenting the refresh token the other tab has just spent (rotation): the BroadcastChannel
 * news may arrive later, and the refresh call runs with the session the tab started with.
 * A read that fails (IndexedDB blocked past the 3 s bound by a versionchange/delete, an
 * IndexedDB error) now means a reused refresh token, which revokes the grant at servers with
 * reuse detection: invariant 11 ("a refresh token the server has answered for is never
 * presented again"). Before the fix the refresh failed transiently instead.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Session } from '../../../machines/types.js'
import { createCrossTab } from '../../../src/coordination/tabs/crossTab.js'
import { fakeIndexedDB } from './support.js'

const g = globalThis as { indexedDB?: unknown; navigator?: unknown }
const savedIdb = g.indexedDB
const savedNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
afterEach(() => {
  g.indexedDB = savedIdb
  if (savedNavigator) Object.defineProperty(globalThis, 'navigator', savedNavigator)
  else delete g.navigator
})

/** Web Locks: one holder at a time per name, the others wait in order. */
function serialLocks() {
  const tails = new Map<string, Promise<unknown>>()
  return {
    request(name: string, _options: unknown, run: () => Promise<unknown>) {
      const previous = tails.get(name) ?? Promise.resolve()
      const result = previous.then(run, run)
      tails.set(
        name,
        result.catch(() => undefined),
      )
      return result
    },
  }
}

describe('review2: a shared record that cannot be read inside the lock', () => {
  it('does not make the tab queued behind a refresh present the spent refresh token', async () => {
    const idb = fakeIndexedDB(0)
    g.indexedDB = idb.factory
    Object.defineProperty(globalThis, 'navigator', {
      value: { locks: serialLocks() },
      configurable: true,
    })
    const tab1 = createCrossTab({ name: 'r2' }, () => undefined)
    const tab2 = createCrossTab({ name: 'r2' }, () => undefined)

    const s1: Session = { id: 's', accessToken: 'a1', refreshToken: 'r1', obtainedAt: 1_000 }
    const presented: string[] = []
    const refreshFrom = (session: Session, next: Session) => async () => {
      presented.push(session.refreshToken as string)
      return next
    }
    const s2: Session = { id: 's', accessToken: 'a2', refreshToken: 'r2', obtainedAt: 2_000 }
    const s2b: Session = { id: 's', accessToken: 'a2b', refreshToken: 'r2b', obtainedAt: 2_000 }

    // Both tabs find the token due at once; tab1 takes the lock first.
    const signal = new AbortController().signal
    const first = tab1.refresh(s1, 1_500, signal, refreshFrom(s1, s2), () => undefined)
    await first
    expect(idb.data.size).toBe(1) // tab1 wrote the new session for the others

    // The database stops answering reads (e.g. blocked behind another tab's versionchange).
    idb.control.failGets = true
    const second = tab2.refresh(s1, 1_500, signal, refreshFrom(s1, s2b), () => undefined)
    await second.catch(() => undefined)

    expect(presented).toEqual(['r1']) // r1 was spent by tab1: never presented again
    tab1.close()
    tab2.close()
  })
})
