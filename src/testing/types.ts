import type { FailNextRefreshOptions, RefreshFaultKind } from './faults.js'
import type { HoldHandle } from './holds.js'
import type { AccessTokenClaims } from './jwt.js'
import type { TokenSet } from './tokens.js'

/** Options of {@link createTestAuthServer}. */
export interface TestAuthServerOptions {
  /**
   * The server's clock in milliseconds, used for `iat`/`exp`, refresh token expiry and the
   * request log's `at`. Default `Date.now`. Pass a manual clock's `now` to expire tokens
   * without waiting. Holds and delays are unaffected: delays always use real time.
   */
  now?: () => number
  /** Access token lifetime in seconds. Default 1800 (30 minutes). */
  accessTokenTtl?: number
  /**
   * Refresh token lifetime in seconds, counted from when each refresh token is issued
   * (so rotation slides it forward). Default 604800 (7 days).
   */
  refreshTokenTtl?: number
  /**
   * Default true: every refresh spends the presented refresh token and returns a new one.
   * When false, refresh responses carry no `refreshToken` and the presented one stays valid.
   */
  rotateRefreshTokens?: boolean
  /** Port to listen on, on 127.0.0.1. Default 0: any free port. */
  port?: number
}

/**
 * What the server has seen. Every field counts up until {@link TestAuthServer.resetCounters}.
 * Control routes (`/__control/*`) are not counted: they are the harness, not the traffic.
 */
export interface TestAuthServerCounters {
  /**
   * Sessions issued, by `POST /auth/login`, the password grant of `POST /oauth/token`, or
   * {@link TestAuthServer.login}.
   */
  logins: number
  /**
   * Refresh requests received: `POST /auth/refresh`, and `POST /oauth/token` with
   * `grant_type=refresh_token` (counted on arrival, before holds and faults).
   */
  refreshCalls: number
  /** Refresh calls that issued new tokens (also when an `afterRefresh` fault lost the answer). */
  refreshSuccesses: number
  /**
   * Refresh calls that issued no tokens: rejections, bad requests and faults injected before
   * the refresh was processed. An `afterRefresh` fault is counted as what the server decided
   * (a success, unless the token was rejected), since the refresh did happen.
   */
  refreshFailures: number
  /** Times a spent refresh token came back and its family was revoked. */
  reuseDetections: number
  /** Rejections sent from protected `/api/*` routes, including the soft 200-with-401 quirk. */
  unauthorized: number
  /** Successful responses from protected routes. */
  protectedOk: number
  /** Requests received, preflights included, control routes excluded. */
  requests: number
}

/** One entry of {@link TestAuthServer.requests}. */
export interface LoggedRequest {
  /** HTTP method, upper case. */
  method: string
  /** The path, without the query string. */
  path: string
  /** The raw text after `?` in the request target; `''` when there is none. */
  query: string
  /** The `Authorization` header, when sent. */
  authorization?: string
  /** The raw body, when not empty. */
  body?: string
  /** Arrival time on the server's clock (ms). */
  at: number
}

/**
 * A running test token server. Obtain one with {@link createTestAuthServer}; close it with
 * {@link TestAuthServer.close} or `await using`.
 */
export interface TestAuthServer extends AsyncDisposable {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:54321`. */
  readonly url: string
  /** The port the server listens on. */
  readonly port: number
  /**
   * Stops the server: destroys every socket (keep-alive, held and hung ones included), drops
   * held and hung requests unanswered, and rejects pending `waitFor` calls. Idempotent.
   */
  close(): Promise<void>
  /**
   * Issues a session without HTTP, exactly as a successful login would (counted in
   * `counters.logins`).
   */
  login(username?: string): TokenSet
  /**
   * Returns the claims of `token` if the server would accept it on a protected route right
   * now, else `null`.
   */
  verifyAccessToken(token: string): AccessTokenClaims | null
  /** Makes every access token issued so far invalid; tokens issued afterwards are valid. */
  expireAccessTokens(): void
  /** Revokes every session family: all refresh tokens and access tokens issued so far. */
  revokeSessions(): void
  /**
   * Makes the next `times` (default 1) refresh calls fail as `kind` instead of refreshing;
   * the presented refresh token is not spent. With `afterRefresh`, they refresh first and
   * fail instead of answering: the token is spent, the new tokens are lost (a `'reset'` so
   * queued is a refresh answer lost on the network). Calls queue up: faults are consumed in the
   * order they were added. The fault is picked when the response is produced (after holds
   * and delays), and only for well-formed refresh requests.
   */
  failNextRefresh(kind: RefreshFaultKind, options?: FailNextRefreshOptions): void
  /** Drops every queued refresh fault. Hung requests stay hung; see {@link releaseHung}. */
  clearFaults(): void
  /** Answers every refresh call hung by a `'hang'` fault with 503. */
  releaseHung(): void
  /**
   * Holds requests whose path starts with `pathPrefix` (control routes and preflights
   * excepted) until the returned handle's `release()`. A request is answered only once no
   * active hold matches it. Like a real server, a held request is still processed when
   * released even if its client gave up meanwhile.
   */
  hold(pathPrefix: string): HoldHandle
  /** Delays requests whose path starts with `pathPrefix` by `ms` of real time (for demos). */
  delay(pathPrefix: string, ms: number): void
  /** Removes every delay rule. */
  clearDelays(): void
  /** A snapshot of the counters. */
  readonly counters: Readonly<TestAuthServerCounters>
  /** Zeroes the counters and resets `maxConcurrentRefreshes` to the current in-flight count. */
  resetCounters(): void
  /** A snapshot of the request log (control routes excluded), oldest first. */
  readonly requests: readonly LoggedRequest[]
  /**
   * Resolves once `predicate(server)` is true. Checked now, then after every request start,
   * response end, hold change and programmatic control call: no polling. Rejects if the
   * predicate throws or the server closes first.
   */
  waitFor(predicate: (server: TestAuthServer) => boolean): Promise<void>
  /**
   * Refresh requests received and neither answered nor abandoned by their client (held,
   * delayed and hung ones included). A request whose client hung up no longer counts, even
   * though the server still processes it when released.
   */
  readonly refreshInFlight: number
  /** The largest `refreshInFlight` seen since start or {@link resetCounters}. */
  readonly maxConcurrentRefreshes: number
}
