import { createHmac, timingSafeEqual } from 'node:crypto'

/** Claims carried by every access token the test server issues. Times are in seconds. */
export interface AccessTokenClaims {
  /** The user name given at login. */
  sub: string
  /** Issued-at, seconds since the epoch on the server's clock. */
  iat: number
  /** Expiry, seconds since the epoch on the server's clock. */
  exp: number
  /** Unique token id. */
  jti: string
  /** Session family id: shared by every token descended from one login. */
  sid: string
  /**
   * DPoP binding (RFC 9449 §6.1), only on servers with the `dpop` option: the RFC 7638
   * thumbprint of the key every proof presented with this token must be signed with.
   */
  cnf?: { jkt: string }
}

/** A JWT split into its decoded header and payload. The signature is not checked. */
export interface DecodedJwt {
  /** The JOSE header, e.g. `{ alg: 'HS256', typ: 'JWT' }`. */
  header: Record<string, unknown>
  /** The claims. */
  payload: Record<string, unknown>
}

const HEADER = encodeJson({ alg: 'HS256', typ: 'JWT' })

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url')
}

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null
  } catch {
    return null
  }
}

function hmac(input: string, secret: Buffer): Buffer {
  return createHmac('sha256', secret).update(input).digest()
}

/** Signs `claims` as an HS256 JWT. */
export function signJwt(claims: AccessTokenClaims, secret: Buffer): string {
  const signingInput = `${HEADER}.${encodeJson(claims)}`
  return `${signingInput}.${hmac(signingInput, secret).toString('base64url')}`
}

/**
 * Decodes a JWT's header and payload without verifying anything, for tests that want to
 * look inside a token (e.g. read `exp`). Returns `null` if it is not shaped like a JWT.
 */
export function decodeJwt(token: string): DecodedJwt | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const [headerPart = '', payloadPart = ''] = parts
  const header = decodeJsonObject(headerPart)
  const payload = decodeJsonObject(payloadPart)
  return header && payload ? { header, payload } : null
}

function isConfirmation(cnf: unknown): cnf is { jkt: string } {
  return (
    typeof cnf === 'object' && cnf !== null && typeof (cnf as { jkt?: unknown }).jkt === 'string'
  )
}

function isClaims(
  payload: Record<string, unknown>,
): payload is Record<string, unknown> & AccessTokenClaims {
  return (
    (payload.cnf === undefined || isConfirmation(payload.cnf)) &&
    typeof payload.sub === 'string' &&
    typeof payload.jti === 'string' &&
    typeof payload.sid === 'string' &&
    Number.isFinite(payload.iat) &&
    Number.isFinite(payload.exp)
  )
}

/**
 * Checks structure, algorithm and signature of an HS256 JWT and returns its claims.
 * Expiry and revocation are the token store's business, not this function's.
 */
export function verifyJwt(token: string, secret: Buffer): AccessTokenClaims | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts
  const header = decodeJsonObject(headerPart)
  // Pinning the algorithm shuts out `alg: none` and algorithm-confusion forgeries.
  if (header?.alg !== 'HS256') return null
  const expected = hmac(`${headerPart}.${payloadPart}`, secret)
  const given = Buffer.from(signaturePart, 'base64url')
  // Re-encoding rejects non-canonical base64url that would otherwise decode to the same bytes.
  if (given.toString('base64url') !== signaturePart) return null
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  const payload = decodeJsonObject(payloadPart)
  if (!payload || !isClaims(payload)) return null
  const { sub, iat, exp, jti, sid, cnf } = payload
  return cnf ? { sub, iat, exp, jti, sid, cnf: { jkt: cnf.jkt } } : { sub, iat, exp, jti, sid }
}
