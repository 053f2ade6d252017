import { createClient } from 'redis'
import { expect } from 'vitest'
import type { AuthContext, QueuedRequest } from '../../machines/index.js'
import type { Session } from '../../machines/types.js'
import { encodeSession } from '../../src/coordination/redis/record.js'
import { WRITE } from '../../src/coordination/redis/scripts.js'
import type { Coordination } from '../../src/coordination/types.js'
import {
  LoggedOutError,
  memorySession,
  RefreshFailedError,
  RefreshTimeoutError,
  SessionExpiredError,
  type TokenStorage,
} from '../../src/index.js'
import { redisCoordinator } from '../../src/redis.js'
import { sessionFromTokens } from '../../src/session.js'
import {
  createTestAuthServer,
  type HoldHandle,
  type RefreshFaultKind,
  type TestAuthServer,
  type TokenSet,
} from '../../src/testing/index.js'
import { dpopRefreshAt, dpopSignInAt, refreshAt, signInAt } from '../helpers.js'
import {
  ACCESS_TTL_SECONDS,
  MODEL_START,
  MODEL_TIMING,
  type ModelPath,
  type ModelStep,
  REFRESH_TTL_SECONDS,
  SLEEP,
} from './paths.mjs'
import {
  createConditions,
  createSleepableClock,
  createTransitionLog,
  type SleepableClock,
  watchdog,
} from './support.js'
import { createTransportClient, type Outcome, type Transport } from './transports.js'

/** How a refresh call ends, read ahead in the path before it is sent. */
type CallEnd = 'done' | 'rejected' | 'transient' | 'late' | 'abandoned' | 'superseded' | 'open'

const REJECTIONS = [401, 400, 403, 'revoke', 'malformed', 'malformed-json'] as const
const TRANSIENTS: readonly RefreshFaultKind[] = [500, 503, 429, 'reset']

interface Call {
  id: number
  end: CallEnd
  /** How the server is made to end it, for the report. */
  how: string
  /** Parks the refresh call at the server until the path says how it ends. */
  hold: HoldHandle | undefined
  revoke: boolean
}

interface Tracked {
  url: string
  controller: AbortController
  settled: number
  outcome?: Outcome
  /** A probe parked at the server, to be answered 401 when the path says. */
  hold?: HoldHandle
  held: boolean
  /** A probe a DPoP nonce challenge sent back: its second send is parked at the server. */
  challenged?: true
}

let channels = 0

/**
 * Where the other clients of the session live: other tabs (BroadcastChannel, the default
 * coordinator's) or other processes sharing a Redis at `redisUrl`.
 */
export type Elsewhere = { kind: 'tabs' } | { kind: 'redis'; redisUrl: string }

interface OtherClients {
  /** The coordination option of every client of the session. */
  options: { crossTab: { name: string } } | { coordinator: ReturnType<typeof redisCoordinator> }
  /**
   * Another client got `session` by a refresh (of this sign-in or a crossing one), once it
   * has seen `predecessor`, the access token it refreshed.
   */
  refreshed(
    session: Session,
    predecessor: string | undefined,
    now: () => number,
    signIn: 'same' | 'other',
  ): Promise<void>
  close(): void
}

