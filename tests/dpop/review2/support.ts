/** Shared bits of the review2 tests (not a test file). */
import type { Coordinator, CoordinatorMessage } from '../../../src/coordination/types.js'
import { type DpopKeyRecord, type DpopKeyStore, memoryKeyStore } from '../../../src/dpop/keys.js'
import { createAuthClient as createFetchClient } from '../../../src/fetch.js'
import { noRefresh } from '../review/support.js'

/** A key store around `inner` whose next read can be held (`hold`) or failed (`failNext`). */
export function controllableStore(inner: DpopKeyStore = memoryKeyStore()) {
  let gate: Promise<void> | undefined
  let failures = 0
  let reads = 0
  const watchers: Array<() => void> = []
  const store: DpopKeyStore = {
    async read(): Promise<DpopKeyRecord | undefined> {
      reads += 1
      for (const watcher of watchers.splice(0)) watcher()
      const g = gate
      gate = undefined
      if (g) await g
      if (failures > 0) {
        failures -= 1
        throw Object.assign(new Error('IndexedDB did not answer in time.'), { name: 'Error' })
      }
      return inner.read()
    },
    update: (change) => inner.update(change),
  }
  return {
    store,
    inner,
    reads: () => reads,
    /** Resolves when the next read starts. */
    nextRead: () => new Promise<void>((resolve) => watchers.push(resolve)),
    /** The next read waits until the returned function is called. */
    hold(): () => void {
      let open: () => void = () => undefined
      gate = new Promise<void>((resolve) => {
        open = resolve
      })
      return open
    },
    failNext(n = 1) {
      failures = n
    },
  }
}

/** A coordinator like the tabs' one, seen from the client: it hands out `deliver` and records announcements. */
export function tabCoordinator(keys: DpopKeyStore) {
  const announced: CoordinatorMessage[] = []
  let deliver: ((message: CoordinatorMessage) => void) | undefined
  const coordinator: Coordinator = {
    open: (context) => {
      deliver = context.deliver
      return {
        restore: async (stored) => stored,
        announce: async (message) => {
          announced.push(message)
        },
        refresh: (_current, _startedAt, _signal, refresh) => refresh(),
        close: () => undefined,
        dpopKeys: keys,
      }
    },
  }
  return {
    coordinator,
    announced,
    deliver: (message: CoordinatorMessage) => {
      if (!deliver) throw new Error('not opened')
      deliver(message)
    },
  }
}

/** A "tab": a fetch client with DPoP over a shared key store, and its coordinator. */
export function tab(keys: DpopKeyStore, attachTo: string[] = []) {
  const coordination = tabCoordinator(keys)
  const auth = createFetchClient({
    refresh: noRefresh,
    dpop: true,
    attachTo,
    coordinator: coordination.coordinator,
    onWarning: () => undefined,
  })
  return { auth, ...coordination }
}

/** Signs `auth` in with an opaque DPoP token after making its sign-in key. */
export async function signIn(
  auth: { dpop?: { thumbprint(): Promise<string> } | undefined; login(t: object): void },
  token: string,
) {
  await auth.dpop?.thumbprint()
  auth.login({
    access_token: token,
    token_type: 'DPoP',
    expires_in: 3600,
    refresh_token: `r-${token}`,
  })
}

/** Lets queued promise callbacks and one macrotask turn run (no timing involved). */
export const settle = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve))
}

/**
 * Waits until every message delivered to `t` so far has been handled: `deliver` checks
 * messages one after another, so a last message with a session nobody has a key for is
 * read only once all before it were taken (or dropped), and is then dropped itself.
 */
export async function drain(
  t: { deliver(message: never): void },
  keys: { nextRead(): Promise<void> },
) {
  const read = keys.nextRead()
  t.deliver({
    type: 'session',
    reason: 'refresh',
    session: {
      id: 'marker-without-key',
      accessToken: 'marker',
      refreshToken: 'marker',
      expiresAt: 0,
    },
  } as never)
  await read
  await settle()
}

/** A tiny in-memory IndexedDB: its first `failFirstOpens` opens fail; `failGets` makes reads fail. */
export function fakeIndexedDB(failFirstOpens: number) {
  const data = new Map<string, unknown>()
  let failures = failFirstOpens
  const control = { failGets: false }
  const req = <T>(run: () => T) => {
    const r: {
      result?: T
      error?: unknown
      onsuccess?: () => void
      onerror?: () => void
    } = {}
    setImmediate(() => {
      try {
        r.result = run()
        r.onsuccess?.()
      } catch (error) {
        r.error = error
        r.onerror?.()
      }
    })
    return r
  }
  const db = {
    transaction: () => ({
      objectStore: () => ({
        get: (key: string) =>
          req(() => {
            if (control.failGets) throw new DOMException('blocked', 'TimeoutError')
            return structuredClone(data.get(key))
          }),
        put: (value: unknown, key: string) => req(() => void data.set(key, value)),
        delete: (key: string) => req(() => void data.delete(key)),
      }),
    }),
    close: () => undefined,
    createObjectStore: () => undefined,
  }
  return {
    data,
    control,
    factory: {
      open: () => {
        const r: Record<string, unknown> & {
          onsuccess?: () => void
          onerror?: () => void
        } = {}
        setImmediate(() => {
          if (failures > 0) {
            failures -= 1
            r.error = new DOMException(
              'The operation failed for reasons unrelated to the database itself.',
              'UnknownError',
            )
            r.onerror?.()
            return
          }
          r.result = db
          r.onsuccess?.()
        })
        return r
      },
    },
  }
}
