import { type AxiosInstance, type AxiosResponse, CanceledError } from 'axios'
import { type Actor, createActor, type InspectionEvent, type Observer } from 'xstate'
import { type AuthMachine, configureAuthMachine } from '../machines/authMachine.js'
import { DEFAULT_RETRY, type RetryPolicy } from '../machines/timing.js'
import type { Session } from '../machines/types.js'
import { type Clock, systemClock } from './clock.js'
import { AuthError, errorFromInfo, errorName } from './errors.js'
import { createTokenGate } from './gate.js'
import { installInterceptors } from './interceptors.js'
import { type AttachTo, createOriginCheck, defaultAttachTo } from './origin.js'
import { createPersistence } from './persistence.js'
import { redact } from './redact.js'
import { createRefreshActor, defaultIsRefreshRejected, type RefreshFunction } from './refresh.js'
import { sessionFromTokens, type TokenResponse } from './session.js'
import { memorySession, type TokenStorage } from './storage.js'
import {
  type CrossTab,
  type CrossTabOptions,
  createCrossTab,
  type TabMessage,
} from './tabs/crossTab.js'
import { crossTabName } from './tabs/scope.js'
import { createWaiters } from './waiters.js'

/** Options of {@link createAuthClient}. Durations are in milliseconds. */
export interface AuthClientOptions {
  /** The axios instance to protect. Its interceptors are installed here. */
  http: AxiosInstance
  /**
   * Spends the refresh token and returns the new tokens. Use a bare `axios` call or
   * `fetch`, never `http`, and pass `signal` on so an abandoned refresh is cancelled.
   */
  refresh: RefreshFunction
  /** Where the session is persisted. Default: {@link memorySession} (nothing persisted). */
  storage?: TokenStorage
  /**
   * Whether a response means "this token was not accepted". Checked on error responses and
   * on successful ones, for backends that answer 200 with `{ code: 401 }`.
   * Default: `response.status === 401`.
   */
  isAuthFailure?: (response: AxiosResponse) => boolean
  /**
   * Whether a refresh error means the server refused the refresh token (the session ends)
   * rather than a passing failure (retried). Default: HTTP 400/401/403 or `invalid_grant`.
   */
  isRefreshRejected?: (error: unknown) => boolean
  /**
   * Where the token may be sent. Default: the origin of `http.defaults.baseURL` and, in a
   * browser, the page's origin. Requests elsewhere go out without `Authorization`.
   */
  attachTo?: AttachTo
  /** How long before expiry the proactive refresh starts; at most half the lifetime. Default 60 000. */
  refreshMargin?: number
  /** How long one refresh call may take before it counts as a transient failure. Default 10 000. */
  refreshTimeout?: number
  /**
   * Retries of transient refresh failures, with exponential backoff and jitter.
   * Default `{ retries: 3, baseDelay: 500, maxDelay: 30 000 }`; `false` disables retries.
   */
  retry?: Partial<RetryPolicy> | false
  /**
   * Receives XState inspection events, as a function or an observer such as
   * `createBrowserInspector().inspect`, with every token and secret-named field replaced by
   * `[redacted]`.
   */
  inspect?: ((event: InspectionEvent) => void) | Observer<InspectionEvent>
  /** Called by `logout()` to revoke the session at the server; failures are reported, not thrown. */
  revoke?: (session: Readonly<Session>, context: { signal: AbortSignal }) => Promise<void>
  /** Receives warnings (storage failures, discarded sessions). Default: `console.warn`. */
  onWarning?: (message: string) => void
  /**
   * Coordinates the tabs of one browser profile: one refresh per expiry under a Web Lock,
   * sessions and logouts handed over a BroadcastChannel, the lock-time re-check read from
   * IndexedDB. Default: on where `window` and BroadcastChannel exist, off elsewhere (Node).
   * Each missing browser API degrades to in-tab behaviour.
   */
  crossTab?: boolean | CrossTabOptions
  /** Time source for expiry, timers and backoff. Default: the system clock. For tests. */
  clock?: Clock
}

