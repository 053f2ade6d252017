import { assign, emit, fromPromise, setup } from 'xstate'
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
  QueuedRequest,
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
  /** Time one refresh call may take before it counts as a transient failure, in ms. */
  refreshTimeout: number
  retry: RetryPolicy
}

/** The defaults the machine loads with; `createAuthClient` documents the same values. */
export const DEFAULT_TIMING: MachineTiming = {
  now: () => Date.now(),
  random: () => 0.5,
  refreshMargin: DEFAULT_REFRESH_MARGIN,
  refreshTimeout: 10_000,
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

function requestOf(event: AuthEvent): QueuedRequest | undefined {
  return event.type === 'TOKEN_NEEDED' || event.type === 'TOKEN_REJECTED'
    ? event.request
    : undefined
}

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
    isCurrentGeneration: ({ context, event }) =>
      event.type === 'TOKEN_REJECTED' && event.generation === context.generation,
    ...defaultTiming.guards,
    isQueued: ({ context, event }) =>
      event.type === 'REQUEST_ABORTED' && context.queue.some((r) => r.id === event.id),
    isNewerSession: ({ context, event }) =>
      event.type === 'SESSION_SYNCED' &&
      event.session.accessToken !== context.session?.accessToken &&
      (event.session.obtainedAt ?? 0) >= (context.session?.obtainedAt ?? 0),
    isRefreshRejected: (_, params: { error: unknown }) =>
      isRefreshFailure(params.error) && params.error.rejected,
  },
  delays: defaultTiming.delays,
  actions: {
    startSession: assign(({ context, event }) =>
      event.type === 'LOGIN' || event.type === 'SESSION_SYNCED'
        ? { session: event.session, generation: context.generation + 1, error: null }
        : {},
    ),
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
      const request = requestOf(event)
      return request ? { queue: [...context.queue, request] } : {}
    }),
    // Emit before clearing: actions resolve in order against the context as it stands.
    emitQueueReleased: emit(({ context }) => ({
      type: 'requestsReleased' as const,
      ids: context.queue.map((r) => r.id),
    })),
    emitQueueRejected: emit(({ context }, params: { error: AuthErrorInfo }) => ({
      type: 'requestsRejected' as const,
      ids: context.queue.map((r) => r.id),
      error: params.error,
    })),
    clearQueue: assign({ queue: [] }),
    /** A 401 for a request sent with an older token: the current token may work, no refresh. */
    releaseRequest: emit(({ event }) => ({
      type: 'requestsReleased' as const,
      ids: [requestOf(event)?.id ?? ''],
    })),
    rejectRequest: emit(({ event }, params: { error: AuthErrorInfo }) => ({
      type: 'requestsRejected' as const,
      ids: [requestOf(event)?.id ?? ''],
      error: params.error,
    })),
    emitRequestAborted: emit(({ event }) => ({
      type: 'requestsRejected' as const,
      ids: [event.type === 'REQUEST_ABORTED' ? event.id : ''],
      error: CANCELED,
    })),
    dropAbortedRequest: assign(({ context, event }) =>
      event.type === 'REQUEST_ABORTED'
        ? { queue: context.queue.filter((r) => r.id !== event.id) }
        : {},
    ),
    resetAttempts: assign({ attempt: 0 }),
    countAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    recordFailure: assign((_, params: { error: AuthErrorInfo }) => ({ error: params.error })),
    clearSession: assign({ session: null, attempt: 0 }),
    clearError: assign({ error: null }),
    emitSessionExpired: emit((_, params: { error: AuthErrorInfo }) => ({
      type: 'sessionExpired' as const,
      error: params.error,
    })),
    emitLoggedOut: emit({ type: 'loggedOut' }),
  },
})

