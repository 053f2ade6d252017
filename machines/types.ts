/**
 * The data the statechart works on. Everything here is plain JSON so a snapshot can be
 * inspected, persisted and drawn.
 */

/** A signed-in session as the client holds it. */
export interface Session {
  /** The bearer token sent with protected requests. */
  accessToken: string
  /** The long-lived token spent to get a new access token. Absent for access-only sessions. */
  refreshToken?: string
  /** Epoch ms, on this client's clock, after which the access token is no longer usable. */
  expiresAt?: number
  /** Epoch ms, on this client's clock, when the access token was received. */
  obtainedAt?: number
  /**
   * The session's identity: made at login, kept by every refresh, shared with other tabs.
   * Not a secret; it tells a refreshed session of the same sign-in from another sign-in.
   */
  id?: string
}

/** A request waiting for a token, described as data: the promise lives in the client. */
export interface QueuedRequest {
  /** Unique per client; the client settles its deferred promise by this id. */
  id: string
  method: string
  url: string
  /** Epoch ms when the request started waiting. */
  enqueuedAt: number
}

/** Why waiting requests were rejected or a refresh failed; serializable, never holds a token. */
export interface AuthErrorInfo {
  code: 'SESSION_EXPIRED' | 'LOGGED_OUT' | 'REFRESH_FAILED' | 'REFRESH_TIMEOUT' | 'CANCELED'
  message: string
  /** HTTP status of the refresh response, when there was one. */
  status?: number
}

/**
 * What a failed refresh actor rejects with: the client classifies the failure once, so the
 * machine only has to read a flag.
 */
export interface RefreshFailure {
  /** `true` when the server refused the refresh token (the session is over). */
  rejected: boolean
  error: AuthErrorInfo
}

export interface AuthContext {
  session: Session | null
  /** Bumped on every new access token; requests remember the generation they were sent with. */
  generation: number
  /**
   * Bumped when a session starts or ends (login, logout, expiry), never by a refresh. A 401
   * from another epoch belongs to another session (another user, or one that ended): it is
   * rejected, never replayed under this session's token.
   */
  epoch: number
  /** Requests waiting for the refresh; empty outside `refreshing`. */
  queue: QueuedRequest[]
  /** Refresh attempts made in the current `refreshing` episode. */
  attempt: number
  /** The last failure, kept for display until the next success or login. */
  error: AuthErrorInfo | null
}

/** Everything the machine reacts to, as one union. */
export type AuthEvent =
  | { type: 'LOGIN'; session: Session }
  /**
   * The session read from storage at start-up. Taken only if nothing happened first: a
   * login or a logout before the read finished wins over it.
   */
  | { type: 'RESTORED'; session: Session }
  | { type: 'LOGOUT' }
  /** A request cannot go out: the token is past its expiry or a refresh is running. */
  | { type: 'TOKEN_NEEDED'; request: QueuedRequest }
  /** The server rejected a request that carried the token of `generation` in `epoch`. */
  | { type: 'TOKEN_REJECTED'; request: QueuedRequest; generation: number; epoch: number }
  /**
   * A DPoP server refused a request that carried the token of `epoch` only for want of a
   * fresh nonce, and sent one. Not a token rejection: it never starts a refresh; the request
   * is sent once more, with the nonce, if its session is still the current one (after the
   * refresh, if one is running).
   */
  | { type: 'NONCE_CHALLENGED'; request: QueuedRequest; epoch: number }
  | { type: 'REQUEST_ABORTED'; id: string }
  /** The tab became visible or the network came back: a good moment to refresh if due. */
  | { type: 'WAKE' }
  /** Another tab obtained a session. */
  | { type: 'SESSION_SYNCED'; session: Session }
  /** Another tab logged out. */
  | { type: 'SESSION_ENDED' }
  /**
   * A refresh call that outlived the attempt that sent it (timed out, or the machine gave up)
   * answered with a new session. The refresh token it spent is gone, so the answer is
   * adopted while the session it was sent for (`generation`) is still the current one.
   */
  | { type: 'REFRESH_ANSWERED'; session: Session; generation: number }

/** What the machine reports outward, via `actor.on(type, handler)`. */
export type AuthEmitted =
  | { type: 'requestsReleased'; ids: string[] }
  | { type: 'requestsRejected'; ids: string[]; error: AuthErrorInfo }
  | { type: 'refreshed'; generation: number }
  | { type: 'sessionExpired'; error: AuthErrorInfo }
  | { type: 'loggedOut' }

/**
 * The refresh actor's input: which session to refresh (by generation) and which attempt this
 * is. It holds no token: the client looks the session up, so inspection never sees one.
 */
export interface RefreshInput {
  generation: number
  attempt: number
}
