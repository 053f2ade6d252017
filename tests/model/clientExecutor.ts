import axios, { isCancel } from 'axios'
import { expect } from 'vitest'
import type { AuthContext, QueuedRequest } from '../../machines/index.js'
import {
  type AuthClient,
  createAuthClient,
  LoggedOutError,
  RefreshFailedError,
  RefreshTimeoutError,
  SessionExpiredError,
} from '../../src/index.js'
import {
  createTestAuthServer,
  type HoldHandle,
  type RefreshFaultKind,
  type TestAuthServer,
} from '../../src/testing/index.js'
import { refreshAt, signInAt } from '../helpers.js'
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

/** How an attempt of the refresh call ends, read ahead in the path before it starts. */
type AttemptEnd = 'done' | 'rejected' | 'transient' | 'timeout' | 'abandoned' | 'open'

const REJECTIONS = [401, 400, 403, 'revoke'] as const
const TRANSIENTS: readonly RefreshFaultKind[] = [
  500,
  503,
  429,
  'reset',
  'malformed',
  'malformed-json',
]

interface Attempt {
  end: AttemptEnd
  /** How the server is made to end it, for the report. */
  how: string
  /** Parks the refresh call at the server until the path says how it ends. */
  hold: HoldHandle | undefined
  revoke: boolean
  /** The attempt joined the call a timed-out attempt left on the wire: no new call. */
  joined: boolean
}

interface Tracked {
  url: string
  controller: AbortController
  settled: number
  status?: number
  error?: unknown
  /** A probe parked at the server, to be answered 401 when the path says. */
  hold?: HoldHandle
  held: boolean
}

let channels = 0

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

function attemptEnd(steps: ModelStep[], from: number): AttemptEnd {
  for (const step of steps.slice(from + 1)) {
    if (!step.stopped) continue
    const { event } = step
    if (event.type === 'xstate.done.actor.refresh') return 'done'
    if (event.type === 'xstate.error.actor.refresh') return event.failure
    if (event.type.startsWith('xstate.after.refreshTimeout.')) return 'timeout'
    return 'abandoned'
  }
  return 'open'
}

/**
 * How the refresh call started at `from` ends. A retry after a timeout joins the call still
 * on the wire (the client never spends a refresh token twice), so the call lives on through
 * timeouts as long as the machine stays in `refreshing`.
 */