/** A client created by {@link createAuthClient}. */
export interface AuthClient {
  /**
   * Starts a session with the tokens from the app's own login call. Throws
   * `InvalidSessionError` when they are unusable.
   */
  login(tokens: TokenResponse): void
  /**
   * Ends the session: waiting requests reject with `LoggedOutError`, a running refresh is
   * cancelled and its late result ignored, storage is cleared, then `revoke` runs.
   */
  logout(): Promise<void>
  /** The current access token, waiting while a refresh runs; `null` when signed out. */
  getAccessToken(): Promise<string | null>
  /**
   * Tells the client the app is back (network online, tab visible, process resumed): a due
   * refresh starts now, a stale session retries, a backoff wait is cut short. Browsers call
   * it on `online` and `visibilitychange` by themselves.
   */
  wake(): void
  /** The XState actor: `getSnapshot()`, `subscribe()`, and `on()` for emitted events. */
  readonly actor: Actor<AuthMachine>
  /** Resolves once the stored session (if any) has been restored. */
  readonly ready: Promise<void>
  /** Ejects the interceptors, stops timers and the actor, rejects anything still waiting. */
  dispose(): void
}

/**
 * An actor ref whose snapshots come out redacted: inspectors such as Stately's read
 * `actorRef.getSnapshot()` themselves, and the refresh actor's input holds the session.
 */
function redactRef<T extends object>(ref: T): T {
  return new Proxy(ref, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'getSnapshot' || property === 'getPersistedSnapshot') {
        return () => redact(value.call(target))
      }
      return value.bind(target)
    },
  })
}

function redactInspection(event: InspectionEvent): InspectionEvent {
  // Cast back: redact keeps the shape, replacing only secret-named fields.
  const copy = redact(event as unknown as Record<string, unknown>) as unknown as InspectionEvent
  return {
    ...copy,
    actorRef: redactRef(copy.actorRef),
    ...('sourceRef' in copy && copy.sourceRef ? { sourceRef: redactRef(copy.sourceRef) } : {}),
  } as InspectionEvent
}

/** In a browser, coming back online or to the foreground is the moment to catch up. */
function listenForWake(wake: () => void): () => void {
  if (typeof window === 'undefined' || typeof document === 'undefined') return () => undefined
  const onVisible = () => {
    if (document.visibilityState === 'visible') wake()
  }
  window.addEventListener('online', wake)
  document.addEventListener('visibilitychange', onVisible)
  return () => {
    window.removeEventListener('online', wake)
    document.removeEventListener('visibilitychange', onVisible)
  }
}

function crossTabOptions(option: AuthClientOptions['crossTab']): CrossTabOptions | undefined {
  const inBrowser = typeof window !== 'undefined' && typeof BroadcastChannel !== 'undefined'
  if (option === undefined) return inBrowser ? {} : undefined
  if (option === false) return undefined
  return option === true ? {} : option
}

function retryPolicy(retry: AuthClientOptions['retry']): RetryPolicy {
  if (retry === false) return { ...DEFAULT_RETRY, retries: 0 }
  return { ...DEFAULT_RETRY, ...retry }
}

