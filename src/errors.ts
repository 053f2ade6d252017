import type { AuthErrorInfo } from '../machines/types.js'

/** Codes carried by every {@link AuthError}, stable for `switch` statements. */
export type AuthErrorCode =
  | AuthErrorInfo['code']
  | 'INVALID_SESSION'
  | 'INVALID_REFRESH_RESPONSE'
  | 'INVALID_OPTIONS'
  | 'DISPOSED'
  | 'DPOP_KEY_MISSING'
  | 'DPOP_PROOF_MISMATCH'

/**
 * Base class of every error this library throws. Messages never contain a token, so these
 * errors are safe to log and to report.
 */
export class AuthError extends Error {
  /** A stable machine-readable code. */
  readonly code: AuthErrorCode
  /** HTTP status of the refresh response behind this error, when there was one. */
  readonly status: number | undefined

  constructor(message: string, code: AuthErrorCode, status?: number) {
    super(message)
    // Set explicitly by each class: minifiers rename classes, so `new.target.name` would not do.
    this.name = 'AuthError'
    this.code = code
    this.status = status
  }
}

/** The server refused the refresh token: the user has to sign in again. */
export class SessionExpiredError extends AuthError {
  override readonly name: string = 'SessionExpiredError'
  constructor(message = 'The session has expired; sign in again.', status?: number) {
    super(message, 'SESSION_EXPIRED', status)
  }
}

/** The request waited for a token, but the user logged out (here or in another tab). */
export class LoggedOutError extends AuthError {
  override readonly name: string = 'LoggedOutError'
  constructor(message = 'The user is logged out.') {
    super(message, 'LOGGED_OUT')
  }
}

/**
 * The refresh failed for a reason that may pass (network, 5xx, 429, malformed answer) and
 * every retry failed too. The session is kept: a later request tries again.
 */
export class RefreshFailedError extends AuthError {
  override readonly name: string = 'RefreshFailedError'
  constructor(
    message = 'The token refresh failed.',
    status?: number,
    code: AuthErrorCode = 'REFRESH_FAILED',
  ) {
    super(message, code, status)
  }
}

/** The refresh call did not answer within `refreshTimeout`, on every attempt. */
export class RefreshTimeoutError extends RefreshFailedError {
  override readonly name: string = 'RefreshTimeoutError'
  constructor(message = 'The token refresh did not answer in time.') {
    super(message, undefined, 'REFRESH_TIMEOUT')
  }
}

/** `login()` or a refresh produced something that is not a usable session. */
export class InvalidSessionError extends AuthError {
  override readonly name: string = 'InvalidSessionError'
  constructor(message: string, code: AuthErrorCode = 'INVALID_SESSION') {
    super(message, code)
  }
}

/**
 * A DPoP proof could not be made for a request: the session's key is gone
 * (`DPOP_KEY_MISSING`), or code that ran after the proof was signed changed the request's
 * method or URL (`DPOP_PROOF_MISMATCH`). The request is not sent.
 */
export class DpopError extends AuthError {
  override readonly name: string = 'DpopError'
  constructor(message: string, code: 'DPOP_KEY_MISSING' | 'DPOP_PROOF_MISMATCH') {
    super(message, code)
  }
}

/** Turns the machine's serializable error description into the matching error class. */
export function errorFromInfo(info: AuthErrorInfo): AuthError {
  switch (info.code) {
    case 'SESSION_EXPIRED':
      return new SessionExpiredError(info.message, info.status)
    case 'LOGGED_OUT':
      return new LoggedOutError(info.message)
    case 'REFRESH_TIMEOUT':
      return new RefreshTimeoutError(info.message)
    case 'REFRESH_FAILED':
      return new RefreshFailedError(info.message, info.status)
    case 'CANCELED':
      return new AuthError(info.message, 'CANCELED')
  }
}

/** Names an error for a warning without quoting its message, which might carry a token. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error
}
