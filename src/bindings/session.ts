/**
 * What every framework binding shows of the session, computed once here so React, Vue and
 * Svelte agree on each field's meaning. Nothing here holds a token: the fields are read from
 * the snapshot one by one, never spread from it.
 * @packageDocumentation
 */
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
 * `refreshing.backoff`. Handy inside a binding's `useAuthSelector`.
 */
export function authStatus(snapshot: AuthSnapshot): AuthStatus {
  return STATUSES.find((status) => snapshot.matches(status)) ?? 'loggedOut'
}

/** The session as a UI sees it. Each binding hands these out in its framework's own form. */
export interface AuthFields {
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
}

/** The client's actions, as every binding hands them out. */
export interface AuthActions {
  /** Starts a session with the tokens from the app's own login call (`client.login`). */
  login: AuthClient['login']
  /** Ends the session (`client.logout`). */
  logout: AuthClient['logout']
  /** The current access token, waiting while a refresh runs; `null` when signed out. */
  getAccessToken: AuthClient['getAccessToken']
  /** Tells the client the app is back: a due refresh starts, a stale session retries. */
  wake: AuthClient['wake']
}

/** The fields of `snapshot`. Compare results with {@link sameFields}: each call makes a new object. */
export function authFields(snapshot: AuthSnapshot): AuthFields {
  const { context } = snapshot
  const status = authStatus(snapshot)
  return {
    status,
    isAuthenticated: status === 'authenticated' || status === 'refreshing',
    isRefreshing: status === 'refreshing',
    isStale: snapshot.matches({ authenticated: 'stale' }),
    generation: context.generation,
    error: context.error,
    expiresAt: context.session?.expiresAt ?? null,
  }
}

/**
 * Whether two results of {@link authFields} show the same thing, so queue traffic (a new
 * snapshot with the same fields) updates no component.
 */
export function sameFields(a: AuthFields, b: AuthFields): boolean {
  for (const key in a) {
    if (a[key as keyof AuthFields] !== b[key as keyof AuthFields]) return false
  }
  return true
}

/** The actions of `client`, bound so they can be destructured and passed around. */
export function authActions(client: AuthClient): AuthActions {
  return {
    login: (tokens) => client.login(tokens),
    logout: () => client.logout(),
    getAccessToken: () => client.getAccessToken(),
    wake: () => client.wake(),
  }
}

/** The error a binding throws when a component asks for the client and none was provided. */
export function noClient(binding: string, remedy: string): Error {
  return new Error(
    `auth-machine/${binding}: no auth client provided to this component. ${remedy}, with auth from createAuthClient().`,
  )
}