function otherClients(elsewhere: Elsewhere): OtherClients {
  const name = `model-${process.pid}-${++channels}`
  if (elsewhere.kind === 'tabs') {
    return {
      options: { crossTab: { name } },
      async refreshed(session) {
        const channel = new BroadcastChannel(`${name}:session`)
        channel.postMessage({ type: 'session', reason: 'refresh', session })
        channel.close()
      },
      close: () => undefined,
    }
  }
  const coordinator = redisCoordinator({ url: elsewhere.redisUrl, key: name })
  // Another process, which learns sessions only from Redis, as a real one does.
  let other: Coordination | undefined
  let held: Session | null = null
  const seen = new Set<string>()
  const news = new Set<() => void>()
  const open = (now: () => number): Coordination => {
    other ??= coordinator.open({
      deliver: (message) => {
        if (message.type === 'session') seen.add(message.session.accessToken)
        for (const wake of news) wake()
      },
      current: () => held,
      now,
      warn: (message) => {
        throw new Error(`the other process warned: ${message}`)
      },
      refreshTimeout: MODEL_TIMING.refreshTimeout,
      attachTo: [],
      storage: memorySession(),
    })
    return other
  }
  return {
    options: { coordinator },
    // Another process's refresh, as its driver writes and announces it: of a session it has
    // seen in Redis, never of one it could not know yet. Another sign-in's refresh crossing
    // this one's login can only be a write at a version already taken: the version check
    // refuses it, and no process hears of it.
    async refreshed(session, predecessor, now, signIn) {
      if (signIn === 'other') return crossing(elsewhere.redisUrl, name, session, now)
      const peer = open(now)
      const restored = await peer.restore(null)
      if (restored) seen.add(restored.accessToken)
      if (predecessor !== undefined && !seen.has(predecessor)) {
        await watchdog(
          new Promise<void>((resolve) => {
            const wake = () => {
              if (!seen.has(predecessor)) return
              news.delete(wake)
              resolve()
            }
            news.add(wake)
          }),
          'the other process to see the session it refreshes',
        )
      }
      held = session
      await peer.announce({ type: 'session', reason: 'refresh', session })
    },
    close: () => other?.close(),
  }
}

/** A write of `session` as a refresh at the record's current version, which must be refused. */
async function crossing(url: string, key: string, session: Session, now: () => number) {
  const raw = createClient({ url })
  await raw.connect()
  try {
    const record = `${key}:record`
    const version = String((await raw.sendCommand(['HGET', record, 'v'])) ?? '0')
    const data = encodeSession(session, now())
    const args = [version, 's', data, 'r', `${key}:events`, 'crossing', session.id ?? '']
    const reply = await raw.sendCommand(['EVAL', WRITE, '1', record, ...args])
    if (Number(reply) !== 0) throw new Error('a crossing write was not refused')
  } finally {
    raw.destroy()
  }
}

/** An error in a line: class, code and HTTP status, never the whole request object. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const { code, status, response } = error as {
    code?: unknown
    status?: unknown
    response?: { status?: unknown }
  }
  return `${error.constructor.name}(${[code, status ?? response?.status].filter((x) => x !== undefined).join(', ')})`
}

/** How the real client ends up after a path, for the coverage report. */
export interface ClientRun {
  transitions: string[]
  /** One line per attempt: how the server ended it. */
  attempts: string[]
}

/** How the call sent at step `from` ends, and at which step. */
function callEnd(steps: ModelStep[], from: number): { end: CallEnd; at: number } {
  const id = steps[from]?.call.sent
  for (let at = from + 1; at < steps.length; at += 1) {
    const step = steps[at] as ModelStep
    if (step.call.superseded === id) return { end: 'superseded', at }
    if (step.call.ended !== id) continue
    const { event } = step
    if (event.type === 'xstate.done.actor.refresh') return { end: 'done', at }
    if (event.type === 'xstate.error.actor.refresh') return { end: event.failure, at }
    if (event.type === 'REFRESH_ANSWERED') return { end: 'late', at }
    return { end: 'abandoned', at }
  }
  return { end: 'open', at: steps.length }
}

/** The step after which the client first holds a token of `generation`. */
function creationOf(steps: ModelStep[], generation: number): number {
  const index = steps.findIndex((s) => s.after.snapshot.context.generation === generation)
  const step = steps[index]
  if (!step?.after.snapshot.matches('authenticated')) {
    throw new Error(`the model sends a 401 for generation ${generation}, never held by the client`)
  }
  return index
}

const comparable = (context: AuthContext, pathOf: (url: string) => string) => ({
  generation: context.generation,
  epoch: context.epoch,
  attempt: context.attempt,
  queue: context.queue.map(({ method, url, enqueuedAt }) => ({
    method,
    url: pathOf(url),
    enqueuedAt,
  })),
  session: context.session && {
    obtainedAt: context.session.obtainedAt,
    expiresAt: context.session.expiresAt,
    refreshToken: typeof context.session.refreshToken,
  },
  error: context.error?.code ?? null,
})

