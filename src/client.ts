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
import { createCoordinator } from './coordination/refresh.js'
import type { CrossTabOptions } from './coordination/tabs/crossTab.js'
import { tabsCoordinator } from './coordination/tabs/index.js'
import type { Coordination, Coordinator, CoordinatorMessage } from './coordination/types.js'
import {
  assertBoundTo,
  createDpop,
  type Dpop,
  type DpopHandle,
  type DpopOptions,
  dpopOptionsOf,
} from './dpop/index.js'
import { AuthError, errorName, InvalidSessionError } from './errors.js'
import { createInspection } from './inspection.js'
import { type AttachTo, createOriginCheck, defaultAttachTo, type OriginPolicy } from './origin.js'
import { createPersistence } from './persistence.js'
import { createProcessClock } from './processClock.js'
import { createRequestQueue, type RequestQueue } from './queue.js'
import { createRefresher, defaultIsRefreshRejected, type RefreshFunction } from './refresh.js'
import { sessionFromTokens, type TokenResponse } from './session.js'
import { memorySession, type TokenStorage } from './storage.js'
import { type AuthFetch, createAuthFetch } from './transports/fetch.js'
import { listenForWake } from './wake.js'

/** Options of {@link createAuthClient}. Durations are in milliseconds. */
export interface AuthClientOptions {
  /**
   * Spends the refresh token and returns the new tokens. Use a bare `fetch` (or axios)
   * call, never `auth.fetch` or a protected instance, and pass `signal` on so an abandoned
   * refresh is cancelled.
   */
  refresh: RefreshFunction
  /** Where the session is persisted. Default: {@link memorySession} (nothing persisted). */
  storage?: TokenStorage
  /**
   * Whether a response means "this token was not accepted", for backends that answer 200
   * with `{ code: 401 }`. May be async; it gets a clone, so reading the body leaves the
   * caller's intact. A predicate that throws rejects the request with its error.
   * Default: `response.status === 401`.
   */
  isAuthFailure?: (response: Response) => boolean | Promise<boolean>
  /** The `fetch` that `auth.fetch` calls. Default: `globalThis.fetch`, looked up per call. */
  fetch?: typeof globalThis.fetch
  /**
   * Whether a refresh error means the server refused the refresh token (the session ends)
   * rather than a passing failure (retried). Default: HTTP 400/401/403 or `invalid_grant`.
   */
  isRefreshRejected?: (error: unknown) => boolean
  /**
   * Where the token may be sent. Default: in a browser, the page's origin (and with the
   * `http` option, the origin of its `baseURL`). Requests elsewhere go out without
   * `Authorization`. In Node with neither, no request gets the token: the client warns.
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
  /**
   * Called by `logout()` to revoke the session at the server; failures are reported, not
   * thrown. With `dpop`, `context.dpop` signs with the ended session's key, which is deleted
   * once `revoke` has settled.
   */
  revoke?: (
    session: Readonly<Session>,
    context: { signal: AbortSignal; dpop?: DpopHandle },
  ) => Promise<void>
  /** Receives warnings (storage failures, discarded sessions). Default: `console.warn`. */
  onWarning?: (message: string) => void
  /**
   * Coordinates the tabs of one browser profile: one refresh per expiry under a Web Lock,
   * sessions and logouts handed over a BroadcastChannel, the lock-time re-check read from
   * IndexedDB. Default: on where `window` and BroadcastChannel exist, off elsewhere (Node).
   * Each missing browser API degrades to in-tab behaviour.
   */
  crossTab?: boolean | CrossTabOptions
  /**
   * Shares the session with clients elsewhere: `tabsCoordinator()` (the browser default,
   * what `crossTab` configures) or `redisCoordinator()` from `auth-machine/redis` for the
   * processes of a Node service. `false`: this client alone. Not together with `crossTab`.
   */
  coordinator?: Coordinator | false
  /** Time source for expiry, timers and backoff. Default: the system clock. For tests. */
  clock?: Clock
  /**
   * Sender-constrained tokens (DPoP, RFC 9449): every protected request carries
   * `Authorization: DPoP <token>` and a proof signed with the session's key, so a stolen
   * token is useless without the key. `true`: a non-extractable ES256 key made for each
   * sign-in (shared by the tabs through IndexedDB, in memory in Node), deleted when the
   * session ends. `{ keyPair }`: the app's own key, for every session (needed when processes
   * share the session through Redis). Sign in with `auth.dpop`. Default `false`.
   */
  dpop?: boolean | DpopOptions
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
   * `fetch` with the session: the token goes to allowed origins only, concurrent 401s share
   * one refresh, and a request rejected for its token is replayed once. An HTTP status never
   * rejects (a 401 that survives the replay resolves as that `Response`); the session's
   * errors do (`SessionExpiredError`, `LoggedOutError`, …). `init.skipAuth` sends a request
   * without the token. Streamed bodies (a `ReadableStream`) are not replayed: their first
   * 401 is returned.
   */
  readonly fetch: AuthFetch
  /**
   * Tells the client the app is back (network online, tab visible, process resumed): a due
   * refresh starts now, a stale session retries, a backoff wait is cut short. Browsers call
   * it on `online` and `visibilitychange` by themselves.
   */
  wake(): void
  /** The XState actor: `getSnapshot()`, `subscribe()`, and `on()` for emitted events. */
  readonly actor: Actor<AuthMachine>
  /**
   * With the `dpop` option: proofs with the key the next `login()` binds (a new key, also
   * while a session lives), for the app's own sign-in call — `auth.dpop.fetch(tokenUrl,
   * init)`, or `keyPair()` for an OAuth library. `undefined` without DPoP.
   */
  readonly dpop: DpopHandle | undefined
  /**
   * Resolves once the stored session (if any) has been restored, or once `login()` or
   * `logout()` made it moot. Reading storage is bounded (3 s); a storage that never answers
   * is reported through `onWarning` and the client goes on without it.
   */
  readonly ready: Promise<void>
  /**
   * Detaches every HTTP client, stops timers and the actor, and settles everything still
   * waiting, requests on the wire included, with `AuthError` code `DISPOSED`.
   */
  dispose(): void
}

