import type { AxiosInstance, AxiosResponse } from 'axios'
import {
  type Actor,
  assertEvent,
  assign,
  createActor,
  type InspectionEvent,
  type Observer,
} from 'xstate'
import { type AuthMachine, configureAuthMachine, DEFAULT_TIMING } from '../machines/authMachine.js'
import { DEFAULT_RETRY, type RetryPolicy } from '../machines/timing.js'
import type { Session } from '../machines/types.js'
import { type Clock, systemClock } from './clock.js'
import { createCoordinator } from './coordinate.js'
import { AuthError, errorName } from './errors.js'
import { createInspection } from './inspection.js'
import { type AttachTo, createOriginCheck, defaultAttachTo } from './origin.js'
import { createPersistence } from './persistence.js'
import { createProcessClock } from './processClock.js'
import { createRequestQueue } from './queue.js'
import { createRefresher, defaultIsRefreshRejected, type RefreshFunction } from './refresh.js'
import { sessionFromTokens, type TokenResponse } from './session.js'
import { memorySession, type TokenStorage } from './storage.js'
import {
  type CrossTab,
  type CrossTabOptions,
  createCrossTab,
  type TabMessage,
} from './tabs/crossTab.js'
import { crossTabName, releaseCrossTabName } from './tabs/scope.js'
import { attachAxios } from './transports/axios.js'
import { listenForWake } from './wake.js'

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
  /**
   * How long one refresh attempt waits for its call before it counts as a transient failure.
   * The call itself stays on the wire: a retry joins it until it has been out for two
   * `refreshTimeout`s, and only then sends a new one. Default 5 000.
   */
  refreshTimeout?: number
  /**
   * Retries of transient refresh failures, with exponential backoff and jitter.
   * Default `{ retries: 3, baseDelay: 500, maxDelay: 30 000 }`; `false` disables retries.
   */
  retry?: Partial<RetryPolicy> | false
  /**
   * Receives XState inspection events, as a function or an observer such as
   * `createBrowserInspector().inspect`. They are projections that hold no token: sessions
   * show `[redacted]`, and actor refs are stand-ins with no path to the real actors.
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
   * cancelled and its late result ignored, storage is cleared, then `revoke` runs. Called
   * before `ready`, it wins over the stored session, which is cleared and revoked too.
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
  /**
   * Resolves once the stored session (if any) has been restored, or once `login()` or
   * `logout()` made it moot. Reading storage is bounded (3 s); a storage that never answers
   * is reported through `onWarning` and the client goes on without it.
   */
  readonly ready: Promise<void>
  /**
   * Ejects the interceptors, stops timers and the actor, and settles everything still
   * waiting, requests on the wire included, with `AuthError` code `DISPOSED`.
   */
  dispose(): void
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
 * A composition root: each concern lives in the module named for it.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const { http } = options
  const baseClock = options.clock ?? systemClock
  const clock = createProcessClock(baseClock)
  const now = () => clock.now()
  const warn = options.onWarning ?? ((message: string) => console.warn(`auth-machine: ${message}`))
  const refreshTimeout = options.refreshTimeout ?? DEFAULT_TIMING.refreshTimeout
  const attachTo = options.attachTo ?? defaultAttachTo(http.defaults.baseURL)
  if (options.attachTo === undefined && Array.isArray(attachTo) && attachTo.length === 0) {
    warn(
      'no origin may receive the token: pass `attachTo`, or give the axios instance an absolute `baseURL`.',
    )
  }
  const storage = options.storage ?? memorySession()

  const persistence = createPersistence(storage, warn, baseClock)

  // Late-bound: tab messages and refresh calls only happen once the actor runs.
  let actor: Actor<AuthMachine>
  const send = (event: Parameters<Actor<AuthMachine>['send']>[0]) => actor.send(event)

  const tabOptions = crossTabOptions(options.crossTab)
  const tabName = tabOptions && crossTabName(tabOptions.name, attachTo, storage)
  const tabs: CrossTab | undefined = tabName
    ? createCrossTab({ name: tabName }, (message) => onTabMessage(message))
    : undefined

  const refresher = createRefresher({
    refresh: options.refresh,
    isRefreshRejected: options.isRefreshRejected ?? defaultIsRefreshRejected,
    now,
    patience: 2 * refreshTimeout,
    sessionOf: (generation) => {
      const { context } = actor.getSnapshot()
      return context.generation === generation ? context.session : null
    },
    answeredLate: (session, generation) => send({ type: 'REFRESH_ANSWERED', session, generation }),
    coordinate: createCoordinator({
      reread: () => persistence.reread(),
      tabs,
      now,
      // A logout elsewhere seen inside the lock ends the session here as its message would.
      ended: () => send({ type: 'SESSION_ENDED' }),
      replaced: (session) => send({ type: 'LOGIN', session }),
      // `memory` names a kind of storage, not one store: each memory adapter is its own.
      storageKey: storage.id && storage.id !== 'memory' ? storage.id : storage,
      patience: 2 * refreshTimeout,
    }),
  })

  const machine = configureAuthMachine({
    now,
    random: Math.random,
    ...(options.refreshMargin === undefined ? {} : { refreshMargin: options.refreshMargin }),
    refreshTimeout,
    retry: retryPolicy(options.retry),
  }).provide({
    actors: { refreshSession: refresher.logic },
    actions: {
      abandonRefresh: () => refresher.abandon(),
      holdProcess: () => clock.hold(),
      releaseProcess: () => clock.release(),
      // Appended in place: copying the queue per request made a burst O(N²). The live actor
      // is the array's only writer; an empty queue is never shared, so it starts a new one.
      enqueueRequest: assign(({ context, event }) => {
        assertEvent(event, ['TOKEN_NEEDED', 'TOKEN_REJECTED'])
        if (context.queue.length === 0) return { queue: [event.request] }
        context.queue.push(event.request)
        return { queue: context.queue }
      }),
    },
  })
  const inspect = createInspection(options.inspect)
  actor = createActor(machine, { clock, ...(inspect ? { inspect } : {}) })

  // Another tab's news, as machine events: the statechart decides what they mean here.
  const onTabMessage = (message: TabMessage) => {
    if (message.type === 'ended') return send({ type: 'SESSION_ENDED' })
    if (message.type === 'hello') {
      const { session } = actor.getSnapshot().context
      if (session) tabs?.tell({ type: 'session', reason: 'login', session })
      return
    }
    send({
      type: message.reason === 'login' ? 'LOGIN' : 'SESSION_SYNCED',
      session: message.session,
    })
  }

  const subscription = actor.subscribe((snapshot) => persistence.save(snapshot.context.session))
  actor.start()

  const restored = persistence.restored.then((session) => {
    if (!session) return tabs?.tell({ type: 'hello' }) // open tabs may hand theirs over
    const event = { type: 'RESTORED', session } as const
    // Marked as stored first, so taking it over writes nothing back.
    if (actor.getSnapshot().can(event)) persistence.adopt(session)
    send(event)
  })
  // A login or logout before the read finished makes it moot: requests need not wait for it.
  const decided = new Promise<void>((resolve) => {
    const watch = actor.subscribe((snapshot) => {
      if (snapshot.context.epoch === 0) return
      watch.unsubscribe()
      resolve()
    })
  })
  const ready = Promise.race([restored, decided])
  const queue = createRequestQueue(actor, now, ready)

  const announce = async (message: TabMessage) => {
    try {
      await tabs?.announce(message, now())
    } catch (error) {
      warn(`could not share the session with other tabs (${errorName(error)}).`)
    }
  }

  const wake = () => send({ type: 'WAKE' })
  const stopWakeListeners = listenForWake(wake)

  const detach = attachAxios({
    http,
    queue,
    mayAttach: createOriginCheck(attachTo),
    isAuthFailure: options.isAuthFailure ?? ((response) => response.status === 401),
  })

  return {
    actor,
    ready,
    login(tokens) {
      const session = sessionFromTokens(tokens, now())
      send({ type: 'LOGIN', session })
      announce({ type: 'session', reason: 'login', session })
    },
    async logout() {
      const { session } = actor.getSnapshot().context
      send({ type: 'LOGOUT' })
      const writes = persistence.writeCount
      // Before the stored session was read, logout wins over it: it is revoked, and storage
      // cleared even when the read never answered, unless a login has written since.
      const stored = session ? null : await persistence.unclaimed()
      if (!session && persistence.writeCount === writes) persistence.save(null, true)
      await Promise.all([persistence.flushed(), announce({ type: 'ended' })])
      const ended = session ?? stored
      if (!ended || !options.revoke) return
      try {
        await options.revoke({ ...ended }, { signal: AbortSignal.timeout(10_000) })
      } catch (error) {
        warn(`revoke() failed (${errorName(error)}).`)
      }
    },
    async getAccessToken() {
      try {
        const grant = await queue.acquire({ method: 'TOKEN', url: 'getAccessToken()' })
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
      refresher.abandon()
      tabs?.close()
      if (tabName) releaseCrossTabName(tabName, attachTo)
      detach()
      stopWakeListeners()
      subscription.unsubscribe()
      actor.stop()
      queue.dispose()
    },
  }
}
