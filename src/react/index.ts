/**
 * React bindings for auth-machine, built on `@xstate/react`. The client is created outside
 * React (once, at module level) and handed to {@link AuthProvider}; components read the
 * session with {@link useAuth} or, for fine-grained subscriptions, {@link useAuthSelector}.
 *
 * ```tsx
 * const auth = createAuthClient({ http, refresh })
 *
 * createRoot(el).render(
 *   <AuthProvider client={auth}>
 *     <App />
 *   </AuthProvider>,
 * )
 *
 * function Header() {
 *   const { status, isAuthenticated, logout } = useAuth()
 *   return isAuthenticated ? <button onClick={logout}>Sign out</button> : <LoginLink />
 * }
 * ```
 *
 * No hook ever returns a token as state: the access token is only handed out by
 * `getAccessToken()`, so it does not end up in React DevTools or rendered markup by accident.
 * @packageDocumentation
 */
import { useSelector } from '@xstate/react'
import {
  createContext,
  createElement,
  type ReactElement,
  type ReactNode,
  useContext,
  useEffect,
  useMemo,
  useRef,
} from 'react'
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

const AuthClientContext = createContext<AuthClient | null>(null)
AuthClientContext.displayName = 'AuthClient'

/** Props of {@link AuthProvider}. */
export interface AuthProviderProps {
  /**
   * The client from `createAuthClient`, created outside React. The provider neither starts
   * nor disposes it: it lives as long as the code that created it wants.
   */
  client: AuthClient
  /** The components that may call the hooks. */
  children?: ReactNode
}

/**
 * Makes `client` available to {@link useAuth}, {@link useAuthSelector},
 * {@link useAuthEvent} and {@link useAuthClient} below it.
 */
export function AuthProvider({ client, children }: AuthProviderProps): ReactElement {
  return createElement(AuthClientContext.Provider, { value: client }, children)
}

/**
 * The client given to the nearest {@link AuthProvider}. Throws when there is none, since a
 * component that needs the session cannot do anything sensible without it.
 */
export function useAuthClient(): AuthClient {
  const client = useContext(AuthClientContext)
  if (!client) throw noClient('react', 'Wrap the tree in <AuthProvider client={auth}>')
  return client
}

/**
 * Subscribes to a value derived from the session's snapshot. The component re-renders only
 * when the selected value changes (compared with `compare`, default `===`), not on every
 * snapshot: a component selecting `generation` does not re-render while requests join the
 * queue.
 *
 * Return primitives, or pass `shallowEqual` (from `@xstate/react`) when returning a new
 * object each time.
 *
 * @example
 * ```ts
 * const queued = useAuthSelector((snapshot) => snapshot.context.queue.length)
 * const status = useAuthSelector(authStatus)
 * ```
 */
export function useAuthSelector<T>(
  selector: (snapshot: AuthSnapshot) => T,
  compare?: (a: T, b: T) => boolean,
): T {
  const client = useAuthClient()
  return useSelector(client.actor, selector, compare)
}

/** What {@link useAuth} returns: the session's state and the client's actions. */
export interface AuthState extends AuthFields, AuthActions {}

/**
 * The session's state and the client's actions. Re-renders when the status, generation,
 * error or expiry change, not when requests join or leave the queue (use
 * {@link useAuthSelector} for that).
 *
 * @example
 * ```tsx
 * const { status, isAuthenticated, logout } = useAuth()
 * ```
 */
export function useAuth(): AuthState {
  const client = useAuthClient()
  const fields = useSelector(client.actor, authFields, sameFields)
  const actions = useMemo(() => authActions(client), [client])
  return useMemo(() => ({ ...fields, ...actions }), [fields, actions])
}

/**
 * Calls `handler` for every event of `type` the client emits, for as long as the component
 * is mounted, e.g. `useAuthEvent('sessionExpired', () => navigate('/login'))`. The latest
 * `handler` is always called; changing it does not resubscribe.
 */
export function useAuthEvent<T extends AuthEmittedType>(
  type: T,
  handler: (event: AuthEmittedEvent<T>) => void,
): void {
  const client = useAuthClient()
  const latest = useRef(handler)
  useEffect(() => {
    latest.current = handler
  })
  useEffect(() => {
    const subscription = client.actor.on(type, (event) => {
      latest.current(event as AuthEmittedEvent<T>)
    })
    return () => subscription.unsubscribe()
  }, [client, type])
}
