import type { Session } from '../machines/types.js'
import { InvalidSessionError } from './errors.js'

/**
 * A lifetime in seconds: a number, or a decimal string such as `'3600'` (some servers send
 * `expires_in` as a string). `null` counts as absent.
 */
export type ExpiresIn = number | `${number}` | null

/** The token fields spelled the way JavaScript code (and this library) spells them. */
export interface CamelCaseTokenFields {
  accessToken?: string
  /** Omit (or `null`) to keep the current refresh token (servers without rotation). */
  refreshToken?: string | null
  /**
   * Lifetime of the access token in seconds, as OAuth's `expires_in`. A method here (as on
   * openid-client's token responses) is not read: `expires_in` is used instead.
   */
  expiresIn?: ExpiresIn | (() => number | undefined)
  /**
   * `'Bearer'` (any case) or absent; `'DPoP'` with the `dpop` option, which refuses
   * `'Bearer'`.
   */
  tokenType?: string | null
}

/** The token fields as an OAuth 2.0 token endpoint sends them (RFC 6749 §5.1). */
export interface SnakeCaseTokenFields {
  access_token?: string
  /** Omit (or `null`) to keep the current refresh token. */
  refresh_token?: string | null
  /** Lifetime of the access token in seconds. */
  expires_in?: ExpiresIn
  /** As `tokenType`. */
  token_type?: string | null
}

/**
 * What `login()` takes and what the `refresh` function returns: an object with an access
 * token, spelled `accessToken` or OAuth's `access_token`, and optionally a refresh token and
 * a lifetime in either spelling. A token endpoint's JSON body, oauth4webapi's
 * `TokenEndpointResponse` and openid-client's token responses are accepted as they are;
 * other fields are ignored. When both spellings of a field are present, camelCase wins.
 */
export type TokenResponse = CamelCaseTokenFields &
  SnakeCaseTokenFields &
  ({ accessToken: string } | { access_token: string })

type Fields = Record<string, unknown>
type InvalidSessionCode = 'INVALID_SESSION' | 'INVALID_REFRESH_RESPONSE'

/**
 * Reads a field in either spelling. Absent, `null` and function values (openid-client puts
 * an `expiresIn()` method next to `expires_in`) count as not given, so the other spelling
 * is used.
 */
function pick(body: Fields, camel: string, snake: string): unknown {
  for (const key of [camel, snake]) {
    const value = body[key]
    if (value !== undefined && value !== null && typeof value !== 'function') return value
  }
  return undefined
}

/** The claims of a JWT, decoded but not verified; `undefined` for opaque or undecodable tokens. */
export function jwtClaimsOf(token: string): Fields | undefined {
  const parts = token.split('.')
  const payload = parts[1]
  if (parts.length !== 3 || !payload) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const claims: unknown = JSON.parse(atob(base64))
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims)
      ? (claims as Fields)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Lifetime in seconds read from a JWT's `exp − iat`. Measured as a difference so a server
 * clock that is off does not matter; `undefined` for opaque or undecodable tokens.
 */
export function jwtLifetime(token: string): number | undefined {
  const claims = jwtClaimsOf(token)
  if (!claims) return undefined
  const { exp, iat } = claims
  return typeof exp === 'number' && typeof iat === 'number' && exp > iat ? exp - iat : undefined
}

const DECIMAL_SECONDS = /^\d+(?:\.\d+)?$/

/**
 * Reads a decimal string such as `'3600'` as a number: some servers send `expires_in` as a
 * string, and refusing their tokens would only push users to convert it themselves. Other
 * strings (`'1h'`, `'1e3'`, `' 60'`) are returned unchanged and rejected as not a number,
 * rather than guessed at.
 */
function secondsOf(value: unknown): unknown {
  return typeof value === 'string' && DECIMAL_SECONDS.test(value) ? Number(value) : value
}

/** How the client sends its access token: `Authorization: Bearer` or, with the `dpop` option, `DPoP`. */
export type TokenScheme = 'Bearer' | 'DPoP'

/** Refuses a token this client cannot send with its scheme. */
function assertScheme(fields: Fields, code: InvalidSessionCode, scheme: TokenScheme): void {
  const tokenType = pick(fields, 'tokenType', 'token_type')
  const type = typeof tokenType === 'string' ? tokenType.toLowerCase() : undefined
  if (scheme === 'Bearer' && type === 'dpop') {
    // A DPoP-bound token sent as Bearer is refused on every request; failing at login or
    // refresh names the problem instead of causing a stream of 401s. Other values, even
    // nonstandard ones, are let through: servers put odd things there and mean Bearer.
    throw new InvalidSessionError(
      'DPoP-bound tokens (token_type DPoP) need the `dpop` option.',
      code,
    )
  }
  if (scheme === 'DPoP' && type === 'bearer') {
    // A downgrade: the server did not bind the token (the token request had no valid proof,
    // or it does not do DPoP). Sent as DPoP it would be refused; sent as Bearer it is
    // exactly the stealable token DPoP is on to prevent.
    throw new InvalidSessionError(
      'The `dpop` option is on, but the server issued a Bearer token (token_type Bearer): the token request carried no DPoP proof, or the server does not bind tokens.',
      code,
    )
  }
}

