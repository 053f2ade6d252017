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
  /**
   * Turns on DPoP (RFC 9449): sender-constrained tokens. Absent (the default), the server
   * speaks plain Bearer exactly as without this option. Present (even `{}`):
   *
   * - The token-issuing routes (`POST /auth/login`, `POST /auth/refresh`, both grants of
   *   `POST /oauth/token`) require a `DPoP` header holding a proof for `POST` to
   *   `${url}${path}`. A missing or invalid proof is 400
   *   `{ error: 'invalid_dpop_proof', error_description }` on every one of them.
   * - Issued tokens are bound to the proof's key: the access token carries
   *   `cnf: { jkt }` (its RFC 7638 thumbprint, see {@link jwkThumbprint}), the answer says
   *   `token_type: 'DPoP'` (`tokenType: 'DPoP'` on the JSON routes), and the session
   *   family remembers the key: a refresh with a proof from another key is refused as
   *   `invalid_grant` (`'DPoP key mismatch'`) with the refresh token left unspent, and
   *   without a reuse detection, so a thief without the key cannot burn the session.
   * - Protected `/api/*` routes require `Authorization: DPoP <token>` and a proof with
   *   `htm` = the method, `htu` = `${url}${path}` and `ath` = the token's hash, signed by
   *   the key the token is bound to. Answers: 401 `WWW-Authenticate: DPoP
   *   error="invalid_token"` for a missing, bad, expired or revoked token or any other
   *   scheme (Bearer included; checked first, so that a client refreshes); then 401
   *   `DPoP error="invalid_dpop_proof"` for a missing, invalid, replayed or wrongly bound
   *   proof; then, when nonces are required there, 401 `DPoP error="use_dpop_nonce"`.
   * - CORS preflights allow the `DPoP` request header, and `DPoP-Nonce` is exposed.
   *
   * `POST /auth/logout` needs no proof.
   */
  dpop?: TestDpopOptions
}

/** The `dpop` option of {@link TestAuthServerOptions}. */
export interface TestDpopOptions {
  /**
   * Where proofs must carry the server's current nonce (RFC 9449 §8, §9): `'token'` (the
   * token-issuing routes), `'resource'` (protected `/api/*` routes), `'both'`, or `false`
   * (default: nonces off). A proof without the current nonce is answered `use_dpop_nonce`
   * (400 on token routes, 401 with `WWW-Authenticate` on resources) with the nonce in a
   * `DPoP-Nonce` header. When on (any mode), every response except the control routes'
   * carries `DPoP-Nonce: <current>`. The nonce changes only with
   * {@link TestAuthServer.rotateDpopNonce}.
   */
  nonce?: 'resource' | 'token' | 'both' | false
  /**
   * Accepted `|now − iat|` of a proof, in seconds, on the server's clock (the `now` option).
   * Default 60.
   */
  iatWindow?: number
}

/** Options of {@link TestAuthServer.login}. */
export interface TestLoginOptions {
  /**
   * Binds the session to a DPoP key: the RFC 7638 thumbprint of its public key (see
   * {@link jwkThumbprint}). Required when the server has the `dpop` option; refused when
   * it has not.
   */
  jkt?: string
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
   * `grant_type=refresh_token` (counted on arrival, before holds and faults). Each answered
   * call is counted once more as a success, a failure or (with DPoP nonces) a
   * `dpopNonceChallenges`.
   */
  refreshCalls: number
  /** Refresh calls that issued new tokens (also when an `afterRefresh` fault lost the answer). */
  refreshSuccesses: number
  /**
   * Refresh calls that issued no tokens: rejections, bad requests and faults injected before
   * the refresh was processed. An `afterRefresh` fault is counted as what the server decided
   * (a success, unless the token was rejected), since the refresh did happen. With DPoP, a
   * refused proof and a key mismatch count here (like any other refused request); a nonce
   * challenge does not: the client is expected to retry at once.
   */
  refreshFailures: number
  /** Times a spent refresh token came back and its family was revoked. */
  reuseDetections: number
  /**
   * Token rejections sent from protected `/api/*` routes (`invalid_token`), including the
   * soft 200-with-401 quirk. With DPoP, refused proofs and nonce challenges are not counted
   * here but in `dpopProofsRefused` and `dpopNonceChallenges`.
   */
  unauthorized: number
  /** Successful responses from protected routes. */
  protectedOk: number
  /** Requests received, preflights included, control routes excluded. */
  requests: number
  /**
   * DPoP only (present from 0 when the server has the `dpop` option, absent otherwise):
   * `use_dpop_nonce` answers, from token routes and protected routes.
   */
  dpopNonceChallenges?: number
  /**
   * DPoP only: `invalid_dpop_proof` answers, from token routes and protected routes, replays
   * included.
   */
  dpopProofsRefused?: number
  /** DPoP only: proofs refused because their `jti` had been used before. */
  dpopReplays?: number
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
  /** The `DPoP` header (a proof), when sent. */
  dpop?: string
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
   * `counters.logins`). With the `dpop` option, `options.jkt` is required and the session
   * is bound to that key.
   *
   * @throws Error when `jkt` is missing with `dpop` on, given with `dpop` off, or not a
   *   SHA-256 thumbprint (43 base64url characters).
   */
  login(username?: string, options?: TestLoginOptions): TokenSet
  /**
   * Returns the claims of `token` if the server would accept it on a protected route right
   * now, else `null`. A DPoP-bound token's claims include `cnf.jkt`; its proof is not
   * part of this check.
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
   * and delays), and only for well-formed refresh requests (with the `dpop` option: ones
   * whose proof was accepted, nonce included).
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
  /**
   * The DPoP nonce proofs must carry where nonces are required (see
   * {@link TestDpopOptions.nonce}); `undefined` when nonces are off.
   */
  readonly dpopNonce: string | undefined
  /**
   * Replaces the DPoP nonce and returns the new one. The old one is refused from now on,
   * so the next proof that carries it gets a `use_dpop_nonce` challenge.
   *
   * @throws Error when nonces are off.
   */
  rotateDpopNonce(): string
  /**
   * The next protected request whose path starts with `pathPrefix` is answered 401
   * `WWW-Authenticate: DPoP error="use_dpop_nonce"` with a new nonce (the nonce rotates),
   * before its token is looked at, as a server that checks nonces first does. The request
   * sent again after it (with the new nonce) is held until the returned handle's `release()`,
   * so a test decides when it is answered. Releasing before the challenge cancels both.
   *
   * @throws Error when nonces are off.
   */
  challengeDpopNonce(pathPrefix: string): HoldHandle
}
