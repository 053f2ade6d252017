import { fromPromise } from 'xstate'
import type { AuthErrorInfo, RefreshFailure, RefreshInput, Session } from '../machines/types.js'
import { InvalidSessionError } from './errors.js'
import { sessionFromTokens, type TokenResponse } from './session.js'

/** What the `refresh` option receives besides the session. */
export interface RefreshContext {
  /** Aborted when the refresh is abandoned (timeout, logout, disposal): pass it to the call. */
  signal: AbortSignal
  /** 1 for the first attempt of this refresh, 2 for the first retry, … */
  attempt: number
}

/**
 * Spends the refresh token. Must not use the protected axios instance (its interceptors
 * would wait for this very refresh); use a bare `axios` call or `fetch`.
 */
export type RefreshFunction = (
  session: Readonly<Session>,
  context: RefreshContext,
) => Promise<TokenResponse>

/** Reads an HTTP status from axios errors, fetch-style errors and `{ status }` objects. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { response, status } = error as { response?: { status?: unknown }; status?: unknown }
  const value = response?.status ?? status
  return typeof value === 'number' ? value : undefined
}

function oauthErrorOf(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return undefined
  const data = (error as { response?: { data?: unknown } }).response?.data
  return typeof data === 'object' && data !== null ? (data as { error?: unknown }).error : undefined
}

/**
 * The default rule for "the server refused the refresh token": HTTP 400, 401 or 403, or an
 * OAuth `invalid_grant` body. Everything else (network, timeouts, 5xx, 429) is transient.
 */
export function defaultIsRefreshRejected(error: unknown): boolean {
  const status = statusOf(error)
  return (
    status === 400 || status === 401 || status === 403 || oauthErrorOf(error) === 'invalid_grant'
  )
}

function transientInfo(error: unknown): AuthErrorInfo {
  const status = statusOf(error)
  // Our own wording only: a thrown message might quote a request body with the token.
  const message =
    status === undefined
      ? 'The token refresh failed before the server answered (network error).'
      : `The token refresh failed with HTTP ${status}.`
  return status === undefined
    ? { code: 'REFRESH_FAILED', message }
    : { code: 'REFRESH_FAILED', message, status }
}

/**
 * Runs a refresh somewhere else (under the cross-tab lock); `run` does the actual call.
 */
export type RefreshCoordinator = (
  input: RefreshInput,
  signal: AbortSignal,
  run: () => Promise<Session>,
) => Promise<Session>

/**
 * The machine's `refreshSession` actor: calls the user's function, validates what comes
 * back, and classifies any failure once so the statechart only reads `rejected`.
 */
export function createRefreshActor(
  refresh: RefreshFunction,
  isRefreshRejected: (error: unknown) => boolean,
  now: () => number,
  coordinate: RefreshCoordinator = (_input, _signal, run) => run(),
) {
  async function run(input: RefreshInput, signal: AbortSignal): Promise<Session> {
    let body: unknown
    try {
      body = await refresh({ ...input.session }, { signal, attempt: input.attempt })
    } catch (error) {
      const status = statusOf(error)
      const failure: RefreshFailure = isRefreshRejected(error)
        ? {
            rejected: true,
            error: {
              code: 'SESSION_EXPIRED',
              message: 'The server rejected the refresh token; sign in again.',
              ...(status === undefined ? {} : { status }),
            },
          }
        : { rejected: false, error: transientInfo(error) }
      throw failure
    }
    try {
      return sessionFromTokens(body, now(), input.session, 'INVALID_REFRESH_RESPONSE')
    } catch (error) {
      const detail = error instanceof InvalidSessionError ? ` ${error.message}` : ''
      const failure: RefreshFailure = {
        rejected: false,
        error: {
          code: 'REFRESH_FAILED',
          message: `The refresh endpoint answered with a malformed body.${detail}`,
        },
      }
      throw failure
    }
  }
  // One call per refresh token. A retry after a timeout joins the call still on the wire
  // rather than spending the same token again: a slow server that does process the first
  // call would otherwise see the token reused, and with rotation revoke the session.
  let inflight: { key: string; call: Promise<Session>; controller: AbortController } | undefined
  function spend(input: RefreshInput): Promise<Session> {
    const key = input.session.refreshToken ?? input.session.accessToken
    if (inflight?.key === key) return inflight.call
    const controller = new AbortController()
    const call = coordinate(input, controller.signal, () => run(input, controller.signal))
    const entry = { key, call, controller }
    inflight = entry
    const settle = () => {
      if (inflight === entry) inflight = undefined
    }
    call.then(settle, settle)
    return call
  }

  return {
    logic: fromPromise<Session, RefreshInput>(({ input, signal }) =>
      untilAborted(spend(input), signal),
    ),
    /** Cancels the call on the wire: the machine stopped waiting for any refresh. */
    abandon(): void {
      inflight?.controller.abort()
      inflight = undefined
    },
  }
}

/** Settles with `promise`, or rejects as soon as `signal` aborts, leaving `promise` running. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}