// Logout here and logout in another tab end the session the same way.
const endSession = {
  target: '#auth.loggedOut',
  actions: ['clearSession', 'clearError', 'emitLoggedOut'],
} as const
const endSessionRejectingQueue = {
  target: '#auth.loggedOut',
  actions: [
    'clearSession',
    'clearError',
    { type: 'emitQueueRejected', params: { error: LOGGED_OUT } },
    'clearQueue',
    'emitLoggedOut',
  ],
} as const

/**
 * The session statechart. Pure: no I/O, no axios. The refresh call, the clock-dependent
 * guards and the delays are replaced by the client through `machine.provide()`; the defaults
 * here let the machine load on its own (tests, the Stately editor).
 */
export const authMachine = machineSetup.createMachine({
  id: 'auth',
  context: { session: null, generation: 0, queue: [], attempt: 0, error: null },
  initial: 'loggedOut',
  states: {
    loggedOut: {
      on: {
        LOGIN: { target: 'authenticated', actions: 'startSession' },
        TOKEN_NEEDED: { actions: { type: 'rejectRequest', params: { error: LOGGED_OUT } } },
        TOKEN_REJECTED: { actions: { type: 'rejectRequest', params: { error: LOGGED_OUT } } },
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
          on: { WAKE: { target: '#auth.refreshing' } },
        },
      },
      on: {
        TOKEN_NEEDED: { target: 'refreshing', actions: 'enqueueRequest' },
        TOKEN_REJECTED: [
          { guard: 'isCurrentGeneration', target: 'refreshing', actions: 'enqueueRequest' },
          { actions: 'releaseRequest' },
        ],
        LOGIN: { target: 'authenticated', reenter: true, actions: 'startSession' },
        SESSION_SYNCED: {
          guard: 'isNewerSession',
          target: 'authenticated',
          reenter: true,
          actions: 'startSession',
        },
        LOGOUT: endSession,
        SESSION_ENDED: endSession,
      },
    },
    refreshing: {
      initial: 'requesting',
      entry: 'resetAttempts',
      states: {
        requesting: {
          entry: 'countAttempt',
          invoke: {
            id: 'refresh',
            src: 'refreshSession',
            input: ({ context }) => ({
              session: context.session ?? { accessToken: '' },
              attempt: context.attempt,
            }),
            onDone: {
              target: '#auth.authenticated',
              actions: [
                { type: 'commitRefresh', params: ({ event }) => ({ session: event.output }) },
                'emitQueueReleased',
                'clearQueue',
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
                  { type: 'emitQueueRejected', params: { error: SESSION_EXPIRED } },
                  'clearQueue',
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
                    type: 'emitQueueRejected',
                    params: ({ event }) => ({ error: failureInfo(event.error) }),
                  },
                  'clearQueue',
                ],
              },
            ],
          },
          after: {
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
                  { type: 'emitQueueRejected', params: { error: REFRESH_TIMEOUT } },
                  'clearQueue',
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
        TOKEN_REJECTED: { actions: 'enqueueRequest' },
        REQUEST_ABORTED: {
          guard: 'isQueued',
          actions: ['emitRequestAborted', 'dropAbortedRequest'],
        },
        LOGIN: {
          target: 'authenticated',
          actions: ['startSession', 'emitQueueReleased', 'clearQueue'],
        },
        SESSION_SYNCED: {
          guard: 'isNewerSession',
          target: 'authenticated',
          actions: ['startSession', 'emitQueueReleased', 'clearQueue'],
        },
        LOGOUT: endSessionRejectingQueue,
        SESSION_ENDED: endSessionRejectingQueue,
      },
    },
    expired: {
      on: {
        LOGIN: { target: 'authenticated', actions: 'startSession' },
        LOGOUT: { target: 'loggedOut', actions: 'clearError' },
        TOKEN_NEEDED: { actions: { type: 'rejectRequest', params: { error: SESSION_EXPIRED } } },
        TOKEN_REJECTED: { actions: { type: 'rejectRequest', params: { error: SESSION_EXPIRED } } },
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
