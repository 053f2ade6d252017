import { assertEvent, assign, emit, enqueueActions, fromPromise, setup } from 'xstate'
import {
  backoffDelay,
  clampDelay,
  DEFAULT_REFRESH_MARGIN,
  DEFAULT_RETRY,
  MAX_TIMER_DELAY,
  type RetryPolicy,
  refreshDueAt,
} from './timing.js'
import type {
  AuthContext,
  AuthEmitted,
  AuthErrorInfo,
  AuthEvent,
  RefreshFailure,
  RefreshInput,
  Session,
} from './types.js'

/** The clock- and policy-dependent parts of the machine, provided by the client. */
export interface MachineTiming {
  /** Current time in epoch ms. */
  now: () => number
  /** Source of jitter in [0, 1). */
  random: () => number
  /** Lead time before expiry for the proactive refresh, in ms. */
  refreshMargin: number
  /** Time one refresh attempt may take before it counts as a transient failure, in ms. */
  refreshTimeout: number
  retry: RetryPolicy
}

/** The defaults the machine loads with; `createAuthClient` documents the same values. */
export const DEFAULT_TIMING: MachineTiming = {
  now: () => Date.now(),
  random: () => 0.5,
  refreshMargin: DEFAULT_REFRESH_MARGIN,
  // With the default retries, no request waits longer than 23.5 s (README: the longest wait).
  refreshTimeout: 5_000,
  retry: DEFAULT_RETRY,
}

function timingImplementations(timing: MachineTiming) {
  const dueAt = (context: AuthContext) => refreshDueAt(context.session, timing.refreshMargin)
  return {
    guards: {
      isRefreshDue: ({ context }: { context: AuthContext }) => {
        const at = dueAt(context)
        return at !== undefined && timing.now() >= at
      },
      hasAttemptsLeft: ({ context }: { context: AuthContext }) =>
        context.attempt <= timing.retry.retries,
    },
    delays: {
      refreshDue: ({ context }: { context: AuthContext }) => {
        const at = dueAt(context)
        return at === undefined ? MAX_TIMER_DELAY : clampDelay(at - timing.now())
      },
      retryDelay: ({ context }: { context: AuthContext }) =>
        backoffDelay(context.attempt, timing.retry, timing.random),
      refreshTimeout: () => clampDelay(timing.refreshTimeout),
    },
  }
}

const defaultTiming = timingImplementations(DEFAULT_TIMING)

const LOGGED_OUT: AuthErrorInfo = { code: 'LOGGED_OUT', message: 'The user is logged out.' }
const SESSION_EXPIRED: AuthErrorInfo = {
  code: 'SESSION_EXPIRED',
  message: 'The session has expired; sign in again.',
}
const SESSION_REPLACED: AuthErrorInfo = {
  code: 'LOGGED_OUT',
  message: 'The request belongs to a session that has ended; it is not sent with another one.',
}
const REFRESH_TIMEOUT: AuthErrorInfo = {
  code: 'REFRESH_TIMEOUT',
  message: 'The token refresh did not answer in time.',
}
const CANCELED: AuthErrorInfo = { code: 'CANCELED', message: 'The request was aborted.' }

/** Narrows an unknown actor error to the classified failure the client's refresh actor throws. */
export function isRefreshFailure(error: unknown): error is RefreshFailure {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as RefreshFailure).rejected === 'boolean' &&
    typeof (error as RefreshFailure).error?.code === 'string'
  )
}

/** Any other thrown value counts as a transient failure: only a clear rejection ends a session. */
function failureInfo(error: unknown): AuthErrorInfo {
  return isRefreshFailure(error)
    ? error.error
    : { code: 'REFRESH_FAILED', message: 'The token refresh failed.' }
}

// One intent, one action: settle the queue and empty it together. Typed outside `setup` (with
// no nested actions) because `enqueueActions` cannot infer the setup's own action map.
type QueueActions<TParams extends { error: AuthErrorInfo } | undefined> = typeof enqueueActions<
  AuthContext,
  AuthEvent,
  TParams,
  AuthEvent,
  never,
  never,
  never,
  never,
  AuthEmitted
>
const queueAction = <TParams extends { error: AuthErrorInfo } | undefined>(
  collect: Parameters<QueueActions<TParams>>[0],
) => (enqueueActions as QueueActions<TParams>)(collect)

/** Every waiting request goes out (again) with the current token. */
const releaseQueue = queueAction<undefined>(({ context, enqueue }) => {
  enqueue.emit({ type: 'requestsReleased', ids: context.queue.map((r) => r.id) })
  enqueue.assign({ queue: [] })
})