/**
 * Which fault each path's first rejected / transient attempt uses, so that the paths together
 * cycle through every kind: the count of such attempts in the paths before it.
 */
export function faultOffsets(paths: ModelPath[]): FaultOffsets[] {
  const offsets: FaultOffsets[] = []
  const next = { rejected: 0, transient: 0 }
  for (const path of paths) {
    offsets.push({ ...next })
    for (const [index, step] of path.steps.entries()) {
      if (step.call.sent === undefined) continue
      const { end } = callEnd(path.steps, index)
      if (end === 'rejected' || end === 'transient') next[end] += 1
    }
  }
  return offsets
}

export interface FaultOffsets {
  rejected: number
  transient: number
}

/**
 * Executor (b): the real client against the real token server on 127.0.0.1, its requests
 * sent through `transport` (an axios instance, or `auth.fetch` of the fetch-only entry),
 * every model event produced the way an app, a server or another tab produces it:
 *
 * - `LOGIN`: a login at the server, then `auth.login(tokens)`; `LOGOUT`: `auth.logout()`;
 *   `WAKE`: `auth.wake()`;
 * - `TOKEN_NEEDED`: a request while refreshing, or after the device slept past expiry;
 * - `TOKEN_REJECTED`: a probe request sent with that generation's token and parked at the
 *   server (`hold`), answered 401 when the path says (expired, or a stale generation);
 * - `NONCE_CHALLENGED` (with `dpopKey`): such a probe answered with a DPoP nonce challenge
 *   (`challengeDpopNonce`); the request the client sends again is parked at the server;
 * - `REQUEST_ABORTED`: the `AbortController` of the oldest queued request;
 * - `SESSION_SYNCED` / `SESSION_ENDED`: another tab (the same `crossTab` channel) or another process (the same Redis key) refreshes or logs
 *   in / out;
 * - the refresh call: parked at the server (`hold`) and released when the path says, with a
 *   queued fault for a failure (401/400/403 or a revocation; 500/503/429/reset/malformed);
 *   `'hang'` for a timeout;
 * - timers: `clock.advance`; `clock.sleep`: time passes without timers.
 *
 * After every step: the transition taken, state, context, the server's refresh count (one
 * per attempt the model starts), settled requests and how, timers armed.
 */
