import type { SnapshotFrom } from 'xstate'
import {
  type AuthEvent,
  type AuthMachine,
  refreshDueAt,
  type Session,
} from '../../machines/index.js'
import { memorySession, type TokenResponse, type TokenStorage } from '../../src/index.js'
import { sessionFromTokens } from '../../src/session.js'
import {
  createTestAuthServer,
  type HoldHandle,
  type RefreshFaultKind,
  type TestAuthServer,
} from '../../src/testing/index.js'
import { refreshAt, signInAt } from '../helpers.js'
import { createConditions, createSleepableClock, type SleepableClock } from '../model/support.js'
import {
  createTransportClient,
  type Outcome,
  type SentObserver,
  type Transport,
} from '../model/transports.js'

/** What a property run does, one command at a time; every run starts with a login. */
export type Command =
  | { kind: 'login' }
  /** Another user signs in on this client (a new session epoch). */
  | { kind: 'loginAs' }
  | { kind: 'logout' }
  /** The client is disposed; the run ends there and everything must settle. */
  | { kind: 'dispose' }
  /** The next refresh calls are parked at the server until `releaseRefresh`: late answers. */
  | { kind: 'holdRefresh' }
  | { kind: 'releaseRefresh' }
  /**
   * A retry library re-sends the last request as it is: axios' `error.config` (or the
   * response's), fetch's `init` with the same `headers` object.
   */
  | { kind: 'resend' }
  /** From now on logins and refreshes report `expiresIn: 0` (a token born expired). */
  | { kind: 'zeroLifetime' }
  /** Another client on the same storage spends the stored refresh token first. */
  | { kind: 'rotateElsewhere' }
  /** Another client on the same storage signs in as another user. */
  | { kind: 'loginElsewhere' }
  /** A burst of requests; abortable ones are aborted by the next `abort`. */
  | { kind: 'request'; count: number; abortable: boolean }
  | { kind: 'abort' }
  /** A request the server parks until `release`: it carries the token of its time. */
  | { kind: 'hold' }
  | { kind: 'release' }
  /** Every access token issued so far stops working at the server. */
  | { kind: 'expire' }
  | { kind: 'revoke' }
  /** The next `times` refresh calls fail this way. */
  | { kind: 'fault'; fault: RefreshFaultKind; times: number }
  /** Time passes awake: timers fire, one at a time. */
  | { kind: 'advance'; ms: number }
  /** Time passes asleep: no timer runs. */
  | { kind: 'sleep'; ms: number }
  | { kind: 'wake' }
  /** Another tab on the same channel logs in (a session handed over) or out. */
  | { kind: 'otherTabLogin' }
  | { kind: 'otherTabLogout' }
  /** Another tab announces a refreshed session on the channel. */
  | { kind: 'otherTabRefresh' }

export function formatCommand(command: Command): string {
  switch (command.kind) {
    case 'request':
      return `request×${command.count}${command.abortable ? '(abortable)' : ''}`
    case 'fault':
      return `fault(${command.fault}${command.times > 1 ? `×${command.times}` : ''})`
    case 'advance':
    case 'sleep':
      return `${command.kind}(${command.ms})`
    default:
      return command.kind
  }
}

export const ACCESS_TTL_SECONDS = 1800
export const REFRESH_MARGIN = 60_000
export const REFRESH_TIMEOUT = 10_000
export const RETRY = { retries: 1, baseDelay: 1_000, maxDelay: 2_000 }
const START = Date.UTC(2030, 0, 1)
// A 2xx without a usable token ends the session too: its refresh token may be spent.
const REJECTING: ReadonlySet<RefreshFaultKind> = new Set<RefreshFaultKind>([
  400,
  401,
  403,
  'malformed',
  'malformed-json',
])
/** A run's step takes milliseconds; this long means something waits forever. */
const WATCHDOG_MS = 5_000
/** Timers the end of a run may fire to let every waiting request settle. */
const DRAIN_TIMERS = 50

interface Tracked {
  settled: number
  hold?: HoldHandle
  released: boolean
  controller: AbortController
}

