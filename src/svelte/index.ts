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
import type { Readable } from 'svelte/store'
import {
  type AuthActions,
  type AuthEmittedEvent,
  type AuthEmittedType,
  type AuthFields,
  type AuthSnapshot,
  authActions,
  authFields,
  noClient,
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
  const client = getContext<AuthClient | undefined>(KEY)
  if (!client) throw noClient('svelte', 'Call setAuthClient(auth) in a parent component')
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
  const stores = {} as Record<keyof AuthFields, Readable<unknown>>
  // One selector per field, compared with `===`: a store's own value decides when it
  // notifies (Svelte's own `derived` would re-notify an unchanged `error` object).
  for (const key of Object.keys(authFields(client.actor.getSnapshot())) as (keyof AuthFields)[]) {
    stores[key] = useSelector(client.actor, (snapshot) => authFields(snapshot)[key])
  }
  return { ...(stores as AuthStores), ...authActions(client) }
}

/**
 * Calls `handler` for every event of `type` the client emits, until the calling component is
 * destroyed, e.g. `useAuthEvent('sessionExpired', () => goto('/login'))`. Call it during
 * component initialisation; elsewhere, use `auth.actor.on(type, handler)`.
 */
export function useAuthEvent<T extends AuthEmittedType>(
  type: T,
  handler: (event: AuthEmittedEvent<T>) => void,
  client: AuthClient = getAuthClient(),
): void {
  const subscription = client.actor.on(type, (event) => {
    handler(event as AuthEmittedEvent<T>)
  })
  onDestroy(() => subscription.unsubscribe())
}