/** Every waiting request fails with `error`. */
const rejectQueue = queueAction<{ error: AuthErrorInfo }>(({ context, enqueue }, params) => {
  enqueue.emit({
    type: 'requestsRejected',
    ids: context.queue.map((r) => r.id),
    error: params.error,
  })
  enqueue.assign({ queue: [] })
})

/** An aborted request leaves the queue, rejected on its own. */
const dropAbortedRequest = queueAction<undefined>(({ context, event, enqueue }) => {
  assertEvent(event, 'REQUEST_ABORTED')
  enqueue.emit({ type: 'requestsRejected', ids: [event.id], error: CANCELED })
  enqueue.assign({ queue: context.queue.filter((r) => r.id !== event.id) })
})

const machineSetup = setup({
  types: {
    context: {} as AuthContext,
    events: {} as AuthEvent,
    emitted: {} as AuthEmitted,
  },
  actors: {
    refreshSession: fromPromise<Session, RefreshInput>(async () => {
      const failure: RefreshFailure = {
        rejected: false,
        error: { code: 'REFRESH_FAILED', message: 'No refresh implementation was provided.' },
      }
      throw failure
    }),
  },
  guards: {
    isUntouched: ({ context }) => context.epoch === 0,
    isOtherEpoch: ({ context, event }) => {
      assertEvent(event, ['TOKEN_REJECTED', 'NONCE_CHALLENGED'])
      return event.epoch !== context.epoch
    },
    isCurrentGeneration: ({ context, event }) => {
      assertEvent(event, 'TOKEN_REJECTED')
      return event.generation === context.generation
    },
    ...defaultTiming.guards,
    isQueued: ({ context, event }) => {
      assertEvent(event, 'REQUEST_ABORTED')
      return context.queue.some((r) => r.id === event.id)
    },
    isNewSession: ({ context, event }) => {
      assertEvent(event, 'LOGIN')
      return event.session.accessToken !== context.session?.accessToken
    },
    /** Another tab refreshed this same sign-in and got a newer token. */
    isNewerSession: ({ context, event }) => {
      assertEvent(event, 'SESSION_SYNCED')
      const { id } = event.session
      // A session without an id comes from an older version: taken as the same sign-in.
      return (
        (id === undefined || context.session?.id === undefined || id === context.session.id) &&
        event.session.accessToken !== context.session?.accessToken &&
        (event.session.obtainedAt ?? 0) >= (context.session?.obtainedAt ?? 0)
      )
    },
    isAnswerForThisSession: ({ context, event }) => {
      assertEvent(event, 'REFRESH_ANSWERED')
      return event.generation === context.generation
    },
    isRefreshRejected: (_, params: { error: unknown }) =>
      isRefreshFailure(params.error) && params.error.rejected,
  },
  delays: defaultTiming.delays,
  actions: {
    /** A new session: new token (generation) and a new epoch, so older requests can't replay. */
    startSession: assign(({ context, event }) => {
      assertEvent(event, ['LOGIN', 'RESTORED', 'SESSION_SYNCED'])
      return {
        session: event.session,
        generation: context.generation + 1,
        epoch: context.epoch + 1,
        attempt: 0,
        error: null,
      }
    }),
    /** The same session with a new access token, obtained here or in another tab. */
    commitRefresh: assign(({ context }, params: { session: Session }) => ({
      session: params.session,
      generation: context.generation + 1,
      attempt: 0,
      error: null,
    })),
    emitRefreshed: emit(({ context }) => ({
      type: 'refreshed' as const,
      generation: context.generation,
    })),
    enqueueRequest: assign(({ context, event }) => {
      assertEvent(event, ['TOKEN_NEEDED', 'TOKEN_REJECTED', 'NONCE_CHALLENGED'])
      return { queue: [...context.queue, event.request] }
    }),
    releaseQueue,
    rejectQueue,
    /**
     * A 401 for a request sent with an older token (the current token may work), or a nonce
     * challenge (the token was fine): the request goes out again, no refresh.
     */
    releaseRequest: emit(({ event }) => {
      assertEvent(event, ['TOKEN_REJECTED', 'NONCE_CHALLENGED'])
      return { type: 'requestsReleased' as const, ids: [event.request.id] }
    }),
    rejectRequest: emit(({ event }, params: { error: AuthErrorInfo }) => {
      assertEvent(event, ['TOKEN_REJECTED', 'NONCE_CHALLENGED'])
      return { type: 'requestsRejected' as const, ids: [event.request.id], error: params.error }
    }),
    dropAbortedRequest,
    resetAttempts: assign({ attempt: 0 }),
    countAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    recordFailure: assign((_, params: { error: AuthErrorInfo }) => ({ error: params.error })),
    /** The session is over: no token, and a new epoch so nothing of it is ever replayed. */
    clearSession: assign(({ context }) => ({
      session: null,
      attempt: 0,
      epoch: context.epoch + 1,
    })),
    clearError: assign({ error: null }),
    /** No session to end, but the logout still closes the epoch: a restore can't undo it. */
    closeEpoch: assign(({ context }) => ({ epoch: context.epoch + 1 })),
    emitSessionExpired: emit((_, params: { error: AuthErrorInfo }) => ({
      type: 'sessionExpired' as const,
      error: params.error,
    })),
    emitLoggedOut: emit({ type: 'loggedOut' }),
    /**
     * The refresh calls still on the wire are for a session that is gone (logout, expiry, a
     * new login): cancel them. Provided by the client, which owns the calls; a call is never
     * abandoned merely because an attempt timed out or the machine gave up.
     */
    abandonRefresh: () => undefined,
    /** Provided by the client: timers may keep a Node process alive while requests depend on them. */
    holdProcess: () => undefined,
    /** Provided by the client: the proactive timer alone never keeps a Node process alive. */
    releaseProcess: () => undefined,
  },
})

