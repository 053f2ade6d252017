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
import { shallowEqual, useSelector } from '@xstate/react'
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
import type { AuthClient, AuthEmitted, AuthErrorInfo } from '../index.js'

/** A snapshot of the client's statechart, as `auth.actor.getSnapshot()` returns it. */
export type AuthSnapshot = ReturnType<AuthClient['actor']['getSnapshot']>

/** The top-level state of the session statechart. */
export type AuthStatus = 'loggedOut' | 'authenticated' | 'refreshing' | 'expired'

/** The events the client emits (`refreshed`, `sessionExpired`, `loggedOut`, ...), by name. */
export type AuthEmittedType = AuthEmitted['type']

/** The payload of the emitted event named `T`. */
export type AuthEmittedEvent<T extends AuthEmittedType> = Extract<AuthEmitted, { type: T }>

const STATUSES: readonly AuthStatus[] = ['loggedOut', 'authenticated', 'refreshing', 'expired']

/**
 * The top-level state name of `snapshot`: `'authenticated'` for both `authenticated.fresh` and
 * `authenticated.stale`, `'refreshing'` for both `refreshing.requesting` and
 * `refreshing.backoff`. Handy inside {@link useAuthSelector}.
 */
export function authStatus(snapshot: AuthSnapshot): AuthStatus {
  return STATUSES.find((status) => snapshot.matches(status)) ?? 'loggedOut'
}

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
  if (!client) {
    throw new Error(
      'auth-machine/react: no AuthProvider above this component. ' +
        'Wrap the tree in <AuthProvider client={auth}>, with auth from createAuthClient().',
    )
  }
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
export interface AuthState {
  /** The top-level state: `loggedOut`, `authenticated`, `refreshing` or `expired`. */
  status: AuthStatus
  /**
   * Whether there is a session: `true` in `authenticated` and while `refreshing` (the user is
   * still signed in while the token is renewed, so the UI should not flash a login screen).
   */
  isAuthenticated: boolean
  /** Whether a refresh is running or waiting to retry (`refreshing`). */
  isRefreshing: boolean
  /**
   * Whether the last refresh failed transiently and the session was kept
   * (`authenticated.stale`); the next request tries again.
   */
  isStale: boolean
  /** Bumped on every new access token (login, refresh, session from another tab). */
  generation: number
  /** The last refresh failure, kept until the next success, login or logout. Never holds a token. */
  error: AuthErrorInfo | null
  /** When the access token expires, in epoch ms on the client's clock; `null` when unknown. */
  expiresAt: number | null
  /** Starts a session with the tokens from the app's own login call (`client.login`). */
  login: AuthClient['login']
  /** Ends the session (`client.logout`). */
  logout: AuthClient['logout']
  /** The current access token, waiting while a refresh runs; `null` when signed out. */
  getAccessToken: AuthClient['getAccessToken']
  /** Tells the client the app is back: a due refresh starts, a stale session retries. */
  wake: AuthClient['wake']
}

interface SessionView {
  status: AuthStatus
  stale: boolean
  generation: number
  error: AuthErrorInfo | null
  expiresAt: number | null
}

function sessionView(snapshot: AuthSnapshot): SessionView {
  const { context } = snapshot
  return {
    status: authStatus(snapshot),
    stale: snapshot.matches({ authenticated: 'stale' }),
    generation: context.generation,
    error: context.error,
    expiresAt: context.session?.expiresAt ?? null,
  }
}

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
  const view = useSelector(client.actor, sessionView, shallowEqual)
  const actions = useMemo(
    () => ({
      login: (tokens: Parameters<AuthClient['login']>[0]) => client.login(tokens),
      logout: () => client.logout(),
      getAccessToken: () => client.getAccessToken(),
      wake: () => client.wake(),
    }),
    [client],
  )
  return useMemo(
    () => ({
      status: view.status,
      isAuthenticated: view.status === 'authenticated' || view.status === 'refreshing',
      isRefreshing: view.status === 'refreshing',
      isStale: view.stale,
      generation: view.generation,
      error: view.error,
      expiresAt: view.expiresAt,
      ...actions,
    }),
    [view, actions],
  )
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
