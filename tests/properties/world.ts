import type { SnapshotFrom } from 'xstate'
import {
  type AuthEvent,
  type AuthMachine,
  refreshDueAt,
  type Session,
} from '../../machines/index.js'
import {
  type DpopHandle,
  memorySession,
  type RefreshContext,
  type TokenResponse,
  type TokenStorage,
} from '../../src/index.js'
import { sessionFromTokens } from '../../src/session.js'
import {
  accessTokenHash,
  createTestAuthServer,
  decodeJwt,
  type HoldHandle,
  type LoggedRequest,
  type RefreshFaultKind,
  type TestAuthServer,
  type TestAuthServerCounters,
  type TokenSet,
} from '../../src/testing/index.js'
import { dpopSignInAt, refreshAt, signInAt } from '../helpers.js'
import { createConditions, createSleepableClock, type SleepableClock } from '../model/support.js'
import {
  createTransportClient,
  type Outcome,
  type SentObserver,
  TRANSPORTS,
  type Transport,
} from '../model/transports.js'

/**
 * What a property runs on: a transport, plain (Bearer tokens) or with DPoP (RFC 9449): the
 * server binds tokens to the app's key and wants a nonce on every route (`nonce: 'both'`),
 * and every client of the world (this one, its other tabs, the other client on its storage)
 * signs proofs with that one key pair.
 */
export type Variant = Transport | `${Transport} + DPoP`

/** Every variant, Bearer first. */
export const VARIANTS: readonly Variant[] = [
  ...TRANSPORTS,
  ...TRANSPORTS.map((transport) => `${transport} + DPoP` as const),
]

/**
 * The variant a name means, case and spacing aside: `'fetch + DPoP'`, `'fetch+dpop'` and
 * `'fetch-dpop'` all name the same one (a shell makes spaces awkward). `undefined` if none.
 */
export function variantNamed(name: string): Variant | undefined {
  const key = (text: string) => text.toLowerCase().replace(/[\s+_-]+/g, '')
  return VARIANTS.find((variant) => key(variant) === key(name))
}

function variantParts(variant: Variant): { transport: Transport; dpop: boolean } {
  const [transport, dpop] = variant.split(' + ') as [Transport, string | undefined]
  return { transport, dpop: dpop !== undefined }
}

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
  /** DPoP only: the server changes its nonce; proofs with the old one are challenged. */
  | { kind: 'rotateNonce' }
  /**
   * DPoP only: the server answers a request with a nonce challenge (`challengeDpopNonce`)
   * before it looks at its token: the oldest request parked by `hold` (when `release` lets it
   * through: maybe of an older token, another session, or while a refresh runs), else a new
   * one, `parked` as by `hold` first or not. What the client sends again with the new nonce
   * is parked until `releaseChallenge`.
   */
  | { kind: 'challenge'; parked: boolean }
  | { kind: 'releaseChallenge' }