function coordinatorOf(options: AuthClientOptions): Coordinator | undefined {
  const { coordinator, crossTab } = options
  if (coordinator !== undefined) {
    if (crossTab !== undefined) {
      throw new AuthError(
        'Pass either `coordinator` or `crossTab`, not both: `crossTab` configures the tabs coordinator.',
        'INVALID_OPTIONS',
      )
    }
    if (coordinator === false) return undefined
    if (typeof (coordinator as Partial<Coordinator> | null)?.open !== 'function') {
      throw new AuthError(
        '`coordinator` must be a coordinator such as tabsCoordinator() or redisCoordinator(), or false.',
        'INVALID_OPTIONS',
      )
    }
    return coordinator
  }
  const inBrowser = typeof window !== 'undefined' && typeof BroadcastChannel !== 'undefined'
  if (crossTab === undefined) return inBrowser ? tabsCoordinator() : undefined
  if (crossTab === false) return undefined
  return tabsCoordinator(crossTab === true ? {} : crossTab)
}

/**
 * Binds the key the sign-in used to the new session, refusing tokens that cannot be this
 * client's: no key was used here, or the token names another key (`cnf.jkt`).
 */
function bindKey(dpop: Dpop, session: Session, replacing: string | undefined): Promise<void> {
  const jkt = dpop.keys.currentThumbprint()
  if (jkt === undefined) {
    throw new InvalidSessionError(
      'The `dpop` option is on, but no DPoP key of this client was used to sign in: make the token request with `auth.dpop` (its `fetch`, `proof` or `keyPair`).',
    )
  }
  if (jkt !== null) {
    try {
      assertBoundTo(session, jkt)
    } catch {
      throw new InvalidSessionError(
        "The access token is bound to another DPoP key than this client's (cnf.jkt): it was not obtained with `auth.dpop`.",
      )
    }
  }
  return dpop.keys.bind(session.id, replacing)
}