/**
 * Protects an axios instance: attaches the access token, refreshes it once for every
 * concurrent request, replays what waited, and reports the end of a session as typed errors.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const { http } = options
  const clock = options.clock ?? systemClock
  const now = () => clock.now()
  const warn = options.onWarning ?? ((message: string) => console.warn(`auth-machine: ${message}`))

  // Assigned right after the actor exists: messages and refreshes only arrive after start.
  let onTabMessage: (message: TabMessage) => void = () => undefined
  const tabOptions = crossTabOptions(options.crossTab)
  const attachTo = options.attachTo ?? defaultAttachTo(http.defaults.baseURL)
  const storage = options.storage ?? memorySession()
  const tabs: CrossTab | undefined = tabOptions
    ? createCrossTab(
        { ...tabOptions, name: crossTabName(tabOptions.name, attachTo, storage) },
        (message) => onTabMessage(message),
      )
    : undefined

  const refreshActor = createRefreshActor(
    options.refresh,
    options.isRefreshRejected ?? defaultIsRefreshRejected,
    now,
    tabs &&
      ((input, signal, run) =>
        // A logout elsewhere seen inside the lock ends the session here as its message would.
        tabs.refresh(input.session, now(), signal, run, () => onTabMessage({ type: 'ended' }))),
  )
  const machine = configureAuthMachine({
    now,
    random: Math.random,
    ...(options.refreshMargin === undefined ? {} : { refreshMargin: options.refreshMargin }),
    ...(options.refreshTimeout === undefined ? {} : { refreshTimeout: options.refreshTimeout }),
    retry: retryPolicy(options.retry),
  }).provide({ actors: { refreshSession: refreshActor.logic } })
  const inspector = options.inspect
  const inspect = typeof inspector === 'function' ? inspector : inspector?.next?.bind(inspector)
  const actor = createActor(machine, {
    clock,
    ...(inspect ? { inspect: (event: InspectionEvent) => inspect(redactInspection(event)) } : {}),
  })

  onTabMessage = (message) => {
    if (message.type === 'ended') return actor.send({ type: 'SESSION_ENDED' })
    const snapshot = actor.getSnapshot()
    if (message.type === 'hello') {
      const { session } = snapshot.context
      if (session) tabs?.tell({ type: 'session', reason: 'login', session })
      return
    }
    // A logged-out tab follows only a login; a refresh message there is a late straggler.
    const signedOut = snapshot.matches('loggedOut') || snapshot.matches('expired')
    if (!signedOut) return actor.send({ type: 'SESSION_SYNCED', session: message.session })
    if (message.reason === 'login' || snapshot.matches('expired')) {
      actor.send({ type: 'LOGIN', session: message.session })
    }
  }

  const waiters = createWaiters()
  actor.on('requestsReleased', ({ ids }) => waiters.resolve(ids))
  actor.on('requestsRejected', ({ ids, error }) =>
    waiters.reject(ids, () =>
      error.code === 'CANCELED' ? new CanceledError() : errorFromInfo(error),
    ),
  )

  const persistence = createPersistence(storage, warn)
  const subscription = actor.subscribe((snapshot) => {
    persistence.save(snapshot.context.session)
    // A call still on the wire when the machine gave up (or the session ended) is cancelled.
    if (!snapshot.matches('refreshing')) refreshActor.abandon()
  })
  actor.start()

  const ready = persistence.restore().then((session) => {
    // A login that happened while storage was read wins over the stored session.
    if (!actor.getSnapshot().matches('loggedOut')) return
    // Nothing stored (e.g. memory storage in a new tab): open tabs may hand theirs over.
    if (!session) return tabs?.tell({ type: 'hello' })
    persistence.adopt(session)
    actor.send({ type: 'LOGIN', session })
  })

  const announce = async (message: TabMessage) => {
    try {
      await tabs?.announce(message, now())
    } catch (error) {
      warn(`could not share the session with other tabs (${errorName(error)}).`)
    }
  }

  const wake = () => actor.send({ type: 'WAKE' })
  const stopWakeListeners = listenForWake(wake)

  const gate = createTokenGate(actor, waiters, now)
  const eject = installInterceptors({
    http,
    gate,
    ready,
    mayAttach: createOriginCheck(attachTo),
    isAuthFailure: options.isAuthFailure ?? ((response) => response.status === 401),
  })

  return {
    actor,
    ready,
    login(tokens) {
      const session = sessionFromTokens(tokens, now())
      actor.send({ type: 'LOGIN', session })
      announce({ type: 'session', reason: 'login', session })
    },
    async logout() {
      const { session } = actor.getSnapshot().context
      actor.send({ type: 'LOGOUT' })
      await Promise.all([persistence.flushed(), announce({ type: 'ended' })])
      if (!session || !options.revoke) return
      try {
        await options.revoke({ ...session }, { signal: AbortSignal.timeout(10_000) })
      } catch (error) {
        warn(`revoke() failed (${errorName(error)}).`)
      }
    },
    async getAccessToken() {
      await ready
      try {
        const grant = await gate.acquire({ method: 'TOKEN', url: 'getAccessToken()' })
        return grant?.token ?? null
      } catch (error) {
        // Signed out while waiting is still "signed out"; transient failures are real errors.
        if (
          error instanceof AuthError &&
          (error.code === 'SESSION_EXPIRED' || error.code === 'LOGGED_OUT')
        ) {
          return null
        }
        throw error
      }
    },
    wake,
    dispose() {
      refreshActor.abandon()
      tabs?.close()
      eject()
      stopWakeListeners()
      subscription.unsubscribe()
      actor.stop()
      waiters.rejectAll(() => new AuthError('The auth client was disposed.', 'DISPOSED'))
    },
  }
}
