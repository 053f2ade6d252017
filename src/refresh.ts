import { fromPromise } from 'xstate'
import { isRefreshFailure } from '../machines/authMachine.js'
import type { AuthErrorInfo, RefreshFailure, RefreshInput, Session } from '../machines/types.js'
import { assertBoundTo, type Dpop, type DpopHandle } from './dpop/index.js'
import { DpopError, InvalidSessionError } from './errors.js'
import { sessionFromTokens, type TokenResponse } from './session.js'

/** What the `refresh` option receives besides the session. */
export interface RefreshContext {
  /**
   * Aborted when the call is no longer wanted: the session ended (logout, expiry, a new
   * login), the client was disposed, or the call outlived its patience and a new one was
   * sent. Pass it to the HTTP call.
   */
  signal: AbortSignal
  /** 1 for the first attempt of this refresh, 2 for the first retry, … */
  attempt: number
  /**
   * With the `dpop` option: proofs made with this session's key for the token request
   * (`dpop.fetch(tokenUrl, init)` does it all, `use_dpop_nonce` included), or its
   * `keyPair()` for an OAuth library's own DPoP handle. Absent without DPoP.
   */
  dpop?: DpopHandle
}

/**
 * Spends the refresh token. Must not use a protected HTTP client (its interceptors would
 * wait for this very refresh); use a bare `axios` call or `fetch`.
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

function transientInfo(error: unknown, refusal?: string): AuthErrorInfo {
  const status = statusOf(error)
  // Our own wording only: a thrown message might quote a request body with the token.
  const message =
    refusal !== undefined
      ? `The token endpoint refused the DPoP proof (${refusal}); the refresh token was not spent.`
      : status === undefined
        ? 'The token refresh failed before the server answered (network error).'
        : `The token refresh failed with HTTP ${status}.`
  return status === undefined
    ? { code: 'REFRESH_FAILED', message }
    : { code: 'REFRESH_FAILED', message, status }
}

/** Runs a refresh somewhere else (under a cross-tab lock); `run` does the actual call. */
export type RefreshCoordinator = (
  session: Session,
  signal: AbortSignal,
  run: () => Promise<Session>,
) => Promise<Session>

/** What {@link createRefresher} needs from the client. */
export interface RefresherOptions {
  refresh: RefreshFunction
  isRefreshRejected: (error: unknown) => boolean
  now: () => number
  /**
   * How long a call may stay on the wire and still be joined by a retry, in ms. Past it, the
   * call is presumed lost (a dropped connection) and a retry sends a new one.
   */
  patience: number
  /** The session of `generation`, if it is still the machine's current one. */
  sessionOf: (generation: number) => Session | null
  /** Delivers the answer of a call that no attempt is waiting for any more. */
  answeredLate: (session: Session, generation: number) => void
  coordinate?: RefreshCoordinator
  /** DPoP, when the client uses it: proofs for `refresh`, and its nonce challenges. */
  dpop?: Dpop | undefined
}

interface Call {
  key: string
  generation: number
  sentAt: number
  promise: Promise<Session>
  controller: AbortController
  /** Attempts of the machine waiting for this call right now. */
  listeners: number
  /** The server answered with tokens: the refresh token is spent, the answer on its way in. */
  answered: boolean
}

/**
 * Owns the refresh calls. A call, once sent, is owned until it answers: its refresh token is
 * spent the moment the server processes it, so its answer is never dropped. The machine's
 * attempts come and go (timeouts, backoff, giving up); each attempt joins the call on the
 * wire for its session, and an answer nobody waits for any more reaches the machine as
 * `REFRESH_ANSWERED`, where the statechart decides whether the session is still the one it
 * was for. Only a session that ended (`abandon()`) or a call past its patience (replaced by
 * a new one) cancels a call.
 */