function callEnd(steps: ModelStep[], from: number): AttemptEnd {
  let index = from
  for (;;) {
    const end = attemptEnd(steps, index)
    if (end !== 'timeout') return end
    const next = steps.findIndex((step, i) => i > index && step.spawned)
    if (next < 0 || !steps[next]?.before.snapshot.matches({ refreshing: 'backoff' })) return end
    index = next
  }
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

const comparable = (context: AuthContext) => ({
  generation: context.generation,
  attempt: context.attempt,
  queue: context.queue.map(({ method, url, enqueuedAt }) => ({ method, url, enqueuedAt })),
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
    for (const step of path.steps) {
      if (step.event.type === 'xstate.error.actor.refresh') next[step.event.failure] += 1
    }
  }
  return offsets
}

export interface FaultOffsets {
  rejected: number
  transient: number
}

/**
 * Executor (b): the real client against the real token server on 127.0.0.1, every model
 * event produced the way an app, a server or another tab produces it:
 *
 * - `LOGIN`: a login at the server, then `auth.login(tokens)`; `LOGOUT`: `auth.logout()`;
 *   `WAKE`: `auth.wake()`;
 * - `TOKEN_NEEDED`: a request while refreshing, or after the device slept past expiry;
 * - `TOKEN_REJECTED`: a probe request sent with that generation's token and parked at the
 *   server (`hold`), answered 401 when the path says (expired, or a stale generation);
 * - `REQUEST_ABORTED`: the `AbortController` of the oldest queued request;
 * - `SESSION_SYNCED` / `SESSION_ENDED`: a second client on the same `crossTab` channel logs
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
): Promise<ClientRun> {
  const faults = { ...offsets }
  const clock: SleepableClock = createSleepableClock(MODEL_START)
  const server: TestAuthServer = await createTestAuthServer({
    now: clock.now,
    accessTokenTtl: ACCESS_TTL_SECONDS,
    refreshTokenTtl: REFRESH_TTL_SECONDS,
  })
  const conditions = createConditions()
  const log = createTransitionLog(conditions.notify)
  const crossTab = { name: `model-${process.pid}-${++channels}` }
  const http = axios.create({ baseURL: server.url })
  const warnings: string[] = []
  const auth: AuthClient = createAuthClient({
    http,
    clock,
    crossTab,
    refreshMargin: MODEL_TIMING.refreshMargin,
    refreshTimeout: MODEL_TIMING.refreshTimeout,
    retry: MODEL_TIMING.retry,
    onWarning: (message) => warnings.push(message),
    refresh: refreshAt(server.url),
  })
  log.follow(auth.actor)
  const inspection = auth.actor.system.inspect(log.inspect)
  const subscription = auth.actor.subscribe(() => conditions.notify())
  await auth.ready

  const steps = path.steps
  const tracked = new Map<string, Tracked>()
  const attempts: Attempt[] = []
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
    http.get(url, { signal: request.controller.signal }).then(
      (response) => {
        request.settled += 1
        request.status = response.status
        conditions.notify()
      },
      (error: unknown) => {
        request.settled += 1
        request.error = error
        conditions.notify()
      },
    )
    return request
  }

  /** The app's own login call, to the server's login route. */
  const signIn = () => signInAt(server.url)

  /** Another tab on the same channel, which never runs a timer or a refresh of its own. */
  const otherTab = () =>
    createAuthClient({
      http: axios.create({ baseURL: server.url }),
      crossTab,
      clock: { now: clock.now, setTimeout: () => 0, clearTimeout: () => undefined },
      onWarning: (message) => warnings.push(message),
      refresh: () => Promise.reject(new Error('the other tab does not refresh in these paths')),
    })

  // Server events re-check what the steps wait for, as snapshots and settlements do.
  server
    .waitFor(() => {
      conditions.notify()
      return false
    })
    .catch(() => undefined)
  const queuedUrls = () => auth.actor.getSnapshot().context.queue.map((r) => r.url)
  const quiet = () =>
    [...tracked.values()].every((r) => r.settled > 0 || r.held || queuedUrls().includes(r.url)) &&
    // An abandoned refresh call counts at the server until the socket's close reaches it. A
    // call that timed out stays on the wire through the backoff, for the retry to join.
    server.refreshInFlight <= callsOnTheWire()
  const callsOnTheWire = () => {
    const snapshot = auth.actor.getSnapshot()
    if (snapshot.matches({ refreshing: 'requesting' })) return 1
    return snapshot.matches({ refreshing: 'backoff' }) && currentAttempt()?.end === 'timeout'
      ? 1
      : 0
  }
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
    if (step.machineEvent?.type !== 'TOKEN_REJECTED') continue
    const { generation, request } = step.machineEvent
    const created = creationOf(steps, generation)
    probesAfter.set(created, [...(probesAfter.get(created) ?? []), request.url])
    if (step.event.type === 'TOKEN_REJECTED' && step.event.generation === 'older') {
      expireBefore.add(creationOf(steps, generation + 1))
    }
  }

  const currentAttempt = () => attempts.at(-1)

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
        return auth.login(await signIn())
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
      case 'REQUEST_ABORTED': {
        const first = step.before.snapshot.context.queue[0]
        const request = first && tracked.get(first.url)
        if (!request) throw new Error('nothing to abort')
        return request.controller.abort()
      }
      case 'SESSION_SYNCED': {
        const tokens = await signIn()
        const tab = otherTab()
        tab.login(tokens)
        // Closed only once the message has arrived here.
        return transitionTaken().finally(() => tab.dispose())
      }
      case 'SESSION_ENDED': {
        const tab = otherTab()
        await tab.logout()
        return transitionTaken().finally(() => tab.dispose())
      }
      case 'xstate.done.actor.refresh':
      case 'xstate.error.actor.refresh': {
        const attempt = currentAttempt()
        if (!attempt?.hold) throw new Error('no refresh call is parked at the server')
        if (attempt.revoke) server.revokeSessions()
        answered += 1
        return attempt.hold.release()
      }
      default:
        // A timer: time passes awake.
        return clock.advance(step.delay)
    }
  }

  /** Before a step that starts an attempt: arrange at the server how the path ends it. */
  function prepareAttempt(index: number): void {
    const end = attemptEnd(steps, index)
    const previous = currentAttempt()
    if (
      previous?.end === 'timeout' &&
      steps[index]?.before.snapshot.matches({ refreshing: 'backoff' })
    ) {
      const how = 'joins the call still on the wire'
      attempts.push({ ...previous, end, how, joined: true })
      report.push(how)
      return
    }
    const final = callEnd(steps, index)
    const attempt: Attempt = { end, how: final, hold: undefined, revoke: false, joined: false }
    if (final === 'timeout') {
      server.failNextRefresh('hang')
      attempt.how = 'timeout (hang)'
    } else {
      attempt.hold = server.hold('/auth/refresh')
      if (final === 'rejected') {
        const kind = REJECTIONS[faults.rejected++ % REJECTIONS.length] ?? 401
        if (kind === 'revoke') attempt.revoke = true
        else server.failNextRefresh(kind)
        attempt.how = `rejected (${kind})`
      }
      if (final === 'transient') {
        const kind = TRANSIENTS[faults.transient++ % TRANSIENTS.length] ?? 500
        server.failNextRefresh(kind)
        attempt.how = `transient (${kind})`
      }
    }
    attempts.push(attempt)
    report.push(attempt.how)
  }

  /** After a step that started an attempt: the call must have reached the server. */
  const callsMade = () => attempts.filter((attempt) => !attempt.joined).length

  async function attemptArrived(): Promise<void> {
    const attempt = currentAttempt()
    if (attempt?.joined) return
    const calls = callsMade()
    await watchdog(
      server.waitFor((s) => s.counters.refreshCalls >= calls),
      `refresh call ${calls} at the server`,
    )
    if (attempt?.hold) {
      await watchdog(attempt.hold.untilWaiting(1), `refresh call ${calls} parked`)
    } else {
      answered += 1 // a hang is consumed on arrival
      await watchdog(
        server.waitFor((s) => s.counters.refreshFailures + s.counters.refreshSuccesses >= answered),
        `refresh call ${calls} hanging`,
      )
    }
  }

  /** After a step that left `requesting` without its result: let the server have the call. */
  async function releaseAbandoned(): Promise<void> {
    const attempt = currentAttempt()
    if (!attempt?.hold) return
    attempt.hold.release()
    answered += 1
    await watchdog(
      server.waitFor((s) => s.counters.refreshFailures + s.counters.refreshSuccesses >= answered),
      'the abandoned refresh call to be answered',
    )
  }

  function expectOutcome(url: string, outcome: 'released' | string, where: string): void {
    const request = tracked.get(url)
    expect(request?.settled, `${where}: ${url} settled once`).toBe(1)
    const { status, error } = request ?? {}
    if (outcome === 'released') {
      // Released requests go out (again) with the current token: they succeed when the
      // server still takes it, else the replay's 401 reaches the app as it is (replayed once).
      const token = auth.actor.getSnapshot().context.session?.accessToken
      const valid = token !== undefined && server.verifyAccessToken(token) !== null
      expect(status ?? describeError(error), `${where}: ${url} released`).toBe(
        valid ? 200 : 'AxiosError(ERR_BAD_REQUEST, 401)',
      )
      return
    }
    const expected = {
      LOGGED_OUT: error instanceof LoggedOutError,
      SESSION_EXPIRED: error instanceof SessionExpiredError,
      REFRESH_FAILED:
        error instanceof RefreshFailedError && !(error instanceof RefreshTimeoutError),
      REFRESH_TIMEOUT: error instanceof RefreshTimeoutError,
      CANCELED: isCancel(error),
    }[outcome]
    expect(expected, `${where}: ${url} rejected with ${outcome}, got ${describeError(error)}`).toBe(
      true,
    )
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
      if (step.spawned) prepareAttempt(index)

      await perform(step, index, transitionTaken)

      await transitionTaken()
      if (step.spawned) await attemptArrived()
      if (step.stopped && currentAttempt()?.end === 'abandoned') await releaseAbandoned()
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
      expect(comparable(snapshot.context), where).toEqual(comparable(expected.context))
      expect(clock.now(), where).toBe(step.after.now)
      expect(clock.pending(), `${where}: timers armed`).toBe(Object.keys(step.after.timers).length)
      // A refresh call reaches the server exactly when the model enters `requesting`, except
      // for a retry that joins the call a timeout left on the wire.
      expect(server.counters.refreshCalls, `${where}: refresh calls`).toBe(callsMade())
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
          for (const id of emitted.ids) expectOutcome(urlOf.get(id) ?? id, 'released', where)
        }
        if (emitted.type === 'requestsRejected') {
          for (const id of emitted.ids) {
            expectOutcome(urlOf.get(id) ?? id, emitted.error.code, where)
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
      for (const attempt of attempts) attempt.hold?.release()
      for (const request of tracked.values()) request.hold?.release()
      server.releaseHung()
      if (afterFailure) return
      await conditions.until(
        () => [...tracked.values()].every((r) => r.settled > 0),
        () => 'every request to settle after the path',
      )
    } finally {
      subscription.unsubscribe()
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
