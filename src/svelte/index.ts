/**
 * Svelte bindings for auth-machine (Svelte 4 and 5), built on `@xstate/svelte`: the session
 * as readable stores. The client is created outside Svelte (once, at module level) and either
 * passed to {@link useAuth} directly or put in context with {@link setAuthClient} by a root
 * component, for its descendants to find.
 *
 * ```svelte
 * <script lang="ts">
 *   import { useAuth } from 'auth-machine/svelte'
 *   import { auth } from './auth'
 *   const { isAuthenticated, logout } = useAuth(auth)
 * </script>
 *
 * {#if $isAuthenticated}<button onclick={() => logout()}>Sign out</button>{/if}
 * ```
 *
 * No store ever holds a token: the access token is only handed out by `getAccessToken()`, so
 * it does not end up in devtools or rendered markup by accident.
 * @packageDocumentation
 */
import { useSelector } from '@xstate/svelte'
import { getContext, onDestroy, setContext } from 'svelte'
import { derived, type Readable } from 'svelte/store'
import {
  type AuthActions,
  type AuthEmittedEvent,
  type AuthEmittedType,
  type AuthFields,
  type AuthSnapshot,
  authActions,
  authFields,
  noClient,
  sameFields,
} from '../bindings/session.js'
import type { AuthClient } from '../index.js'

export type * from '../bindings/session.js'
export { authStatus } from '../bindings/session.js'

const KEY = Symbol('auth-machine client')

/**
 * Puts `client` in context for the calling component's descendants, so they can call the
 * helpers below without passing it. Call it during component initialisation.
 */
export function setAuthClient(client: AuthClient): void {
  setContext(KEY, client)
}

/**
 * The client an ancestor put in context with {@link setAuthClient}. Throws when there is
 * none. Call it during component initialisation.
 */
export function getAuthClient(): AuthClient {
  let client: AuthClient | undefined
  try {
    client = getContext(KEY)
  } catch {
    // Outside component initialisation Svelte refuses any context read; say what works there.
  }
  if (!client) {
    throw noClient(
      'svelte',
      'Call setAuthClient(auth) in a parent component, or pass auth as the last argument',
    )
  }
  return client
}

/**
 * A store of a value derived from the session's snapshot. It notifies only when the selected
 * value changes (compared with `compare`, default `===`), not on every snapshot: a store
 * selecting `generation` stays quiet while requests join the queue. Like every store, it
 * follows the client only while it has subscribers, so it may be created at module level.
 *
 * @example
 * ```ts
 * const queued = useAuthSelector((snapshot) => snapshot.context.queue.length, undefined, auth)
 * ```
 */
export function useAuthSelector<T>(
  selector: (snapshot: AuthSnapshot) => T,
  compare?: (a: T, b: T) => boolean,
  client: AuthClient = getAuthClient(),
): Readable<T> {
  return useSelector(client.actor, selector, compare)
}

/** What {@link useAuth} returns: each field of the session as a readable store, and the actions. */
export type AuthStores = { readonly [K in keyof AuthFields]: Readable<AuthFields[K]> } & AuthActions

/**
 * The session's state, as stores that may be destructured (`$status` in markup), and the
 * client's actions. A store notifies only when its own value changes: requests joining or
 * leaving the queue notify none. Without `client`, the one in context is used.
 */
export function useAuth(client: AuthClient = getAuthClient()): AuthStores {
  // One source for every field, so a view combining several (`derived([status, error])`)
  // updates once per change and never sees a mix of old and new fields.
  const fields = useSelector(client.actor, authFields, sameFields)
  const stores = {} as Record<keyof AuthFields, Readable<unknown>>
  for (const key of Object.keys(authFields(client.actor.getSnapshot())) as (keyof AuthFields)[]) {
    // Compared with `===` here: Svelte's own check re-notifies an unchanged `error` object.
    // `last` starts as an object no field can hold, so the first run always sets.
    let last: unknown = {}
    stores[key] = derived(fields, (value, set) => {
      if (value[key] === last) return
      last = value[key]
      set(last)
    })
  }
  return { ...(stores as AuthStores), ...authActions(client) }
}

/**
 * Calls `handler` for every event of `type` the client emits, until the calling component is
 * destroyed, e.g. `useAuthEvent('sessionExpired', () => goto('/login'))`. Call it during
 * component initialisation, also when passing `client`; elsewhere, use
 * `auth.actor.on(type, handler)`, which returns its own subscription.
 */
export function useAuthEvent<T extends AuthEmittedType>(
  type: T,
  handler: (event: AuthEmittedEvent<T>) => void,
  client: AuthClient = getAuthClient(),
): void {
  let subscription: { unsubscribe(): void } | undefined
  // Registered first: outside a component this throws before anything is subscribed.
  onDestroy(() => subscription?.unsubscribe())
  subscription = client.actor.on(type, (event) => handler(event as AuthEmittedEvent<T>))
}