// Logout here and logout in another tab end the session the same way.
const endSession = {
  target: '#auth.loggedOut',
  actions: [
    'abandonRefresh',
    'clearSession',
    'clearError',
    { type: 'rejectQueue', params: { error: LOGGED_OUT } },
    'emitLoggedOut',
  ],
} as const

// A late answer is adopted in every signed-in state while its session is still current.
const adoptLateAnswer = {
  guard: 'isAnswerForThisSession',
  target: '#auth.authenticated.fresh',
  actions: [
    {
      type: 'commitRefresh',
      params: ({ event }: { event: AuthEvent }) => {
        assertEvent(event, 'REFRESH_ANSWERED')
        return { session: event.session }
      },
    },
    'releaseQueue',
    'emitRefreshed',
  ],
} as const

const rejectOtherEpoch = {
  guard: 'isOtherEpoch',
  actions: { type: 'rejectRequest', params: { error: SESSION_REPLACED } },
} as const

/**
 * The session statechart. Pure: no I/O, no HTTP client. The refresh call, the clock-dependent
 * guards, the delays and the client's bookkeeping actions are replaced by the client through
 * `machine.provide()`; the defaults here let the machine load on its own (tests, the Stately
 * editor).
 */
export const authMachine = machineSetup.createMachine({
  id: 'auth',
  context: { session: null, generation: 0, epoch: 0, queue: [], attempt: 0, error: null },
  initial: 'loggedOut',
  states: {
    loggedOut: {
      on: {
        LOGIN: { target: 'authenticated', actions: 'startSession' },
        RESTORED: { guard: 'isUntouched', target: 'authenticated', actions: 'startSession' },
        LOGOUT: { actions: 'closeEpoch' },
        // A 401 for a request sent before the logout: it is not replayed.
        TOKEN_REJECTED: { actions: { type: 'rejectRequest', params: { error: LOGGED_OUT } } },
        NONCE_CHALLENGED: { actions: { type: 'rejectRequest', params: { error: LOGGED_OUT } } },
      },
    },
    authenticated: {
      initial: 'fresh',
      states: {
        fresh: {
          after: {
            // Long lifetimes are clamped to one timer span; when it ends early, re-arm.
            refreshDue: [
              { guard: 'isRefreshDue', target: '#auth.refreshing' },
              { target: 'fresh', reenter: true },
            ],
          },
          on: { WAKE: { guard: 'isRefreshDue', target: '#auth.refreshing' } },
        },
        // The last refresh failed transiently: keep the session, refresh again on demand.
        stale: {
          on: {
            WAKE: { target: '#auth.refreshing' },
            REFRESH_ANSWERED: adoptLateAnswer,
          },
        },
      },
      on: {
        TOKEN_NEEDED: { target: 'refreshing', actions: 'enqueueRequest' },
        TOKEN_REJECTED: [
          rejectOtherEpoch,
          { guard: 'isCurrentGeneration', target: 'refreshing', actions: 'enqueueRequest' },
          { actions: 'releaseRequest' },
        ],
        // The token was fine: only the DPoP nonce was missing or stale. Never a refresh.
        NONCE_CHALLENGED: [rejectOtherEpoch, { actions: 'releaseRequest' }],
        LOGIN: {
          guard: 'isNewSession',
          target: 'authenticated',
          reenter: true,
          actions: ['abandonRefresh', 'startSession'],
        },
        // Only a refresh of this same sign-in: another sign-in arrives as LOGIN, and a
        // refresh of another one (crossing messages) must not switch users.
        SESSION_SYNCED: {
          guard: 'isNewerSession',
          target: 'authenticated',
          reenter: true,
          actions: [
            'abandonRefresh',
            { type: 'commitRefresh', params: ({ event }) => ({ session: event.session }) },
          ],
        },
        LOGOUT: endSession,
        SESSION_ENDED: endSession,
      },
    },
    refreshing: {
      initial: 'requesting',
      entry: ['resetAttempts', 'holdProcess'],
      exit: 'releaseProcess',
      states: {
        requesting: {
          entry: 'countAttempt',
          invoke: {
            id: 'refresh',
            src: 'refreshSession',
            input: ({ context }) => ({ generation: context.generation, attempt: context.attempt }),
            onDone: {
              target: '#auth.authenticated',
              actions: [
                { type: 'commitRefresh', params: ({ event }) => ({ session: event.output }) },
                'releaseQueue',
                'emitRefreshed',
              ],
            },
            onError: [
              {
                guard: {
                  type: 'isRefreshRejected',
                  params: ({ event }) => ({ error: event.error }),
                },
                target: '#auth.expired',
                actions: [
                  {
                    type: 'recordFailure',
                    params: ({ event }) => ({ error: failureInfo(event.error) }),
                  },
                  'clearSession',
                  { type: 'rejectQueue', params: { error: SESSION_EXPIRED } },
                  { type: 'emitSessionExpired', params: { error: SESSION_EXPIRED } },
                ],
              },
              {
                guard: 'hasAttemptsLeft',
                target: 'backoff',
                actions: {
                  type: 'recordFailure',
                  params: ({ event }) => ({ error: failureInfo(event.error) }),
                },
              },
              {
                target: '#auth.authenticated.stale',
                actions: [
                  {
                    type: 'recordFailure',
                    params: ({ event }) => ({ error: failureInfo(event.error) }),
                  },
                  {
                    type: 'rejectQueue',
                    params: ({ event }) => ({ error: failureInfo(event.error) }),
                  },
                ],
              },
            ],
          },
          after: {
            // The call stays on the wire, owned by the client: a retry joins it for a while,
            // and an answer that comes later still arrives as REFRESH_ANSWERED.
            refreshTimeout: [
              {
                guard: 'hasAttemptsLeft',
                target: 'backoff',
                actions: { type: 'recordFailure', params: { error: REFRESH_TIMEOUT } },
              },
              {
                target: '#auth.authenticated.stale',
                actions: [
                  { type: 'recordFailure', params: { error: REFRESH_TIMEOUT } },
                  { type: 'rejectQueue', params: { error: REFRESH_TIMEOUT } },
                ],
              },
            ],
          },
        },
        backoff: {
          after: { retryDelay: { target: 'requesting' } },
          on: { WAKE: { target: 'requesting' } },
        },
      },
      on: {
        TOKEN_NEEDED: { actions: 'enqueueRequest' },
        TOKEN_REJECTED: [rejectOtherEpoch, { actions: 'enqueueRequest' }],
        // Its token is being replaced: it waits for the new one, then goes with it and the nonce.
        NONCE_CHALLENGED: [rejectOtherEpoch, { actions: 'enqueueRequest' }],
        REQUEST_ABORTED: { guard: 'isQueued', actions: 'dropAbortedRequest' },
        REFRESH_ANSWERED: adoptLateAnswer,
        // Another user, or the same one signing in again: what waited belongs to the old
        // session and is not sent with the new one.
        LOGIN: {
          guard: 'isNewSession',
          target: 'authenticated',
          actions: [
            'abandonRefresh',
            { type: 'rejectQueue', params: { error: SESSION_REPLACED } },
            'startSession',
          ],
        },
        SESSION_SYNCED: {
          guard: 'isNewerSession',
          target: 'authenticated',
          actions: [
            'abandonRefresh',
            { type: 'commitRefresh', params: ({ event }) => ({ session: event.session }) },
            'releaseQueue',
          ],
        },
        LOGOUT: endSession,
        SESSION_ENDED: endSession,
      },
    },
    expired: {
      on: {
        LOGIN: { target: 'authenticated', actions: 'startSession' },
        // Another tab still got a new token for this profile: the session lives on there.
        SESSION_SYNCED: { target: 'authenticated', actions: 'startSession' },
        LOGOUT: { target: 'loggedOut', actions: 'clearError' },
        TOKEN_REJECTED: { actions: { type: 'rejectRequest', params: { error: SESSION_EXPIRED } } },
        NONCE_CHALLENGED: {
          actions: { type: 'rejectRequest', params: { error: SESSION_EXPIRED } },
        },
      },
    },
  },
})

/** The machine type, for typing actors and snapshots. */
export type AuthMachine = typeof authMachine

/** The machine with its timers and retry policy bound to `timing` (defaults fill the gaps). */
export function configureAuthMachine(timing: Partial<MachineTiming> = {}): AuthMachine {
  return authMachine.provide(timingImplementations({ ...DEFAULT_TIMING, ...timing }))
}
