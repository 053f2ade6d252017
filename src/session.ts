import type { Session } from '../machines/types.js'
import { InvalidSessionError } from './errors.js'

/**
 * What `login()` takes and what the `refresh` function returns. Field names follow this
 * library's camelCase; OAuth's snake_case (`access_token`, `refresh_token`, `expires_in`) is
 * accepted too, so a token endpoint's body can be passed through as it is.
 */
export interface TokenResponse {
  accessToken: string
  /** Omit to keep the current refresh token (servers without rotation). */
  refreshToken?: string
  /** Lifetime of the access token in seconds, as OAuth's `expires_in`. */
  expiresIn?: number
}

type Fields = Record<string, unknown>

function pick(body: Fields, camel: string, snake: string): unknown {
  return body[camel] ?? body[snake]
}

/**
 * Lifetime in seconds read from a JWT's `exp − iat`. Measured as a difference so a server
 * clock that is off does not matter; `undefined` for opaque or undecodable tokens.
 */
export function jwtLifetime(token: string): number | undefined {
  const payload = token.split('.')[1]
  if (token.split('.').length !== 3 || !payload) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const claims: unknown = JSON.parse(atob(base64))
    if (typeof claims !== 'object' || claims === null) return undefined
    const { exp, iat } = claims as Fields
    return typeof exp === 'number' && typeof iat === 'number' && exp > iat ? exp - iat : undefined
  } catch {
    return undefined
  }
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
  code: 'INVALID_SESSION' | 'INVALID_REFRESH_RESPONSE' = 'INVALID_SESSION',
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
  const expiresIn = pick(fields, 'expiresIn', 'expires_in') ?? jwtLifetime(accessToken)
  if (expiresIn !== undefined && !(typeof expiresIn === 'number' && Number.isFinite(expiresIn))) {
    throw new InvalidSessionError('expiresIn must be a finite number of seconds.', code)
  }
  if (typeof expiresIn === 'number' && expiresIn < 0) {
    throw new InvalidSessionError('expiresIn must not be negative.', code)
  }
  const session: Session = { accessToken, obtainedAt: now }
  if (refreshToken !== undefined) session.refreshToken = refreshToken
  if (expiresIn !== undefined) session.expiresAt = now + expiresIn * 1000
  return session
}

/** Reads a session back from storage; anything malformed counts as no session. */
export function parseStoredSession(value: unknown): Session | null {
  if (typeof value !== 'object' || value === null) return null
  const { accessToken, refreshToken, expiresAt, obtainedAt } = value as Fields
  if (!isTokenString(accessToken)) return null
  if (refreshToken !== undefined && !isTokenString(refreshToken)) return null
  if (expiresAt !== undefined && typeof expiresAt !== 'number') return null
  if (obtainedAt !== undefined && typeof obtainedAt !== 'number') return null
  const session: Session = { accessToken }
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
