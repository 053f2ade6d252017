// What both entries export besides the client itself.
export type { RetryPolicy } from '../machines/timing.js'
export type {
  AuthContext,
  AuthEmitted,
  AuthErrorInfo,
  AuthEvent,
  QueuedRequest,
  Session,
} from '../machines/types.js'
export type { Clock } from './clock.js'
export type { CrossTabOptions } from './coordination/tabs/crossTab.js'
export { tabsCoordinator } from './coordination/tabs/index.js'
export { CrossTabScopeError } from './coordination/tabs/scope.js'
export type {
  Coordination,
  Coordinator,
  CoordinatorContext,
  CoordinatorMessage,
} from './coordination/types.js'
export type { DpopHandle, DpopOptions } from './dpop/index.js'
export type { DpopKeyStore, StoredDpopKey } from './dpop/keys.js'
export {
  AuthError,
  type AuthErrorCode,
  DpopError,
  InvalidSessionError,
  LoggedOutError,
  RefreshFailedError,
  RefreshTimeoutError,
  SessionExpiredError,
} from './errors.js'
export type { AttachTo } from './origin.js'
export {
  defaultIsRefreshRejected,
  type RefreshContext,
  type RefreshFunction,
} from './refresh.js'
export { jwtLifetime, type TokenResponse } from './session.js'
export type { SkipAuthOption } from './skipAuth.js'
export {
  localStorageSession,
  memorySession,
  sessionStorageSession,
  type TokenStorage,
  type WebStorageOptions,
} from './storage.js'
export type { AuthFetch, AuthRequestInit } from './transports/fetch.js'