/** What the runs exercised, summed over all runs: a property that stops reaching these fails. */
export interface Exercised {
  refreshEpisodes: number
  refreshed: number
  staleGeneration401s: number
  timeouts: number
  staleSessions: number
  expiries: number
  aborted: number
  logoutsWhileRefreshing: number
  sessionsSynced: number
  sessionsEndedElsewhere: number
  /** Requests seen leaving with a token: proves the invariant-7 check sees the headers. */
  requestsWithToken: number
  /** Refresh answers adopted after their attempt timed out. */
  lateAnswers: number
  /** 401s of an earlier session epoch, rejected instead of replayed. */
  otherEpoch401s: number
  disposedWithWork: number
  resentConfigs: number
  adoptedFromStorage: number
}

/**
 * How the client's storage behaves in a run: in memory, async, never answering, or holding
 * a session from an earlier visit that is read a moment after start (`restore`: the run
 * then starts without a login, so a logout or login can come before `ready`).
 */
export type StorageMode = 'memory' | 'async' | 'hung' | 'restore'

/**
 * One token server for a whole property; each run gets a fresh client, clock and counters.
 * The client's requests go through one transport: an axios instance or `auth.fetch`.
 */
export interface World {
  readonly server: TestAuthServer
  readonly exercised: Exercised
  /**
   * Runs one command list; resolves with the violated invariants (empty when all hold).
   * `jitter` seeds the retry jitter (the client's `Math.random`), so a run replays exactly.
   */
  run(commands: readonly Command[], jitter?: number, storage?: StorageMode): Promise<string[]>
  close(): Promise<void>
}

let channels = 0