function retryPolicy(retry: AuthClientOptions['retry']): RetryPolicy {
  if (retry === false) return { ...DEFAULT_RETRY, retries: 0 }
  return { ...DEFAULT_RETRY, ...retry }
}

/** What a transport needs from the core: the shared queue and the session's rules. */
export interface ClientCore {
  client: AuthClient
  queue: RequestQueue
  /** The client's `attachTo` as given, or undefined: transports then use their own default. */
  attachTo: AttachTo | undefined
  warn: (message: string) => void
  /** DPoP, when on: what the transports sign proofs with. */
  dpop: Dpop | undefined
  /** Runs `detach` on `dispose()` (transports register their own teardown); returns an undo. */
  onDispose(detach: () => void): () => void
}

/**
 * The client without any HTTP library: the actor, the queue every transport shares, the
 * refresh, storage and tabs, and `auth.fetch`. `baseURL` (an axios instance's) joins the
 * default origins. A composition root: each concern lives in the module named for it.
 */
export function createClientCore(
  options: AuthClientOptions,
  defaults: { baseURL?: string | undefined } = {},
): ClientCore {
  const baseClock = options.clock ?? systemClock
  const clock = createProcessClock(baseClock)
  const now = () => clock.now()
  const warn = options.onWarning ?? ((message: string) => console.warn(`auth-machine: ${message}`))
  const refreshTimeout = options.refreshTimeout ?? DEFAULT_TIMING.refreshTimeout
  const attachTo = options.attachTo ?? defaultAttachTo(defaults.baseURL)
  // Said on the first `auth.fetch`, not here: an app may only ever use attached instances.
  const noOrigins =
    options.attachTo === undefined && Array.isArray(attachTo) && attachTo.length === 0
  const storage = options.storage ?? memorySession()

  const persistence = createPersistence(storage, warn, baseClock)

  // Late-bound: tab messages and refresh calls only happen once the actor runs.
  let actor: Actor<AuthMachine>
  let disposed = false
  // After dispose(), news still on its way (a coordinator's read in flight) goes nowhere: a
  // stopped actor would print the event, session and all, in XState's development build.
  const send = (event: Parameters<Actor<AuthMachine>['send']>[0]) => {
    if (!disposed) actor.send(event)
  }

  // Another tab's or process's news, as machine events: the statechart decides what they mean here.
  const take = (message: CoordinatorMessage) => {
    if (message.type === 'ended') return send({ type: 'SESSION_ENDED' })
    send({
      type: message.reason === 'login' ? 'LOGIN' : 'SESSION_SYNCED',
      session: message.session,
    })
  }
  // With DPoP, a session is taken only with its key: one whose key is gone (a logout
  // elsewhere deleted it; a tab of an older build sent a Bearer session) could never be
  // used here. Checked in arrival order, so a logout is never overtaken by what came before.
  // A login or logout here while a message waits for its check makes that message old news.
  let delivered = Promise.resolve()
  let localChanges = 0
  const deliver = (message: CoordinatorMessage) => {
    if (!dpop) return take(message)
    const arrivedAt = localChanges
    delivered = delivered.then(async () => {
      if (message.type === 'session') {
        // Only a definite "no key" drops it: a store that cannot be read now says nothing.
        const keyed = await dpop?.keys.has(message.session.id).catch(() => true)
        if (!keyed || localChanges !== arrivedAt) return
      }
      take(message)
    })
  }
  const dpopOptions = dpopOptionsOf(options.dpop)
  const coordination: Coordination | undefined = coordinatorOf(options)?.open({
    deliver,
    current: () => actor.getSnapshot().context.session,
    now,
    warn,
    refreshTimeout,
    attachTo,
    storage,
  })

  // A key kept in memory dies with the page or process: say so before it costs a session.
  const keyInMemory = coordination ? coordination.dpopKeys === null : true
  if (
    dpopOptions &&
    !dpopOptions.keyPair &&
    keyInMemory &&
    (coordination || storage.id !== 'memory')
  ) {
    warn(
      'the DPoP key can only be kept in memory here (no IndexedDB): other tabs cannot sign for its session, and a reload or restart signs the user out.',
    )
  }
  if (dpopOptions && !dpopOptions.keyPair && coordination && coordination.dpopKeys === undefined) {
    coordination.close()
    throw new AuthError(
      'This coordinator shares the session with clients that cannot share a DPoP key made here (other processes): pass `dpop: { keyPair }`, the same key pair in every one.',
      'INVALID_OPTIONS',
    )
  }
  const dpop = dpopOptions
    ? createDpop({
        dpop: dpopOptions,
        store: coordination?.dpopKeys ?? undefined,
        now: () => baseClock.now(),
        fetch: options.fetch,
        // A request found its session's key gone: deleted by a logout or an expiry elsewhere
        // (another tab), so the session is over here too.
        keyLost: (epoch) => {
          if (queue.isLive(epoch)) send({ type: 'SESSION_ENDED' })
        },
      })
    : undefined
  const scheme = dpop ? 'DPoP' : 'Bearer'

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
    dpop,
    coordinate: createCoordinator({
      reread: () => persistence.reread(),
      coordination,
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
        assertEvent(event, ['TOKEN_NEEDED', 'TOKEN_REJECTED', 'NONCE_CHALLENGED'])
        if (context.queue.length === 0) return { queue: [event.request] }
        context.queue.push(event.request)
        return { queue: context.queue }
      }),
    },
  })
  const inspect = createInspection(options.inspect)
  actor = createActor(machine, { clock, ...(inspect ? { inspect } : {}) })

  // A sign-in's DPoP key goes with it: when its session ends (logout, expiry, here or
  // elsewhere), so does the key, and the next sign-in makes a new one. A session taken over
  // by another sign-in is not ended here: that sign-in's login removed its key, and two
  // logins that cross between tabs may each still need the other's.
  let keyedSession: string | undefined
  const subscription = actor.subscribe((snapshot) => {
    const { session } = snapshot.context
    persistence.save(session)
    if (!dpop || session?.id === keyedSession) return
    const ended = keyedSession
    keyedSession = session?.id
    if (session) return
    dpop.keys.release(ended).catch((error: unknown) => {
      warn(`could not delete the DPoP key of a session that ended (${errorName(error)}).`)
    })
  })
  actor.start()

  const restored = persistence.restored.then(async (stored) => {
    // The coordinator weighs the stored session against the shared one (other tabs, other
    // processes): a newer one is taken, and one that ended elsewhere is not restored.
    let session = coordination ? await coordination.restore(stored) : stored
    if (session && dpop && !(await dpop.keys.has(session.id).catch(() => false))) {
      // Its tokens are bound to a key this client cannot sign with (memory keys end with
      // the process): useless, and not worth a refresh that would be refused.
      warn('the stored session was not restored: its DPoP key is gone.')
      session = null
    }
    if (!session) {
      if (stored && actor.getSnapshot().context.epoch === 0) persistence.save(null, true)
      return
    }
    const event = { type: 'RESTORED', session } as const
    // Marked as stored first, so taking it over writes nothing back.
    if (session === stored && actor.getSnapshot().can(event)) persistence.adopt(session)
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

  const announce = async (message: CoordinatorMessage) => {
    try {
      await coordination?.announce(message)
    } catch (error) {
      warn(`could not share the session with other tabs or processes (${errorName(error)}).`)
    }
  }

  const wake = () => send({ type: 'WAKE' })
  const stopWakeListeners = listenForWake(wake)

  const detachers = new Set<() => void>()
  const policy: OriginPolicy = createOriginCheck(attachTo)
  const authFetch = createAuthFetch({
    queue,
    policy,
    isAuthFailure: options.isAuthFailure,
    fetch: options.fetch,
    dpop,
    ...(noOrigins
      ? {
          unconfigured: () =>
            warn('no origin may receive the token from `auth.fetch`: pass `attachTo`.'),
        }
      : {}),
  })

  const client: AuthClient = {
    actor,
    ready,
    fetch: authFetch,
    dpop: dpop?.signIn,
    login(tokens) {
      const session = sessionFromTokens(tokens, now(), undefined, 'INVALID_SESSION', scheme)
      // The same tokens again (a double click, a framework running effects twice): the
      // session is already this one, and its key already bound.
      if (dpop && actor.getSnapshot().context.session?.accessToken === session.accessToken) {
        return
      }
      localChanges += 1
      const replacing = actor.getSnapshot().context.session?.id
      const bound = dpop ? bindKey(dpop, session, replacing) : undefined
      send({ type: 'LOGIN', session })
      // Told once the key is where the other tabs can read it.
      if (!bound) announce({ type: 'session', reason: 'login', session })
      else {
        bound.then(
          () => announce({ type: 'session', reason: 'login', session }),
          (error: unknown) =>
            warn(`could not share the DPoP key with other tabs (${errorName(error)}).`),
        )
      }
    },
    async logout() {
      localChanges += 1
      const { session } = actor.getSnapshot().context
      // Taken before the session ends, which deletes it: revoke may need to sign with it.
      const key = dpop && session ? dpop.keys.session(session.id) : undefined
      key?.catch(() => undefined)
      send({ type: 'LOGOUT' })
      const writes = persistence.writeCount
      // Before the stored session was read, logout wins over it: it is revoked, and storage
      // cleared even when the read never answered, unless a login has written since.
      const stored = session ? null : await persistence.unclaimed()
      if (!session && persistence.writeCount === writes) persistence.save(null, true)
      await Promise.all([persistence.flushed(), announce({ type: 'ended' })])
      const ended = session ?? stored
      // A stored session that never reached the machine: its key is known only by its id.
      const endedKey = key ?? (dpop && ended ? dpop.keys.session(ended.id) : undefined)
      endedKey?.catch(() => undefined)
      try {
        if (!ended || !options.revoke) return
        const context: { signal: AbortSignal; dpop?: DpopHandle } = {
          signal: AbortSignal.timeout(10_000),
        }
        if (dpop && endedKey) context.dpop = dpop.forKey(endedKey)
        await options.revoke({ ...ended }, context)
      } catch (error) {
        warn(`revoke() failed (${errorName(error)}).`)
      } finally {
        if (dpop && stored) {
          await dpop.keys.release(stored.id).catch((error: unknown) => {
            warn(`could not delete the DPoP key of a session that ended (${errorName(error)}).`)
          })
        }
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
      disposed = true
      refresher.abandon()
      coordination?.close()
      for (const detach of detachers) detach()
      detachers.clear()
      stopWakeListeners()
      subscription.unsubscribe()
      actor.stop()
      queue.dispose()
    },
  }
  return {
    client,
    queue,
    attachTo: options.attachTo,
    warn,
    dpop,
    onDispose(detach) {
      detachers.add(detach)
      return () => detachers.delete(detach)
    },
  }
}

/**
 * Keeps a user signed in for `auth.fetch`: attaches the access token to allowed origins,
 * refreshes it once for every concurrent request, replays what waited, and reports the
 * end of a session as typed errors. This entry holds no axios code; `auth-machine` adds
 * the `http` option and `auth.attach(axiosInstance)`.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  return createClientCore(options).client
}
