import type { Session } from '../machines/types.js'

/**
 * Where the session is persisted. Every method may be sync or async; the client orders
 * writes and keeps working in memory when a method throws.
 *
 * @example A custom adapter over an async key-value store
 * ```ts
 * const storage: TokenStorage = {
 *   get: () => kv.get('session'),
 *   set: (session) => kv.put('session', session),
 *   remove: () => kv.delete('session'),
 * }
 * ```
 */
export interface TokenStorage {
  /**
   * What this adapter stores into, e.g. `'local:auth-machine.session'`. Clients with the
   * same `id` (and the same `attachTo`) coordinate across tabs by default; clients with
   * different ones never share a session. Adapters without an `id` count as one scope,
   * `'custom'`: give yours an `id` when two clients on a page use different custom stores.
   */
  readonly id?: string
  /** The stored session, or `null`. Malformed values are discarded by the client. */
  get(): Session | null | undefined | Promise<Session | null | undefined>
  set(session: Session): void | Promise<void>
  remove(): void | Promise<void>
}

/** Keeps the session in this JavaScript realm only: gone on reload. The default. */
export function memorySession(): TokenStorage {
  let current: Session | null = null
  return {
    // One scope for every tab: memory sessions still travel between tabs of the same app.
    id: 'memory',
    get: () => current,
    set: (session) => {
      current = session
    },
    remove: () => {
      current = null
    },
  }
}

/** The Web Storage API, resolved lazily so importing this module never touches `window`. */
function webStorage(pick: () => Storage, id: string, key: string): TokenStorage {
  return {
    id,
    get: () => {
      const raw = pick().getItem(key)
      if (raw === null) return null
      try {
        return JSON.parse(raw) as Session
      } catch {
        // Garbage under our key: treat as signed out rather than fail start-up.
        return null
      }
    },
    set: (session) => pick().setItem(key, JSON.stringify(session)),
    remove: () => pick().removeItem(key),
  }
}

/** Options of the Web Storage adapters. */
export interface WebStorageOptions {
  /** The storage key. Default `'auth-machine.session'`. */
  key?: string
}

/**
 * Persists the session in `localStorage`: it survives reloads and is shared by the tabs of
 * an origin. Readable by any script on the page; see the README's security notes.
 */
export function localStorageSession(options: WebStorageOptions = {}): TokenStorage {
  const key = options.key ?? 'auth-machine.session'
  return webStorage(() => globalThis.localStorage, `local:${key}`, key)
}

/** Persists the session in `sessionStorage`: it survives reloads of this tab only. */
export function sessionStorageSession(options: WebStorageOptions = {}): TokenStorage {
  const key = options.key ?? 'auth-machine.session'
  return webStorage(() => globalThis.sessionStorage, `session:${key}`, key)
}