export async function runOnClient(
  path: ModelPath,
  offsets: FaultOffsets = { rejected: 0, transient: 0 },
  transport: Transport = 'axios',
  elsewhere: Elsewhere = { kind: 'tabs' },
  dpopKey?: CryptoKeyPair,
): Promise<ClientRun> {
  const faults = { ...offsets }
  const clock: SleepableClock = createSleepableClock(MODEL_START)
  const server: TestAuthServer = await createTestAuthServer({
    now: clock.now,
    accessTokenTtl: ACCESS_TTL_SECONDS,
    refreshTokenTtl: REFRESH_TTL_SECONDS,
    ...(dpopKey ? { dpop: { nonce: 'resource' } } : {}),
  })
  // One key for this client and the others: tabs and processes share the app's key pair.
  const dpop = dpopKey ? { dpop: { keyPair: dpopKey } } : {}
  const conditions = createConditions()
  const log = createTransitionLog(conditions.notify)
  const others = otherClients(elsewhere)
  const warnings: string[] = []
  // A path that starts with RESTORED finds a session in storage, read when the path says.
  const restoring = path.steps[0]?.event.type === 'RESTORED'
  let restore: (session: TokenSet) => void = () => undefined
  const stored = memorySession()
  const storage: TokenStorage = {
    get: () =>
      restoring
        ? new Promise<TokenSet>((resolve) => {
            restore = resolve
          }).then((tokens) =>
            sessionFromTokens(
              tokens,
              clock.now(),
              undefined,
              'INVALID_SESSION',
              dpopKey ? 'DPoP' : 'Bearer',
            ),
          )
        : null,
    set: (session) => stored.set(session),
    remove: () => stored.remove(),
  }
  const client = createTransportClient(transport, server.url, {
    clock,
    storage,
    ...others.options,
    refreshMargin: MODEL_TIMING.refreshMargin,
    refreshTimeout: MODEL_TIMING.refreshTimeout,
    retry: MODEL_TIMING.retry,
    onWarning: (message) => warnings.push(message),
    refresh: dpopKey ? dpopRefreshAt(server.url) : refreshAt(server.url),
    ...dpop,
  })
  const { auth, pathOf } = client
  log.follow(auth.actor)
  const inspection = auth.actor.system.inspect(log.inspect)
  // The sign-in last held: another client may still refresh it after this one's refresh was
  // refused (expired holds no session).
  let lastHeld: Session | null = null
  const subscription = auth.actor.subscribe((snapshot) => {
    lastHeld = snapshot.context.session ?? lastHeld
    conditions.notify()
  })
  if (!restoring) await auth.ready

  const steps = path.steps
  const tracked = new Map<string, Tracked>()
  const calls = new Map<number, Call>()
  const report: string[] = []
  let answered = 0 // refresh calls the server has answered (or hung), as the path expects

  const track = (url: string, hold?: HoldHandle): Tracked => {
    const request: Tracked = {
      url,
      controller: new AbortController(),
      settled: 0,
      held: hold !== undefined,
      ...(hold ? { hold } : {}),
    }
    tracked.set(url, request)
    client.get(url, request.controller.signal).then((outcome) => {
      request.settled += 1
      request.outcome = outcome
      conditions.notify()
    })
    return request
  }

  /** The app's own login call, to the server's login route (with a proof, for DPoP). */
  const appSignIn = () => (dpopKey ? dpopSignInAt(server.url, auth.dpop) : signInAt(server.url))

  /**
   * Another tab's or process's news, as it reaches this one: a refreshed session, of this
   * sign-in or of another one.
   */
  const refreshedElsewhere = async (signIn: 'same' | 'other'): Promise<void> => {
    const current = auth.actor.getSnapshot().context.session ?? lastHeld
    const session = sessionFromTokens(
      await appSignIn(),
      clock.now(),
      signIn === 'same' ? current : undefined,
      'INVALID_SESSION',
      dpopKey ? 'DPoP' : 'Bearer',
    )
    await others.refreshed(session, current?.accessToken, clock.now, signIn)
  }

  /** Another tab or process, which never runs a timer or a refresh of its own. */
  const otherTab = () =>
    createTransportClient(transport, server.url, {
      ...others.options,
      clock: { now: clock.now, setTimeout: () => 0, clearTimeout: () => undefined },
      onWarning: (message) => warnings.push(message),
      refresh: () => Promise.reject(new Error('the other tab does not refresh in these paths')),
      ...dpop,
    }).auth

  // Server events re-check what the steps wait for, as snapshots and settlements do.
  server
    .waitFor(() => {
      conditions.notify()
      return false
    })
    .catch(() => undefined)
  const queuedUrls = () => auth.actor.getSnapshot().context.queue.map((r) => pathOf(r.url))
  // A call the client keeps on the wire counts at the server until it is answered or its
  // socket's close reaches the server.
  let onTheWire = 0
  const quiet = () =>
    [...tracked.values()].every((r) => r.settled > 0 || r.held || queuedUrls().includes(r.url)) &&
    server.refreshInFlight <= onTheWire
  const urlOf = new Map<string, string>()
  for (const step of steps) {
    const request = (step.machineEvent as { request?: QueuedRequest } | null)?.request
    if (request) urlOf.set(request.id, request.url)
  }

  // 401 probes: each sent right after the client first holds its generation's token.
  const probesAfter = new Map<number, string[]>()
  // A stale 401 needs the old token dead and the current one alive: expire all tokens just
  // before the next generation is issued.
  const expireBefore = new Set<number>()
  for (const step of steps) {
    if (step.machineEvent?.type === 'NONCE_CHALLENGED') {
      // The probe carried the current token, or the last one of the epoch it names.
      const { epoch, request } = step.machineEvent
      const { context } = step.before.snapshot
      const generation =
        epoch === context.epoch
          ? context.generation
          : step.before.held.filter((h) => h.epoch === epoch).at(-1)?.generation
      if (generation === undefined) throw new Error(`no token of epoch ${epoch} was held`)
      const created = creationOf(steps, generation)
      probesAfter.set(created, [...(probesAfter.get(created) ?? []), request.url])
      continue
    }
    if (step.machineEvent?.type !== 'TOKEN_REJECTED') continue
    const { generation, request } = step.machineEvent
    const created = creationOf(steps, generation)
    probesAfter.set(created, [...(probesAfter.get(created) ?? []), request.url])
    if (step.event.type === 'TOKEN_REJECTED' && step.event.generation !== 'current') {
      expireBefore.add(creationOf(steps, generation + 1))
    }
  }

  const callOf = (id: number | undefined) => {
    const call = id === undefined ? undefined : calls.get(id)
    if (!call) throw new Error(`no refresh call ${id} was sent`)
    return call
  }

  async function perform(
    step: ModelStep,
    index: number,
    transitionTaken: () => Promise<void>,
  ): Promise<void> {
    const { event, machineEvent } = step
    if (expireBefore.has(index)) server.expireAccessTokens()
    switch (event.type) {
      case SLEEP:
        return clock.sleep(step.delta)
      case 'LOGIN':
        return auth.login(await appSignIn())
      case 'RESTORED':
        return restore(await appSignIn())
      case 'LOGOUT':
        return auth.logout()
      case 'WAKE':
        return auth.wake()
      case 'TOKEN_NEEDED':
        if (machineEvent?.type === 'TOKEN_NEEDED') track(machineEvent.request.url)
        return
      case 'TOKEN_REJECTED': {
        if (machineEvent?.type !== 'TOKEN_REJECTED') return
        const probe = tracked.get(machineEvent.request.url)
        if (!probe?.hold) throw new Error(`no probe was sent for ${machineEvent.request.url}`)
        if (event.generation === 'current') server.expireAccessTokens()
        probe.held = false
        return probe.hold.release()
      }
      case 'NONCE_CHALLENGED': {
        if (machineEvent?.type !== 'NONCE_CHALLENGED') return
        const probe = tracked.get(machineEvent.request.url)
        if (!probe?.hold) throw new Error(`no probe was sent for ${machineEvent.request.url}`)
        const parked = probe.hold
        // The server asks for a new nonce; what the client sends again waits at the server.
        probe.hold = server.challengeDpopNonce(probe.url)
        probe.challenged = true
        // Sent again only for this session: at once, or after the refresh that runs.
        probe.held = event.generation === 'current'
        parked.release()
        if (step.before.snapshot.matches('authenticated') && event.generation === 'current') {
          await transitionTaken()
          await watchdog(probe.hold.untilWaiting(1), `${probe.url} sent again with the nonce`)
        }
        return
      }
      case 'REQUEST_ABORTED': {
        const first = step.before.snapshot.context.queue[0]
        const request = first && tracked.get(first.url)
        if (!request) throw new Error('nothing to abort')
        return request.controller.abort()
      }
      case 'SESSION_SYNCED':
        return refreshedElsewhere(event.signIn)
      case 'SESSION_ENDED': {
        const tab = otherTab()
        await tab.logout()
        return transitionTaken().finally(() => tab.dispose())
      }
      case 'xstate.done.actor.refresh':
      case 'xstate.error.actor.refresh':
      case 'REFRESH_ANSWERED': {
        const call = callOf(step.call.ended)
        if (!call.hold) throw new Error(`refresh call ${call.id} is not parked at the server`)
        if (call.revoke) server.revokeSessions()
        answered += 1
        return call.hold.release()
      }
      default:
        // A timer: time passes awake.
        return clock.advance(step.delay)
    }
  }

  /** Before a step that sends a call: arrange at the server how the path ends it. */
  function prepareCall(index: number, id: number): void {
    const { end } = callEnd(steps, index)
    const call: Call = { id, end, how: end, hold: undefined, revoke: false }
    if (end === 'superseded') {
      // Past its patience the client presumes it lost: a connection that never answers.
      server.failNextRefresh('hang')
      call.how = 'superseded (hang)'
    } else {
      call.hold = server.hold('/auth/refresh')
      if (end === 'rejected') {
        const kind = REJECTIONS[faults.rejected++ % REJECTIONS.length] ?? 401
        if (kind === 'revoke') call.revoke = true
        else server.failNextRefresh(kind)
        call.how = `rejected (${kind})`
      }
      if (end === 'transient') {
        const kind = TRANSIENTS[faults.transient++ % TRANSIENTS.length] ?? 500
        server.failNextRefresh(kind)
        call.how = `transient (${kind})`
      }
      if (end === 'late') call.how = 'answered after its attempt timed out'
    }
    calls.set(id, call)
    report.push(call.how)
  }

  /** After a step that sent a call: it must have reached the server. */
  async function callArrived(id: number): Promise<void> {
    const call = callOf(id)
    await watchdog(
      server.waitFor((s) => s.counters.refreshCalls >= id),
      `refresh call ${id} at the server`,
    )
    if (call.hold) {
      await watchdog(call.hold.untilWaiting(1), `refresh call ${id} parked`)
    } else {
      answered += 1 // a hang is consumed on arrival
      await watchdog(
        server.waitFor((s) => s.counters.refreshFailures + s.counters.refreshSuccesses >= answered),
        `refresh call ${id} hanging`,
      )
    }
  }

  /** After a step that cancelled a call (the session ended): let the server have it. */
  async function releaseAbandoned(id: number): Promise<void> {
    const call = callOf(id)
    if (!call.hold) return
    call.hold.release()
    answered += 1
    await watchdog(
      server.waitFor((s) => s.counters.refreshFailures + s.counters.refreshSuccesses >= answered),
      'the abandoned refresh call to be answered',
    )
  }

  async function expectOutcome(url: string, outcome: 'released' | string, where: string) {
    const request = tracked.get(url)
    if (outcome === 'released' && request?.challenged && request.hold) {
      // Sent again with the nonce, and parked at the server until the end of the path.
      await watchdog(request.hold.untilWaiting(1), `${url} sent again with the nonce`)
      expect(request.settled, `${where}: ${url} waits at the server`).toBe(0)
      return
    }
    if (request?.challenged) request.held = false
    expect(request?.settled, `${where}: ${url} settled once`).toBe(1)
    const ended = request?.outcome
    const status = ended && 'status' in ended ? ended.status : undefined
    const error = ended && 'error' in ended ? ended.error : undefined
    if (outcome === 'released') {
      // Released requests go out (again) with the current token: they succeed when the
      // server still takes it, else the replay's 401 reaches the app as it is (replayed once).
      const token = auth.actor.getSnapshot().context.session?.accessToken
      const valid = token !== undefined && server.verifyAccessToken(token) !== null
      expect(status ?? describeError(error), `${where}: ${url} released`).toBe(valid ? 200 : 401)
      return
    }
    const expected = {
      LOGGED_OUT: error instanceof LoggedOutError,
      SESSION_EXPIRED: error instanceof SessionExpiredError,
      REFRESH_FAILED:
        error instanceof RefreshFailedError && !(error instanceof RefreshTimeoutError),
      REFRESH_TIMEOUT: error instanceof RefreshTimeoutError,
      CANCELED: request !== undefined && client.isAbort(error, request.controller.signal),
    }[outcome]
    expect(
      expected,
      `${where}: ${url} rejected with ${outcome}, got ${status ?? describeError(error)}`,
    ).toBe(true)
  }

  let lastToken: string | undefined
  let lastGeneration = 0
  async function walk(): Promise<ClientRun> {
    for (const [index, step] of steps.entries()) {
      const where = `step ${index + 1} (${step.took}) of ${path.name}`
      const takenBefore = log.taken.length
      const expectedTaken = takenBefore + (step.transitions.length > 0 ? 1 : 0)
      const transitionTaken = () =>
        conditions.until(
          () => log.taken.length >= expectedTaken,
          () => `the transition of ${where}`,
        )
      const { sent, superseded, ended } = step.call
      if (superseded !== undefined) {
        // The server notices a cancelled call only when its socket's close arrives, which can
        // be after the new call: end the hung one first so the count stays exact.
        server.releaseHung()
        await watchdog(
          server.waitFor((s) => s.refreshInFlight === 0),
          'the presumed-lost call to end',
        )
      }
      if (sent !== undefined) prepareCall(index, sent)

      await perform(step, index, transitionTaken)

      await transitionTaken()
      if (sent !== undefined) await callArrived(sent)
      if (ended !== undefined && calls.get(ended)?.end === 'abandoned') {
        await releaseAbandoned(ended)
      }
      onTheWire = step.after.call ? 1 : 0
      for (const url of probesAfter.get(index) ?? []) {
        const hold = server.hold(url)
        track(url, hold)
        await watchdog(hold.untilWaiting(1), `the probe ${url} parked at the server`)
      }
      await conditions.until(quiet, () => `the requests of ${where} to settle or wait`)

      // The same transition as the model, nothing more.
      expect(log.taken.slice(takenBefore), where).toEqual(
        step.transitions.length > 0 ? [step.transitions] : [],
      )
      const snapshot = auth.actor.getSnapshot()
      const expected = step.after.snapshot
      expect(snapshot.value, where).toEqual(expected.value)
      expect(comparable(snapshot.context, pathOf), where).toEqual(
        comparable(expected.context, pathOf),
      )
      expect(clock.now(), where).toBe(step.after.now)
      expect(clock.pending(), `${where}: timers armed`).toBe(Object.keys(step.after.timers).length)
      // A refresh call reaches the server exactly when the model sends one: a retry joins
      // the call a timeout left on the wire while it is within its patience.
      expect(server.counters.refreshCalls, `${where}: refresh calls`).toBe(step.after.calls)
      expect(server.maxConcurrentRefreshes, where).toBeLessThanOrEqual(1)
      // The token changes exactly with the generation.
      const token = snapshot.context.session?.accessToken
      if (snapshot.context.generation !== lastGeneration) expect(token, where).not.toBe(lastToken)
      else if (token !== undefined && lastToken !== undefined) expect(token, where).toBe(lastToken)
      lastToken = token ?? lastToken
      lastGeneration = snapshot.context.generation

      // Requests settle as the machine said: released ones succeed, rejected ones get the
      // error class of the machine's code.
      for (const emitted of step.emitted) {
        if (emitted.type === 'requestsReleased') {
          for (const id of emitted.ids) {
            await expectOutcome(urlOf.get(id) ?? id, 'released', where)
          }
        }
        if (emitted.type === 'requestsRejected') {
          for (const id of emitted.ids) {
            await expectOutcome(urlOf.get(id) ?? id, emitted.error.code, where)
          }
        }
      }
    }
    // What the model still has queued is still waiting; everything else settled once.
    const queued = new Set(steps.at(-1)?.after.snapshot.context.queue.map((r) => r.url) ?? [])
    for (const request of tracked.values()) {
      const waiting = queued.has(request.url) || request.held
      expect(request.settled, `${request.url} at the end of the path`).toBe(waiting ? 0 : 1)
    }
    return { transitions: log.all(), attempts: report }
  }

  /** Not part of the path: stop recording, end the session, let everything go, then check. */
  async function cleanUp(afterFailure: boolean): Promise<void> {
    log.stop()
    inspection.unsubscribe()
    try {
      await auth.logout()
      for (const call of calls.values()) call.hold?.release()
      for (const request of tracked.values()) request.hold?.release()
      server.releaseHung()
      if (afterFailure) return
      await conditions.until(
        () => [...tracked.values()].every((r) => r.settled > 0),
        () => 'every request to settle after the path',
      )
    } finally {
      subscription.unsubscribe()
      others.close()
      auth.dispose()
      await server.close()
    }
  }

  let run: ClientRun
  try {
    run = await walk()
  } catch (error) {
    await cleanUp(true).catch(() => undefined)
    throw error
  }
  await cleanUp(false)
  // Invariants 1 and 2 over the whole run, cleanup included; rotation never tripped.
  expect(server.maxConcurrentRefreshes, 'at most one refresh in flight').toBeLessThanOrEqual(1)
  for (const request of tracked.values()) expect(request.settled, request.url).toBe(1)
  expect(server.counters.reuseDetections, 'no refresh token spent twice').toBe(0)
  expect(warnings).toEqual([])
  return run
}