export function formatCommand(command: Command): string {
  switch (command.kind) {
    case 'request':
      return `request×${command.count}${command.abortable ? '(abortable)' : ''}`
    case 'fault':
      return `fault(${command.fault}${command.times > 1 ? `×${command.times}` : ''})`
    case 'advance':
    case 'sleep':
      return `${command.kind}(${command.ms})`
    case 'challenge':
      return command.parked ? 'challenge(parked)' : 'challenge'
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
  /** Its path: its own with a hold, so no other request's path starts with it. */
  path: string
  settled: number
  hold?: HoldHandle
  released: boolean
  /** DPoP: the nonce challenge that meets it, whose hold parks its second send. */
  challenge?: { hold: HoldHandle; released: boolean }
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

/** What the DPoP variants exercise besides (present in their `exercised` only). */
export interface DpopExercised {
  /** Protected requests the server asked for a nonce, as the machine heard of them. */
  nonceChallenges: number
  /** Of those, heard while a refresh ran (the request waits for the new token). */
  nonceChallengesWhileRefreshing: number
  /** Challenged requests (`challenge`) sent again with the new nonce and parked. */
  challengedResends: number
  /** Refresh calls sent again because the token endpoint asked for a nonce. */
  refreshNonceRetries: number
  /** Protected requests sent with a proof (proves the DPoP checks see the proofs). */
  requestsWithProof: number
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
  readonly variant: Variant
  readonly exercised: Exercised & Partial<DpopExercised>
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

/** The token of an `Authorization` header, whichever the scheme. */
const tokenIn = (authorization: string) => authorization.replace(/^(Bearer|DPoP) /, '')

/** The DPoP server's `iat` window (its default), in ms of its clock. */
const IAT_WINDOW_MS = 60_000

/**
 * A refresh at a DPoP token server, as `dpopRefreshAt` (tests/helpers.ts) makes it: through
 * `dpop.fetch` (proof, nonce learned, sent again when asked for a nonce). The body also names
 * the call (`call`, which the server ignores), so the server's log tells how many HTTP calls
 * one refresh made. A refusal is thrown as `dpopRefreshAt` throws it (`{ status }` alone: the
 * body that said why is gone) or, `withResponse`, the way an HTTP library throws it (with the
 * response and its OAuth `error`): the client must tell a DPoP refusal (a nonce challenge that
 * outlived `dpop.fetch`'s retries, a proof refused for its age) from a refused refresh token
 * either way. `onRefusal` hears the OAuth error of every refusal.
 */
async function refreshWithProof(
  url: string,
  session: Readonly<Session>,
  { signal, dpop }: RefreshContext,
  call: string,
  withResponse: boolean,
  onRefusal: (error: unknown) => void = () => undefined,
): Promise<TokenSet> {
  if (!dpop) throw new Error('the client has no `dpop` option')
  const response = await dpop.fetch(`${url}/auth/refresh`, {
    method: 'POST',
    signal,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: session.refreshToken, call }),
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON: returned (or thrown) as text, as axios does.
  }
  if (!response.ok) {
    const error = (body as { error?: unknown } | null)?.error
    onRefusal(error)
    const refused = Object.assign(new Error('refresh refused'), { status: response.status })
    throw withResponse ? Object.assign(refused, { response, error }) : refused
  }
  return body as TokenSet
}

/** The `call` a refresh call's body names (see {@link refreshWithProof}). */
function callOf(entry: LoggedRequest): string | undefined {
  try {
    const call = (JSON.parse(entry.body ?? '') as { call?: unknown } | null)?.call
    return typeof call === 'string' ? call : undefined
  } catch {
    return undefined
  }
}

/** What a proof must say for the request it went with; why not, else `undefined`. */
function proofProblem(entry: LoggedRequest, serverUrl: string, token?: string): string | undefined {
  const proof = entry.dpop === undefined ? null : decodeJwt(entry.dpop)
  if (!proof) return 'no DPoP proof'
  const { header, payload } = proof
  if (header.typ !== 'dpop+jwt' || header.alg !== 'ES256' || typeof header.jwk !== 'object') {
    return 'a proof without the DPoP header (typ, alg, jwk)'
  }
  if (payload.htm !== entry.method) return 'a proof for another method'
  if (payload.htu !== `${serverUrl}${entry.path}`) return 'a proof for another URL'
  if (token !== undefined && payload.ath !== accessTokenHash(token)) {
    return 'a proof for another access token (ath)'
  }
  if (token === undefined && payload.ath !== undefined) return 'a proof naming an access token'
  return undefined
}

export async function createWorld(variant: Variant = 'axios'): Promise<World> {
  const { transport, dpop } = variantParts(variant)
  let clock: SleepableClock = createSleepableClock(START)
  let notify: () => void = () => undefined
  const exercised: Exercised & Partial<DpopExercised> = {
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
    ...(dpop && {
      nonceChallenges: 0,
      nonceChallengesWhileRefreshing: 0,
      challengedResends: 0,
      refreshNonceRetries: 0,
      requestsWithProof: 0,
    }),
  }
  const server = await createTestAuthServer({
    now: () => clock.now(),
    accessTokenTtl: ACCESS_TTL_SECONDS,
    refreshTokenTtl: 400 * 86_400,
    ...(dpop && { dpop: { nonce: 'both' } }),
  })
  // One key pair for every client of the world: this one, its other tabs and the other
  // client on its storage share the app's key (in Node no IndexedDB shares a made one).
  const keyPair = dpop
    ? ((await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
        'sign',
        'verify',
      ])) as CryptoKeyPair)
    : undefined
  const dpopOption = keyPair ? { dpop: { keyPair } } : {}
  // The server's fault queue, mirrored: each refresh call it decides takes the oldest fault.
  // That tells a hung call (`'hang'`: decided, never answered) from one about to be answered.
  let faults: RefreshFaultKind[] = []
  let decided = 0
  let lastFault: RefreshFaultKind | undefined
  // DPoP: a refresh call can end without a decision (a nonce challenge, a refused proof),
  // taking no fault. A refused proof counts as a failed refresh, right after the refusal
  // (synchronously, in the same handler): those failures take no fault either.
  let tokenProofRefusals = 0
  let proofJustRefused = false
  let seen: TestAuthServerCounters | undefined
  // The refresh calls that had arrived when the last call was decided: a later one may be
  // undecided yet (with DPoP, arrivals outnumber decisions by the challenged calls).
  let arrivedAtDecision = 0
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
      const counters = s.counters
      const { refreshSuccesses, refreshFailures, refreshCalls } = counters
      if (dpop && seen && counters.requests >= seen.requests) {
        const refused = (counters.dpopProofsRefused ?? 0) > (seen.dpopProofsRefused ?? 0)
        const failed = refreshFailures - seen.refreshFailures
        if (proofJustRefused && failed > 0) tokenProofRefusals += failed
        const replayOnly =
          (counters.dpopReplays ?? 0) > (seen.dpopReplays ?? 0) &&
          failed === 0 &&
          counters.requests === seen.requests
        proofJustRefused = refused || (proofJustRefused && replayOnly)
      }
      seen = counters
      for (; decided < refreshSuccesses + refreshFailures - tokenProofRefusals; decided += 1) {
        lastFault = faults.shift()
        arrivedAtDecision = refreshCalls
      }
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
    tokenProofRefusals = 0
    proofJustRefused = false
    seen = undefined
    arrivedAtDecision = 0
    const logStart = server.requests.length
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
      tokensOf.set(url, [...(tokensOf.get(url) ?? []), tokenIn(authorization)])
    }
    const refreshTokensSent: string[] = []
    const rotated = new Set<string>()
    let presumedLost = 0
    // DPoP: refresh tokens whose last call ended with a nonce challenge; the client's calls
    // (numbered in their bodies); calls sent again for a nonce, by the client or `dpop.fetch`.
    const askedForNonce = new Set<string>()
    let callNumber = 0
    let nonceRetries = 0
    let refreshesInTransit = 0
    let wantedRefreshes = 0
    let maxWantedRefreshes = 0
    let zeroLifetime = false
    const lifetime = <T extends TokenResponse>(tokens: T): T =>
      zeroLifetime ? { ...tokens, expiresIn: 0, expires_in: 0 } : tokens
    const channel = { name: `properties-${process.pid}-${++channels}` }
    const scheme = dpop ? 'DPoP' : 'Bearer'
    // Sessions made here, as other tabs and clients make them: with the client's scheme.
    const sessionOf = (tokens: TokenResponse, previous?: Session | null) =>
      sessionFromTokens(tokens, clock.now(), previous, 'INVALID_SESSION', scheme)
    // With DPoP, the key as the rest of the app holds it (other tabs, the other client on
    // the storage, an earlier visit): the same key pair, in a client of its own (on no
    // channel, never signed in: only its `dpop` is used), with nonces of its own.
    const elsewhereClient = keyPair
      ? createTransportClient(transport, server.url, {
          crossTab: false,
          clock: { now: clock.now, setTimeout: () => 0, clearTimeout: () => undefined },
          onWarning: (message) => violation(`warning (elsewhere): ${message}`),
          refresh: () => Promise.reject(new Error('the app elsewhere does not refresh here')),
          dpop: { keyPair },
        }).auth
      : undefined
    const elsewhere: DpopHandle | undefined = elsewhereClient?.dpop
    /** A sign-in at the server's login route, by the app elsewhere (with a proof, for DPoP). */
    const signInElsewhere = (username?: string) =>
      elsewhere ? dpopSignInAt(server.url, elsewhere, username) : signInAt(server.url, username)
    // Shared with `rotateElsewhere`, the other client on the same storage.
    const stored = memorySession()
    if (storageMode === 'restore') stored.set(sessionOf(await signInElsewhere()))
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
        ...dpopOption,
        onWarning: (message) => {
          // A storage that answers later than the clock's 3 s bound (hung; or restoring while
          // the run already advances time) is reported: expected there, nothing else is.
          const slowStorage = storageMode === 'hung' || storageMode === 'restore'
          if (slowStorage && message.startsWith('storage.get() did not answer')) {
            warnings.push(message)
          } else violation(`warning: ${message}`)
        },
        refresh: async (session, context) => {
          const { signal, attempt } = context
          const token = session.refreshToken ?? ''
          // Invariant 11: a refresh token the server answered 2xx for (rotated) never goes again.
          if (rotated.has(token))
            violation('invariant 11: a rotated refresh token was presented again')
          // DPoP: sent again at once because the token endpoint asked for a nonce (the call
          // before took nothing: no decision, token unspent). Not a lost call.
          if (askedForNonce.delete(token)) {
            nonceRetries += 1
            exercised.refreshNonceRetries = (exercised.refreshNonceRetries ?? 0) + 1
          }
          // Presented again without any answer: the call before was presumed lost (patience).
          else if (refreshTokensSent.includes(token)) presumedLost += 1
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
            callNumber += 1
            // Refusals thrown both ways, every other call: see `refreshWithProof`.
            const tokens = dpop
              ? await refreshWithProof(
                  server.url,
                  session,
                  context,
                  `main-${callNumber}`,
                  callNumber % 2 === 0,
                  (error) => {
                    if (error === 'use_dpop_nonce') askedForNonce.add(token)
                  },
                )
              : await refreshAt(server.url)(session, { signal, attempt })
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

    // DPoP: whether the machine was refreshing when the last nonce challenge reached it.
    let refreshingAtChallenge = false
    // Mostly to count what the runs exercised (the checks themselves look from outside).
    const inspection = auth.actor.system.inspect((event) => {
      if (event.actorRef !== auth.actor) return
      if (event.type === '@xstate.snapshot') {
        // Invariant D3: a nonce challenge is no verdict on the token: it never starts a refresh.
        const { type } = event.event as AuthEvent
        const snapshot = event.snapshot as SnapshotFrom<AuthMachine>
        if (
          type === 'NONCE_CHALLENGED' &&
          snapshot.matches('refreshing') &&
          !refreshingAtChallenge
        ) {
          violation('invariant D3: a nonce challenge started a refresh')
        }
        return
      }
      if (event.type !== '@xstate.event') return
      const received = event.event as AuthEvent
      const { context } = auth.actor.getSnapshot()
      if (received.type === 'NONCE_CHALLENGED') {
        refreshingAtChallenge = auth.actor.getSnapshot().matches('refreshing')
        exercised.nonceChallenges = (exercised.nonceChallenges ?? 0) + 1
        if (refreshingAtChallenge) {
          exercised.nonceChallengesWhileRefreshing =
            (exercised.nonceChallengesWhileRefreshing ?? 0) + 1
        }
      }
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
        path,
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
    let challenges = 0
    let refreshHold: HoldHandle | undefined

    const parked = (r: Tracked) =>
      (r.hold !== undefined && !r.released && r.hold.waiting() > 0) ||
      (r.challenge !== undefined && !r.challenge.released && r.challenge.hold.waiting() > 0)

    // DPoP: a proof is good for the server's iat window (60 s of its clock). One parked at the
    // server longer than that may be refused when it is let through: the world did that. Each
    // hold's first waiting request is timed (server events are seen synchronously), and a
    // release counts every request it lets through after that long.
    const parkedSince = new Map<HoldHandle, number>()
    const resent = new Set<HoldHandle>()
    let staleProofs = 0
    const watchHolds = () => {
      const watch = (hold: HoldHandle | undefined) => {
        if (!hold) return
        if (hold.waiting() === 0) parkedSince.delete(hold)
        else if (!parkedSince.has(hold)) parkedSince.set(hold, clock.now())
      }
      for (const request of requests) {
        if (!request.released) watch(request.hold)
        const { challenge } = request
        if (!challenge || challenge.released) continue
        watch(challenge.hold)
        if (challenge.hold.waiting() > 0 && !resent.has(challenge.hold)) {
          resent.add(challenge.hold)
          exercised.challengedResends = (exercised.challengedResends ?? 0) + 1
        }
      }
      watch(refreshHold)
    }
    /** Lets a hold's requests through, counting those whose proofs may be too old by now. */
    const release = (hold: HoldHandle | undefined) => {
      if (!hold) return
      const since = parkedSince.get(hold)
      // `iat` is in whole seconds: a proof may be up to 1 s older than its request.
      if (since !== undefined && clock.now() - since > IAT_WINDOW_MS - 1_000) {
        staleProofs += hold.waiting()
      }
      parkedSince.delete(hold)
      hold.release()
    }
    notify = () => {
      if (dpop) watchHolds()
      conditions.notify()
    }
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
      // Every call that arrived was decided (with DPoP, calls answered with a nonce challenge
      // are never decided: the last decision came after the last arrival).
      const allDecided = dpop
        ? arrivedAtDecision === server.counters.refreshCalls
        : decided >= server.counters.refreshCalls
      const hung =
        refreshesInTransit === 1 &&
        server.refreshInFlight >= 1 &&
        allDecided &&
        lastFault === 'hang'
      // A refresh call parked at the server (`holdRefresh`) waits for `releaseRefresh`. The
      // one the client wants must be there: not just one it gave up (the server no longer
      // counts that one in flight), or the wanted one would arrive after time moved on (and
      // with DPoP, with a proof that time made too old).
      const parkedCall =
        refreshesInTransit === 1 &&
        wantedRefreshes === 1 &&
        refreshHold !== undefined &&
        refreshHold.waiting() > 0 &&
        server.refreshInFlight >= 1
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
    // loop): a step started by a timer continues in promise jobs the checks cannot see. And
    // what turned quiet must still be quiet after them: the `refresh` function returning
    // ends its call for the checks, while the client still has the answer to take in (in
    // promise jobs: more of them with DPoP, whose answer is checked against the key). A step
    // taken in between acts where only code queued in those same jobs could; what the client
    // does then is pinned down in dpop-repro.test.ts, not left to the runs' timing.
    const settle = async (what: string) => {
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve))
        if (quiet()) return
        await conditions.until(quiet, () => {
          const snapshot = auth.actor.getSnapshot()
          const lost = requests.filter((r) => r.settled === 0 && !parked(r)).length
          return `quiet after ${what}: in ${JSON.stringify(snapshot.value)}, ${lost} request(s) neither settled nor parked, ${snapshot.context.queue.length} queued, ${refreshesInTransit} refresh call(s) in transit (a request that never settles breaks invariant 2)`
        })
      }
    }

    /**
     * The app's own login call, to the server's login route (not through `http`); with DPoP
     * through `auth.dpop`, as the app signs in.
     */
    const signIn = (username?: string) =>
      dpop ? dpopSignInAt(server.url, auth.dpop, username) : signInAt(server.url, username)

    const otherTab = () =>
      createTransportClient(transport, server.url, {
        crossTab: channel,
        clock: { now: clock.now, setTimeout: () => 0, clearTimeout: () => undefined },
        onWarning: (message) => violation(`warning (other tab): ${message}`),
        refresh: () => Promise.reject(new Error('the other tab does not refresh here')),
        ...dpopOption,
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
          return auth.login(lifetime(await signIn(`user${sequence}`)))
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
          release(refreshHold)
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
          const other = sessionOf(lifetime(await signInElsewhere('other')))
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
          // Its calls are counted by the server even when refused; with DPoP there may be two
          // (its first proof may lack the nonce). Nothing else moves meanwhile: quiet.
          const callsBefore = server.counters.refreshCalls
          try {
            const context = { signal: new AbortController().signal, attempt: 1 }
            const tokens = elsewhere
              ? await refreshWithProof(
                  server.url,
                  current,
                  { ...context, dpop: elsewhere },
                  'other',
                  true,
                )
              : await refreshAt(server.url)(current, context)
            // The same sign-in, refreshed by the other client (it keeps the session's id).
            const session = sessionOf(lifetime(tokens), current)
            stored.set(session)
            rotatedTo.add(session.accessToken)
          } catch {
            // The server refused (a queued fault, a revocation): nothing was rotated.
          } finally {
            rotations += Math.max(1, server.counters.refreshCalls - callsBefore)
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
          // Ends with a slash: no other hold's path starts with it.
          const path = `/api/slow/${holds}/`
          track(path, server.hold(path))
          return
        }
        case 'release': {
          const oldest = requests.find((r) => r.hold && !r.released)
          if (!oldest) return
          oldest.released = true
          return release(oldest.hold)
        }
        case 'rotateNonce':
          if (dpop) server.rotateDpopNonce()
          return
        case 'challenge': {
          if (!dpop) return
          // On a path of its own, so the challenge meets this request and no other, and its
          // hold parks only what this request sends next.
          const parkedOne = requests.find((r) => !r.challenge && parked(r))
          const path = parkedOne?.path ?? `/api/challenged/${++challenges}/`
          const challenge = { hold: server.challengeDpopNonce(path), released: false }
          const target = parkedOne ?? track(path, command.parked ? server.hold(path) : undefined)
          target.challenge = challenge
          return
        }
        case 'releaseChallenge': {
          const oldest = requests.find((r) => r.challenge && !r.challenge.released)
          if (!oldest?.challenge) return
          oldest.challenge.released = true
          return release(oldest.challenge.hold)
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
          // The other tab signs in with the app's key (its own sign-in, its own nonces).
          const tokens = await signInElsewhere()
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
          const session = sessionOf(lifetime(await signInElsewhere()), current)
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

    // The server's log of this run, checked as it grows.
    let logChecked = logStart
    const sendsOf = new Map<string, number>() // protected request (its URL) → times sent
    const jtis = new Set<string>()
    // The client's refresh calls (their `call`) → the nonce of the last proof sent for each.
    const nonceOfCall = new Map<string, unknown>()
    let fetchNonceRetries = 0
    /** Sends: the first, one replay; with DPoP, each may be sent once more for a nonce. */
    const maxSends = dpop ? 4 : 2
    function checkLog(): void {
      // The log is the server's whole life: copied only when this run added to it.
      if (logStart + server.counters.requests <= logChecked) return
      const log = server.requests
      for (; logChecked < log.length; logChecked += 1) {
        const entry = log[logChecked] as LoggedRequest
        if (entry.method === 'OPTIONS') continue
        const isProtected = entry.path.startsWith('/api/')
        if (isProtected) {
          // Invariant 2, as the server sees it: a request is replayed once at most.
          const url = `${entry.path}?${entry.query}`
          const sends = (sendsOf.get(url) ?? 0) + 1
          sendsOf.set(url, sends)
          if (sends > maxSends) violation(`invariant 2: a request went out ${sends} times`)
        }
        if (!dpop) continue
        // Invariant D1: every token leaves as DPoP, with a proof made for it and this request;
        // no proof leaves without its token, none twice.
        const { authorization } = entry
        let problem: string | undefined
        if (isProtected && authorization !== undefined) {
          const [scheme = '', token] = authorization.split(' ')
          if (scheme !== 'DPoP' || token === undefined) {
            problem = `a token left as ${scheme || 'nothing'}, not DPoP`
          } else {
            problem = proofProblem(entry, server.url, token)
            exercised.requestsWithProof = (exercised.requestsWithProof ?? 0) + 1
          }
        } else if (isProtected) {
          if (entry.dpop !== undefined) problem = 'a proof left without its token'
        } else if (entry.path === '/auth/refresh' || entry.path === '/auth/login') {
          problem = proofProblem(entry, server.url)
        }
        if (problem) violation(`invariant D1: ${problem} (${entry.method} ${entry.path})`)
        const jti = entry.dpop === undefined ? undefined : decodeJwt(entry.dpop)?.payload.jti
        if (typeof jti === 'string') {
          if (jtis.has(jti)) violation(`invariant D1: a proof went out twice (${entry.path})`)
          jtis.add(jti)
        }
        // The client's refresh calls: `dpop.fetch` sends one again only when the server asked
        // for a nonce, and then with the new nonce.
        const call = entry.path === '/auth/refresh' ? callOf(entry) : undefined
        if (call?.startsWith('main-') && entry.dpop !== undefined) {
          const nonce = decodeJwt(entry.dpop)?.payload.nonce
          if (nonceOfCall.has(call)) {
            fetchNonceRetries += 1
            exercised.refreshNonceRetries = (exercised.refreshNonceRetries ?? 0) + 1
            if (nonceOfCall.get(call) === nonce) {
              violation('invariant D3: a refresh call went out again without a new nonce')
            }
          }
          nonceOfCall.set(call, nonce)
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
      checkLog()
      // Invariant 3, counted: each call is the first of a justified episode or a retry after
      // a failed call.
      const { refreshCalls, refreshFailures } = server.counters
      // A call presumed lost (past its patience) is replaced within the same episode. With
      // DPoP, a token endpoint's nonce challenge (no decision, nothing spent) is answered by
      // one more call at once (`dpop.fetch`'s, or the client's own): one per challenge.
      const nonceCalls = nonceRetries + fetchNonceRetries
      if (
        refreshCalls >
        episodes + refreshFailures + rotatedElsewhere() + presumedLost + nonceCalls
      ) {
        violation(
          `invariant 3: ${refreshCalls} refresh calls for ${episodes} episodes and ${refreshFailures} failed calls${dpop ? ` (${nonceCalls} sent again for a nonce)` : ''}`,
        )
      }
      if (dpop) {
        // Invariant D2: the server refuses no proof the client made, and never sees one
        // twice; only a request the world parked past the iat window may come too late.
        const { dpopProofsRefused = 0, dpopReplays = 0 } = server.counters
        if (dpopReplays > 0) violation(`invariant D2: ${dpopReplays} proof(s) replayed`)
        if (dpopProofsRefused > staleProofs) {
          violation(
            `invariant D2: ${dpopProofsRefused} proof(s) refused, ${staleProofs} parked past the iat window`,
          )
        }
      }
      // Invariant 7: nothing leaves with a token held before a logout.
      for (const authorization of sentAuthorizations.slice(sentMark)) {
        const token = tokenIn(authorization)
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
        release(request.hold)
        if (request.challenge) {
          request.challenge.released = true
          release(request.challenge.hold)
        }
      }
      release(refreshHold)
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
      elsewhereClient?.dispose()
      server.releaseHung()
      for (const request of requests) {
        request.hold?.release()
        request.challenge?.hold.release()
      }
      refreshHold?.release()
      await server.waitFor((s) => s.refreshInFlight === 0)
    }
  }

  return {
    server,
    variant,
    exercised,
    run,
    async close() {
      notify = () => undefined
      await server.close()
    },
  }
}