export function createRefresher(options: RefresherOptions) {
  const { refresh, isRefreshRejected, now, patience, sessionOf, answeredLate } = options
  const coordinate: RefreshCoordinator = options.coordinate ?? ((_s, _signal, run) => run())

  async function run(
    session: Session,
    attempt: number,
    signal: AbortSignal,
    answered: () => void,
  ): Promise<Session> {
    // Cancelled while it waited for its turn (a lock, a storage read): never sent at all.
    if (signal.aborted) throw signal.reason
    const { dpop } = options
    const context: RefreshContext = { signal, attempt }
    // Told as soon as the token endpoint answers 2xx through `dpop.fetch`: from then on the
    // refresh token is spent, though the `refresh` function may still be running.
    const handle = dpop?.forSession(session, answered)
    if (handle) context.dpop = handle
    let body: unknown
    for (let nonceRetry = dpop ? 1 : 0; ; nonceRetry -= 1) {
      try {
        body = await refresh({ ...session }, context)
        answered()
        break
      } catch (error) {
        // A token endpoint that wants a nonce (or found the proof wrong) has not looked at
        // the refresh token: never a refusal of it. Asked for a nonce, the call goes once
        // more at once, with it, and is not counted as a failed attempt.
        // What `dpop.fetch` last answered counts too: a `refresh` that turns its 400 into
        // `{ status: 400 }` has dropped the body that said why.
        const refusal = dpop?.refusal(error, handle?.lastUrl()) ?? handle?.refused()
        if (refusal === 'use_dpop_nonce' && nonceRetry > 0 && !signal.aborted) continue
        const status = statusOf(error)
        // The session's key is gone (a sign-out elsewhere deleted it): nothing was sent, and
        // nothing signed with this key ever will be again.
        const keyless = error instanceof DpopError && error.code === 'DPOP_KEY_MISSING'
        const failure: RefreshFailure = keyless
          ? { rejected: true, error: { code: 'SESSION_EXPIRED', message: error.message } }
          : refusal === undefined && isRefreshRejected(error)
            ? {
                rejected: true,
                error: {
                  code: 'SESSION_EXPIRED',
                  message: 'The server rejected the refresh token; sign in again.',
                  ...(status === undefined ? {} : { status }),
                },
              }
            : { rejected: false, error: transientInfo(error, refusal) }
        throw failure
      }
    }
    try {
      const next = sessionFromTokens(
        body,
        now(),
        session,
        'INVALID_REFRESH_RESPONSE',
        options.dpop ? 'DPoP' : 'Bearer',
      )
      if (handle) await assertBoundTo(next, await handle.thumbprint())
      return next
    } catch (error) {
      // The server answered, so it may well have rotated the refresh token: presenting the
      // same one again would be reuse, which revokes the whole grant. The session ends here.
      const detail = error instanceof InvalidSessionError ? ` ${error.message}` : ''
      const failure: RefreshFailure = {
        rejected: true,
        error: {
          code: 'SESSION_EXPIRED',
          message: `The refresh endpoint answered without a usable token; its refresh token may be spent, so it is not presented again.${detail}`,
        },
      }
      throw failure
    }
  }

  let current: Call | undefined
  const refused = new Map<string, RefreshFailure>()

  function send(session: Session, input: RefreshInput): Call {
    const controller = new AbortController()
    const call: Call = {
      key: session.refreshToken ?? session.accessToken,
      generation: input.generation,
      sentAt: now(),
      controller,
      listeners: 0,
      answered: false,
      promise: coordinate(session, controller.signal, () =>
        run(session, input.attempt, controller.signal, () => {
          call.answered = true
        }),
      ),
    }
    call.promise.then(
      (answer) => {
        if (current === call) current = undefined
        if (call.listeners === 0 && !controller.signal.aborted) {
          answeredLate(answer, call.generation)
        }
      },
      (error: unknown) => {
        if (current === call) current = undefined
        // Refused, or answered 2xx without a usable token (maybe rotated): that refresh
        // token is never presented again, even when the answer came after every attempt
        // had stopped waiting. The next attempt learns it without a call.
        if (isRefreshFailure(error) && error.rejected) {
          if (refused.size >= 16) refused.delete(refused.keys().next().value as string)
          refused.set(call.key, error)
        }
      },
    )
    return call
  }

  /** The call for this attempt: the one on the wire while it is within patience, else a new one. */
  function callFor(input: RefreshInput): Call {
    const session = sessionOf(input.generation)
    if (!session) {
      const failure: RefreshFailure = {
        rejected: false,
        error: { code: 'REFRESH_FAILED', message: 'The session to refresh is gone.' },
      }
      throw failure
    }
    const key = session.refreshToken ?? session.accessToken
    const refusal = refused.get(key)
    if (refusal) throw refusal
    // A call whose answer is already in (being checked, a few jobs from settling) is joined
    // whatever its age: its refresh token is spent, and a new call would present it again.
    if (current && current.key === key && (current.answered || now() - current.sentAt < patience)) {
      return current
    }
    // Past its patience the old call is presumed lost and cancelled before the new one
    // goes: the client never waits for two calls at once.
    current?.controller.abort()
    current = send(session, input)
    return current
  }

  return {
    logic: fromPromise<Session, RefreshInput>(async ({ input, signal }) => {
      const call = callFor(input)
      call.listeners += 1
      try {
        return await untilAborted(call.promise, signal)
      } finally {
        call.listeners -= 1
      }
    }),
    /** Cancels the call on the wire: the session it was for has ended. */
    abandon(): void {
      current?.controller.abort()
      current = undefined
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