/**
 * The access token's lifetime in seconds: the response's own, else the JWT's `exp − iat`,
 * else `undefined` (no proactive refresh).
 */
function lifetimeOf(fields: Fields, accessToken: string, code: InvalidSessionCode) {
  const given = secondsOf(pick(fields, 'expiresIn', 'expires_in'))
  if (given === undefined) return jwtLifetime(accessToken)
  if (typeof given !== 'number' || !Number.isFinite(given)) {
    throw new InvalidSessionError(
      'expiresIn must be a finite number of seconds (or a decimal string).',
      code,
    )
  }
  if (given < 0) throw new InvalidSessionError('expiresIn must not be negative.', code)
  return given
}

function isTokenString(value: unknown): value is string {
  // Whitespace would break the Authorization header and hints at a pasted error page.
  return typeof value === 'string' && value.length > 0 && !/\s/.test(value)
}

/**
 * Validates a token response and turns it into a session measured on this client's clock.
 * Throws {@link InvalidSessionError} (whose message never includes a token) when the body is
 * not usable. `previous` supplies the refresh token when the response does not rotate it.
 */
export function sessionFromTokens(
  body: unknown,
  now: number,
  previous?: Session | null,
  code: InvalidSessionCode = 'INVALID_SESSION',
  scheme: TokenScheme = 'Bearer',
): Session {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidSessionError(`Expected a token object, got ${describe(body)}.`, code)
  }
  const fields = body as Fields
  const accessToken = pick(fields, 'accessToken', 'access_token')
  if (!isTokenString(accessToken)) {
    throw new InvalidSessionError(
      'The access token is missing, empty or not a single-line string.',
      code,
    )
  }
  const refreshToken = pick(fields, 'refreshToken', 'refresh_token') ?? previous?.refreshToken
  if (refreshToken !== undefined && !isTokenString(refreshToken)) {
    throw new InvalidSessionError('The refresh token is empty or not a single-line string.', code)
  }
  assertScheme(fields, code, scheme)
  const expiresIn = lifetimeOf(fields, accessToken, code)
  // A refresh keeps its session's identity (none, for one stored by an older version).
  const id = previous ? previous.id : newSessionId()
  const session: Session = { accessToken, obtainedAt: now }
  if (id !== undefined) session.id = id
  if (refreshToken !== undefined) session.refreshToken = refreshToken
  const expiresAt = expiresIn === undefined ? undefined : now + expiresIn * 1000
  // A lifetime too long to represent is no expiry at all, not an unstorable Infinity.
  if (expiresAt !== undefined && Number.isFinite(expiresAt)) session.expiresAt = expiresAt
  return session
}

/** A random session id (not a secret): works in insecure browser contexts too. */
function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Whether two sessions are the same sign-in (one may be a refresh of the other). A session
 * without an id was stored by an older version: it is taken as the same sign-in, so a
 * rolling deploy does not sign anyone out.
 */
export function isSameSession(a: Session, b: Session): boolean {
  return a.id === undefined || b.id === undefined || a.id === b.id
}

/** Reads a session back from storage; anything malformed counts as no session. */
export function parseStoredSession(value: unknown): Session | null {
  if (typeof value !== 'object' || value === null) return null
  const { accessToken, refreshToken, expiresAt, obtainedAt, id } = value as Fields
  if (!isTokenString(accessToken)) return null
  if (refreshToken !== undefined && !isTokenString(refreshToken)) return null
  if (expiresAt !== undefined && typeof expiresAt !== 'number') return null
  if (obtainedAt !== undefined && typeof obtainedAt !== 'number') return null
  if (id !== undefined && typeof id !== 'string') return null
  const session: Session = { accessToken }
  if (id !== undefined) session.id = id
  if (refreshToken !== undefined) session.refreshToken = refreshToken
  if (expiresAt !== undefined) session.expiresAt = expiresAt
  if (obtainedAt !== undefined) session.obtainedAt = obtainedAt
  return session
}

/** Names the shape of a bad value without echoing it: it might be a token. */
function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string of ${value.length} characters`
  return typeof value
}

/**
 * Whether `candidate` (from storage, another tab or another process) replaces `current`:
 * another token, obtained no earlier. Never by comparing tokens' contents.
 */
export function isNewerSession(candidate: Session, current: Session): boolean {
  return (
    candidate.accessToken !== current.accessToken &&
    (candidate.obtainedAt ?? 0) >= (current.obtainedAt ?? 0)
  )
}