/** A small seeded PRNG (mulberry32), to make the client's retry jitter reproducible. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

export async function createWorld(transport: Transport = 'axios'): Promise<World> {
  let clock: SleepableClock = createSleepableClock(START)
  let notify: () => void = () => undefined
  const exercised: Exercised = {
    refreshEpisodes: 0,
    refreshed: 0,
    staleGeneration401s: 0,
    timeouts: 0,
    staleSessions: 0,
    expiries: 0,
    aborted: 0,
    logoutsWhileRefreshing: 0,
    sessionsSynced: 0,
    sessionsEndedElsewhere: 0,
    requestsWithToken: 0,
    lateAnswers: 0,
    otherEpoch401s: 0,
    disposedWithWork: 0,
    resentConfigs: 0,
    adoptedFromStorage: 0,
  }
  const server = await createTestAuthServer({
    now: () => clock.now(),
    accessTokenTtl: ACCESS_TTL_SECONDS,
    refreshTokenTtl: 400 * 86_400,
  })
  // The server's fault queue, mirrored: each refresh call it decides takes the oldest fault.
  // That tells a hung call (`'hang'`: decided, never answered) from one about to be answered.
  let faults: RefreshFaultKind[] = []
  let decided = 0
  let lastFault: RefreshFaultKind | undefined
  const queueFault = (kind: RefreshFaultKind, times: number) => {
    for (let i = 0; i < times; i += 1) faults.push(kind)
    server.failNextRefresh(kind, { times })
  }
  const clearFaults = () => {
    faults = []
    server.clearFaults()
  }
  // Every server event (request start, response end, hold change, counter) is seen here,
  // synchronously: the fault mirror follows, and what runs wait for is re-checked.
  server
    .waitFor((s) => {
      const { refreshSuccesses, refreshFailures } = s.counters
      for (; decided < refreshSuccesses + refreshFailures; decided += 1) lastFault = faults.shift()
      notify()
      return false
    })
    .catch(() => undefined)

  async function run(
    commands: readonly Command[],
    jitter = 0,
    storageMode: StorageMode = 'memory',
  ): Promise<string[]> {
    // The client takes `Math.random` for its jitter when it is created: seed it for this run.
    const random = Math.random
    Math.random = seededRandom(jitter)
    try {
      return await runSeeded(commands, storageMode)
    } finally {
      Math.random = random
    }
  }

  async function runSeeded(
    commands: readonly Command[],
    storageMode: StorageMode,
  ): Promise<string[]> {
    clock = createSleepableClock(START)
    const conditions = createConditions(WATCHDOG_MS)
    notify = conditions.notify
    clearFaults()
    server.resetCounters()
    decided = 0
    lastFault = undefined
    const violations: string[] = []
    const violation = (message: string) => {
      if (!violations.includes(message)) violations.push(message)
    }

    // What leaves the client, seen after the client is done with each request.
    const sentAuthorizations: string[] = []
    // The tokens each request (by its unique URL) went out with, first send and replay.
    const tokensOf = new Map<string, string[]>()
    const onSent: SentObserver = (url, authorization) => {
      sentAuthorizations.push(authorization ?? '')
      if (authorization === null) return
      exercised.requestsWithToken += 1
      tokensOf.set(url, [...(tokensOf.get(url) ?? []), authorization.replace(/^Bearer /, '')])
    }
    const refreshTokensSent: string[] = []
    const rotated = new Set<string>()
    let presumedLost = 0
    let refreshesInTransit = 0
    let wantedRefreshes = 0
    let maxWantedRefreshes = 0
    let zeroLifetime = false
    const lifetime = <T extends TokenResponse>(tokens: T): T =>
      zeroLifetime ? { ...tokens, expiresIn: 0, expires_in: 0 } : tokens
    const channel = { name: `properties-${process.pid}-${++channels}` }
    // Shared with `rotateElsewhere`, the other client on the same storage.
    const stored = memorySession()
    if (storageMode === 'restore')
      stored.set(sessionFromTokens(await signInAt(server.url), clock.now()))
    const storage: TokenStorage = {
      get: () => {
        if (storageMode === 'hung') return new Promise<never>(() => undefined)
        if (storageMode === 'memory') return stored.get()
        return new Promise((r) => setImmediate(() => r(stored.get())))
      },
      set: (session) => stored.set(session),
      remove: () => stored.remove(),
    }
    const warnings: string[] = []
    const client = createTransportClient(
      transport,
      server.url,
      {
        clock,
        storage,
        crossTab: channel,
        refreshMargin: REFRESH_MARGIN,
        refreshTimeout: REFRESH_TIMEOUT,
        retry: RETRY,
        onWarning: (message) => {
          // A storage that answers later than the clock's 3 s bound (hung; or restoring while
          // the run already advances time) is reported: expected there, nothing else is.
          const slowStorage = storageMode === 'hung' || storageMode === 'restore'
          if (slowStorage && message.startsWith('storage.get() did not answer')) {
            warnings.push(message)
          } else violation(`warning: ${message}`)
        },
        refresh: async (session, { signal, attempt }) => {
          const token = session.refreshToken ?? ''
          // Invariant 11: a refresh token the server answered 2xx for (rotated) never goes again.
          if (rotated.has(token))
            violation('invariant 11: a rotated refresh token was presented again')
          // Presented again without any answer: the call before was presumed lost (patience).
          if (refreshTokensSent.includes(token)) presumedLost += 1
          refreshTokensSent.push(token)
          refreshesInTransit += 1
          // Invariant 1 counts the calls the client still wants: one it cancelled (a session
          // that ended, a call presumed lost) is closing its connection, no longer in flight.
          let wanted = true
          const letGo = () => {
            if (wanted) wantedRefreshes -= 1
            wanted = false
          }
          wantedRefreshes += 1
          maxWantedRefreshes = Math.max(maxWantedRefreshes, wantedRefreshes)
          signal.addEventListener('abort', letGo)
          try {
            const tokens = await refreshAt(server.url)(session, { signal, attempt })
            rotated.add(token)
            return lifetime(tokens)
          } finally {
            letGo()
            signal.removeEventListener('abort', letGo)
            refreshesInTransit -= 1
            conditions.notify()
          }
        },
      },
      onSent,
    )
    const { auth } = client
    // A storage that never answers is waited for by nothing but the first request.
    if (storageMode === 'memory') await auth.ready

    // Bookkeeping for the invariants.
    const heldTokens = new Set<string>() // every token this client has held (or stored)
    const storedAtStart = await stored.get()
    if (storedAtStart) heldTokens.add(storedAtStart.accessToken)
    if (storedAtStart?.refreshToken) heldTokens.add(storedAtStart.refreshToken)
    const deadTokens = new Set<string>() // those held before a logout
    let sentMark = 0 // requests sent before the last logout
    let refreshMark = 0
    let loggingOut = false
    let signedOut = false // by a logout, until the next login here or in another tab
    let rejectionsIssued = 0 // 400/401/403 faults queued and revocations
    let expiries = 0
    let episodes = 0
    let disposed = false
    let rotations = 0
    const rotatedTo = new Set<string>() // sessions another client stored, until adopted
    const rotatedElsewhere = () => rotations
    const epochOf = new Map<string, number>() // access token → the session epoch it belongs to

    // Only to count what the runs exercised (the checks themselves look from outside).
    const inspection = auth.actor.system.inspect((event) => {
      if (event.type !== '@xstate.event' || event.actorRef !== auth.actor) return
      const received = event.event as AuthEvent
      const { context } = auth.actor.getSnapshot()
      if (received.type === 'TOKEN_REJECTED' && received.generation < context.generation) {
        exercised.staleGeneration401s += 1
      }
      if (received.type === 'TOKEN_REJECTED' && received.epoch !== context.epoch) {
        exercised.otherEpoch401s += 1
      }
      if (received.type === 'REFRESH_ANSWERED') exercised.lateAnswers += 1
      if (received.type === 'REQUEST_ABORTED') exercised.aborted += 1
      if (received.type === 'SESSION_SYNCED') exercised.sessionsSynced += 1
      if (received.type === 'SESSION_ENDED') {
        exercised.sessionsEndedElsewhere += 1
        // The other tab's logout counts from the moment it reaches this client.
        if (auth.actor.getSnapshot().context.session) endSession()
      }
      if (received.type === 'LOGOUT' && auth.actor.getSnapshot().matches('refreshing')) {
        exercised.logoutsWhileRefreshing += 1
      }
    })
    const subscription = auth.actor.subscribe({
      next: (snapshot) => {
        observe(snapshot)
        conditions.notify()
      },
    })
    let previous: SnapshotFrom<AuthMachine> = auth.actor.getSnapshot()
    function observe(snapshot: SnapshotFrom<AuthMachine>): void {
      const before = previous
      previous = snapshot
      const { session, queue } = snapshot.context
      if (session && rotatedTo.delete(session.accessToken)) exercised.adoptedFromStorage += 1
      if (session) {
        if (!epochOf.has(session.accessToken))
          epochOf.set(session.accessToken, snapshot.context.epoch)
        heldTokens.add(session.accessToken)
        if (session.refreshToken) heldTokens.add(session.refreshToken)
      }
      // Invariant 2: the queue only exists while refreshing.
      if (!snapshot.matches('refreshing') && queue.length > 0) {
        violation(`invariant 2: ${queue.length} queued in ${JSON.stringify(snapshot.value)}`)
      }
      // Invariant 3: a refresh starts only for a token that is really bad (the server refuses
      // it), due on the client's clock, or after a failed refresh (stale). A 401 for an older
      // token, with the current one still good, is none of these.
      if (snapshot.context.generation > before.context.generation && before.matches('refreshing')) {
        exercised.refreshed += 1
      }
      const { error } = snapshot.context
      if (error !== before.context.error && error?.code === 'REFRESH_TIMEOUT')
        exercised.timeouts += 1
      if (
        snapshot.matches({ authenticated: 'stale' }) &&
        !before.matches({ authenticated: 'stale' })
      ) {
        exercised.staleSessions += 1
      }
      if (snapshot.matches('refreshing') && before.matches('authenticated')) {
        episodes += 1
        exercised.refreshEpisodes += 1
        const current = before.context.session as Session
        const refused = server.verifyAccessToken(current.accessToken) === null
        const dueAt = refreshDueAt(current, REFRESH_MARGIN)
        const due = dueAt !== undefined && clock.now() >= dueAt
        const stale = before.matches({ authenticated: 'stale' })
        const expiredHere = current.expiresAt !== undefined && clock.now() >= current.expiresAt
        if (!refused && !due && !stale && !expiredHere) {
          violation(
            'invariant 3: a refresh started while the server still accepts the current token, which is not due, after no failure (a stale 401?)',
          )
        }
      }
      // Invariant 7: after logout, no late result signs the client back in.
      if (signedOut && session) violation('invariant 7: a session appeared after logout')
      // Invariant 8: only a logout or a server rejection ends the session.
      if (snapshot.matches('loggedOut') && !before.matches('loggedOut') && !loggingOut) {
        violation(`invariant 8: logged out without a logout, from ${JSON.stringify(before.value)}`)
      }
      if (snapshot.matches('expired') && !before.matches('expired')) {
        expiries += 1
        exercised.expiries += 1
        // A presumed-lost call the server did process makes the retry a reuse, which the
        // server answers with a rejection: the documented limit of patience (invariant 11).
        const reuseRejections = presumedLost > 0 ? server.counters.reuseDetections : 0
        if (expiries > rejectionsIssued + reuseRejections) {
          violation(
            `invariant 8: expired ${expiries}× with ${rejectionsIssued} rejection(s) issued`,
          )
        }
      }
    }

    const requests: Tracked[] = []
    const abortable: AbortController[] = []
    let sequence = 0
    const track = (
      path: string,
      hold?: HoldHandle,
      send: (url: string, signal: AbortSignal) => Promise<Outcome> = client.get,
    ): Tracked => {
      sequence += 1
      const url = `${path}?r=${sequence}`
      const request: Tracked = {
        settled: 0,
        released: false,
        controller: new AbortController(),
        ...(hold ? { hold } : {}),
      }
      requests.push(request)
      const settle = () => {
        request.settled += 1
        if (request.settled > 1) violation('invariant 2: a request settled twice')
        conditions.notify()
      }
      send(url, request.controller.signal).then(settle)
      return request
    }
    let holds = 0
    let refreshHold: HoldHandle | undefined

    const parked = (r: Tracked) => r.hold !== undefined && !r.released && r.hold.waiting() > 0
    /**
     * Nothing moves by itself any more: every request has settled, is parked at the server or
     * waits in the queue, and the refresh call (if any) hangs at the server.
     */
    const quiet = () => {
      const snapshot = auth.actor.getSnapshot()
      const unparked = requests.filter((r) => r.settled === 0 && !parked(r)).length
      // A disposed client's last snapshot keeps its queue; what waited has settled anyway.
      if (unparked !== (disposed ? 0 : snapshot.context.queue.length)) return false
      if (disposed) return true
      // A call the client abandoned counts at the server until the socket's close reaches
      // it: in real time that happens long before any backoff ends, so time waits for it.
      if (server.refreshInFlight > refreshesInTransit) return false
      const hung =
        refreshesInTransit === 1 &&
        server.refreshInFlight >= 1 &&
        decided >= server.counters.refreshCalls &&
        lastFault === 'hang'
      // A refresh call parked at the server (`holdRefresh`) waits for `releaseRefresh`.
      const parkedCall =
        refreshesInTransit === 1 &&
        wantedRefreshes === 1 &&
        refreshHold !== undefined &&
        refreshHold.waiting() > 0
      // A storage that never answers holds the refresh until its bound (a timer) runs out;
      // once that has run out (and warned), later reads no longer wait.
      const readingStorage =
        storageMode === 'hung' && refreshesInTransit === 0 && warnings.length === 0
      if (snapshot.matches({ refreshing: 'requesting' })) {
        return hung || parkedCall || readingStorage
      }
      // A call that timed out stays on the wire, owned by the client, until it answers.
      return refreshesInTransit === 0 || hung || parkedCall
    }
    // Quiet is judged once the client's pending promise jobs have run (one turn of the event
    // loop): a step started by a timer continues in promise jobs the checks cannot see.
    const settle = async (what: string) => {
      await new Promise((resolve) => setImmediate(resolve))
      return conditions.until(quiet, () => {
        const snapshot = auth.actor.getSnapshot()
        const lost = requests.filter((r) => r.settled === 0 && !parked(r)).length
        return `quiet after ${what}: in ${JSON.stringify(snapshot.value)}, ${lost} request(s) neither settled nor parked, ${snapshot.context.queue.length} queued, ${refreshesInTransit} refresh call(s) in transit (a request that never settles breaks invariant 2)`
      })
    }

    /** The app's own login call, to the server's login route (not through `http`). */
    const signIn = () => signInAt(server.url)

    const otherTab = () =>
      createTransportClient(transport, server.url, {
        crossTab: channel,
        clock: { now: clock.now, setTimeout: () => 0, clearTimeout: () => undefined },
        onWarning: (message) => violation(`warning (other tab): ${message}`),
        refresh: () => Promise.reject(new Error('the other tab does not refresh here')),
      }).auth

    /** A logout is about to happen: mark what the client held so far as dead. */
    const endSession = () => {
      for (const token of heldTokens) deadTokens.add(token)
      sentMark = sentAuthorizations.length
      refreshMark = refreshTokensSent.length
      signedOut = true
    }

    async function perform(command: Command): Promise<void> {
      switch (command.kind) {
        case 'login':
          signedOut = false
          return auth.login(lifetime(await signIn()))
        case 'loginAs': {
          // Another user: what the previous session held must never leave again.
          endSession()
          signedOut = false
          return auth.login(lifetime(await signInAt(server.url, `user${sequence}`)))
        }
        case 'dispose': {
          const snapshot = auth.actor.getSnapshot()
          if (snapshot.context.queue.length > 0 || requests.some((r) => r.settled === 0)) {
            exercised.disposedWithWork += 1
          }
          disposed = true
          return auth.dispose()
        }
        case 'holdRefresh':
          refreshHold ??= server.hold('/auth/refresh')
          return
        case 'releaseRefresh':
          refreshHold?.release()
          refreshHold = undefined
          return
        case 'resend': {
          const resend = client.resender()
          if (!resend) return
          exercised.resentConfigs += 1
          // As a retry library does: the last request's config (or init), sent again.
          track('/api/resource', undefined, resend)
          return
        }
        case 'zeroLifetime':
          zeroLifetime = true
          return
        case 'loginElsewhere': {
          if (storageMode === 'hung') return
          const other = sessionFromTokens(
            lifetime(await signInAt(server.url, 'other')),
            clock.now(),
          )
          stored.set(other)
          return
        }
        case 'rotateElsewhere': {
          // Sharing a storage that never answers shares nothing: no client could see this.
          // (And with refresh calls parked or faults queued, the other client's call would
          // take them: it would park or hang, or eat a fault meant for this client.)
          // (And the fault mirror reads the server's answers as this client's own: not while
          // one of its calls is on the wire.)
          if (
            storageMode === 'hung' ||
            refreshHold ||
            faults.length > 0 ||
            refreshesInTransit > 0
          ) {
            return
          }
          const current = (await stored.get()) ?? undefined
          if (!current?.refreshToken) return
          // Another client persisting to the same storage spends the token and stores the result.
          rotations += 1 // counted by the server even when refused
          try {
            const tokens = await refreshAt(server.url)(current, {
              signal: new AbortController().signal,
              attempt: 1,
            })
            // The same sign-in, refreshed by the other client (it keeps the session's id).
            const session = sessionFromTokens(lifetime(tokens), clock.now(), current)
            stored.set(session)
            rotatedTo.add(session.accessToken)
          } catch {
            // The server refused (a queued fault, a revocation): nothing was rotated.
          }
          return
        }
        case 'logout':
          // From here on, whatever the client held is dead: nothing may leave with it.
          endSession()
          loggingOut = true
          await auth.logout()
          loggingOut = false
          return
        case 'request':
          for (let i = 0; i < command.count; i += 1) {
            const request = track('/api/resource')
            if (command.abortable) abortable.push(request.controller)
          }
          return
        case 'abort':
          for (const controller of abortable.splice(0)) controller.abort()
          return
        case 'hold': {
          holds += 1
          const path = `/api/slow/${holds}`
          track(path, server.hold(path))
          return
        }
        case 'release': {
          const oldest = requests.find((r) => r.hold && !r.released)
          if (!oldest) return
          oldest.released = true
          return oldest.hold?.release()
        }
        case 'expire':
          return server.expireAccessTokens()
        case 'revoke':
          rejectionsIssued += 1
          return server.revokeSessions()
        case 'fault':
          if (REJECTING.has(command.fault)) rejectionsIssued += command.times
          return queueFault(command.fault, command.times)
        case 'advance': {
          // Timer by timer, letting each one's consequences play out before the next.
          let remaining = command.ms
          let atOnce = 0
          for (let next = clock.nextIn(); next !== undefined && next <= remaining; ) {
            // Invariant 13: timers that keep firing without time passing are a loop.
            atOnce = next === 0 ? atOnce + 1 : 0
            if (atOnce > 20) {
              violation('invariant 13: timers fire in a loop without time passing')
              break
            }
            clock.advance(next)
            remaining -= next
            await settle(`a timer during ${formatCommand(command)}`)
            next = clock.nextIn()
          }
          return clock.advance(remaining)
        }
        case 'sleep':
          return clock.sleep(command.ms)
        case 'wake':
          return auth.wake()
        case 'otherTabLogin': {
          signedOut = false
          const tokens = await signIn()
          const tab = otherTab()
          tab.login(lifetime(tokens))
          return conditions
            .until(
              () => auth.actor.getSnapshot().context.session?.accessToken === tokens.accessToken,
              () => 'the other tab’s session to be adopted',
            )
            .finally(() => tab.dispose())
        }
        case 'otherTabRefresh': {
          const snapshot = auth.actor.getSnapshot()
          if (!snapshot.matches('authenticated') && !snapshot.matches('refreshing')) return
          // As another tab's refresh reaches this one: a session message on the channel.
          // A refresh of this same sign-in (its id), as another tab of this profile gets it.
          const current = snapshot.context.session
          const tokens = lifetime(await signIn())
          const session = sessionFromTokens(tokens, clock.now(), current)
          const tab = new BroadcastChannel(`${channel.name}:session`)
          tab.postMessage({ type: 'session', reason: 'refresh', session })
          tab.close()
          return conditions.until(
            () => auth.actor.getSnapshot().context.session?.accessToken === session.accessToken,
            () => 'the other tab’s refreshed session to be adopted',
          )
        }
        case 'otherTabLogout': {
          const snapshot = auth.actor.getSnapshot()
          if (!snapshot.matches('authenticated') && !snapshot.matches('refreshing')) return
          loggingOut = true
          const tab = otherTab()
          await tab.logout()
          await conditions
            .until(
              () => auth.actor.getSnapshot().matches('loggedOut'),
              () => 'the other tab’s logout to arrive',
            )
            .finally(() => tab.dispose())
          loggingOut = false
          return
        }
      }
    }

    function checkAfterCommand(): void {
      // Invariant 1: one refresh in flight at most, as the client runs them. (The server can
      // count a cancelled call a moment longer: its socket's close may arrive after the next.)
      if (maxWantedRefreshes > 1) {
        violation(`invariant 1: ${maxWantedRefreshes} refreshes in flight at once`)
      }
      // Invariant 11 at the server: a reuse is only possible where a call outlived its
      // patience unanswered and a retry presented its token again (a slow server, the
      // documented limit of patience); never otherwise.
      if (server.counters.reuseDetections > 0 && presumedLost === 0) {
        violation(`invariant 11: ${server.counters.reuseDetections} reuse detection(s)`)
      }
      // Invariant 10: a request is replayed only with a token of its own session (epoch).
      for (const [url, tokens] of tokensOf) {
        const epochs = new Set(tokens.map((token) => epochOf.get(token)))
        if (epochs.size > 1) violation(`invariant 10: ${url} went out in ${epochs.size} epochs`)
      }
      // Invariant 3, counted: each call is the first of a justified episode or a retry after
      // a failed call.
      const { refreshCalls, refreshFailures } = server.counters
      // A call presumed lost (past its patience) is replaced within the same episode.
      if (refreshCalls > episodes + refreshFailures + rotatedElsewhere() + presumedLost) {
        violation(
          `invariant 3: ${refreshCalls} refresh calls for ${episodes} episodes and ${refreshFailures} failed calls`,
        )
      }
      // Invariant 7: nothing leaves with a token held before a logout.
      for (const authorization of sentAuthorizations.slice(sentMark)) {
        const token = authorization.replace(/^Bearer /, '')
        if (deadTokens.has(token)) violation('invariant 7: a request left with a logged-out token')
      }
      for (const token of refreshTokensSent.slice(refreshMark)) {
        if (deadTokens.has(token)) violation('invariant 7: a logged-out refresh token was spent')
      }
    }

    try {
      const start: Command[] = storageMode === 'restore' ? [] : [{ kind: 'login' }]
      for (const command of [...start, ...commands]) {
        await perform(command)
        await settle(formatCommand(command))
        checkAfterCommand()
        if (disposed) break
      }
      // The end: the server behaves again and time passes until nothing waits any more.
      clearFaults()
      for (const request of requests) {
        request.released = true
        request.hold?.release()
      }
      refreshHold?.release()
      server.releaseHung()
      for (let timers = 0; ; timers += 1) {
        await settle('the end of the run')
        const waiting = requests.some((r) => r.settled === 0)
        if (!waiting && (disposed || !auth.actor.getSnapshot().matches('refreshing'))) break
        const next = clock.nextIn()
        if (next === undefined || timers === DRAIN_TIMERS) {
          violation(
            `invariant 2: ${requests.filter((r) => r.settled === 0).length} request(s) never settled`,
          )
          break
        }
        clock.advance(next)
      }
      checkAfterCommand()
      return violations
    } finally {
      inspection.unsubscribe()
      subscription.unsubscribe()
      auth.dispose()
      server.releaseHung()
      for (const request of requests) request.hold?.release()
      refreshHold?.release()
      await server.waitFor((s) => s.refreshInFlight === 0)
    }
  }

  return {
    server,
    exercised,
    run,
    async close() {
      notify = () => undefined
      await server.close()
    },
  }
}
