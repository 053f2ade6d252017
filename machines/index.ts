/**
 * The pure session statechart: no I/O, importable anywhere and pasteable into the Stately
 * editor. `auth-machine` wraps it with axios; import this entry to embed or test it directly.
 * @packageDocumentation
 */
export {
  type AuthMachine,
  authMachine,
  configureAuthMachine,
  DEFAULT_TIMING,
  isRefreshFailure,
  type MachineTiming,
} from './authMachine.js'
export {
  backoffDelay,
  clampDelay,
  DEFAULT_REFRESH_MARGIN,
  DEFAULT_RETRY,
  MAX_TIMER_DELAY,
  type RetryPolicy,
  refreshDueAt,
} from './timing.js'
export type {
  AuthContext,
  AuthEmitted,
  AuthErrorInfo,
  AuthEvent,
  QueuedRequest,
  RefreshFailure,
  RefreshInput,
  Session,
} from './types.js'
