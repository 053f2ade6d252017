import { randomBytes, randomUUID } from 'node:crypto'
import { type AccessTokenClaims, signJwt, verifyJwt } from './jwt.js'

/** Tokens handed out at login (and by a rotating refresh). `expiresIn` is in seconds. */
export interface TokenSet {
  /** A signed HS256 JWT; see {@link AccessTokenClaims}. */
  accessToken: string
  /** An opaque random string, belonging to this login's session family. */
  refreshToken: string
  /** Access token lifetime in seconds, as OAuth's `expires_in`. */
  expiresIn: number
}

/** Tokens handed out by a refresh; `refreshToken` is absent when rotation is off. */
export interface RefreshedTokens {
  /** A new access token in the same session family. */
  accessToken: string
  /** The replacement refresh token; absent when rotation is off (keep the old one). */
  refreshToken?: string
  /** Access token lifetime in seconds. */
  expiresIn: number
}

/**
 * Why a refresh token was turned down; `'key-mismatch'`: the session is DPoP-bound to another
 * key than the one presented.
 */
export type RefreshRejection = 'unknown' | 'revoked' | 'expired' | 'reuse' | 'key-mismatch'

/** Result of presenting a refresh token to the store. */
export type RefreshOutcome =
  | { ok: true; tokens: RefreshedTokens }
  | { ok: false; reason: RefreshRejection }

/** Settings of a {@link TokenStore}. */
export interface TokenStoreOptions {
  /** Server clock, milliseconds. */
  now: () => number
  /** Access token lifetime, seconds. */
  accessTokenTtl: number
  /** Refresh token lifetime, seconds, counted from when each refresh token is issued. */
  refreshTokenTtl: number
  /** When false, a refresh keeps the presented refresh token valid and issues none. */
  rotateRefreshTokens: boolean
}

interface Family {
  readonly sub: string
  /** DPoP key thumbprint the family is bound to; `undefined` for Bearer sessions. */
  readonly jkt: string | undefined
  revoked: boolean
}

interface RefreshRecord {
  readonly sid: string
  readonly expiresAt: number
  spent: boolean
}

/**
 * Sessions of the test server: one family per login, rotating refresh tokens with reuse
 * detection, and signed access tokens that can be expired or revoked on demand.
 */
export class TokenStore {
  // Per-server secret: tokens from one test's server are worthless against another's.
  readonly #secret = randomBytes(32)
  readonly #families = new Map<string, Family>()
  readonly #refreshTokens = new Map<string, RefreshRecord>()
  // JWT `iat` has one-second resolution, too coarse to tell tokens issued just before
  // `expireAccessTokens()` from those just after; a sequence number per token is exact.
  readonly #accessSeq = new Map<string, number>()
  #seq = 0
  #expiredThrough = 0
  readonly #options: TokenStoreOptions

  /** Creates an empty store. */
  constructor(options: TokenStoreOptions) {
    this.#options = options
  }

  /**
   * Starts a new session family for `sub` and returns its first tokens; with `jkt`, the
   * family is DPoP-bound to that key thumbprint.
   */
  login(sub: string, jkt?: string): TokenSet {
    const sid = randomUUID()
    const family: Family = { sub, jkt, revoked: false }
    this.#families.set(sid, family)
    return {
      accessToken: this.#issueAccess(family, sid),
      refreshToken: this.#issueRefresh(sid),
      expiresIn: this.#options.accessTokenTtl,
    }
  }

  /**
   * Exchanges a refresh token. With rotation, the presented token is spent and a new one
   * issued in the same family; presenting a spent token again revokes the whole family.
   * `jkt` is the thumbprint of the DPoP key the request proved (none for Bearer): it must be
   * the family's. A mismatch is checked before reuse, and spends and revokes nothing, so
   * whoever holds a stolen refresh token without the key can do no harm with it.
   */
  refresh(refreshToken: string, jkt?: string): RefreshOutcome {
    const record = this.#refreshTokens.get(refreshToken)
    if (!record) return { ok: false, reason: 'unknown' }
    const family = this.#families.get(record.sid)
    if (!family || family.revoked) return { ok: false, reason: 'revoked' }
    if (family.jkt !== jkt) return { ok: false, reason: 'key-mismatch' }
    if (record.spent) {
      // A spent token coming back means two parties hold this family's tokens; neither
      // can be trusted, so the whole family goes, as OAuth 2.0 Security BCP recommends.
      family.revoked = true
      return { ok: false, reason: 'reuse' }
    }
    if (record.expiresAt <= this.#options.now()) return { ok: false, reason: 'expired' }
    const accessToken = this.#issueAccess(family, record.sid)
    const expiresIn = this.#options.accessTokenTtl
    if (!this.#options.rotateRefreshTokens) return { ok: true, tokens: { accessToken, expiresIn } }
    record.spent = true
    return {
      ok: true,
      tokens: { accessToken, refreshToken: this.#issueRefresh(record.sid), expiresIn },
    }
  }

  /** Revokes the family `refreshToken` belongs to (spent or not). Unknown tokens are ignored. */
  logout(refreshToken: string): void {
    const record = this.#refreshTokens.get(refreshToken)
    const family = record && this.#families.get(record.sid)
    if (family) family.revoked = true
  }

  /** Revokes every family: all refresh and access tokens issued so far stop working. */
  revokeAll(): void {
    for (const family of this.#families.values()) family.revoked = true
  }

  /** Invalidates every access token issued so far; later ones are unaffected. */
  expireAccessTokens(): void {
    this.#expiredThrough = this.#seq
  }

  /**
   * Returns the claims of a currently valid access token: good signature, not expired on
   * the server's clock, not expired by {@link expireAccessTokens}, family not revoked.
   */
  verifyAccessToken(token: string): AccessTokenClaims | null {
    const claims = verifyJwt(token, this.#secret)
    if (!claims) return null
    const seq = this.#accessSeq.get(claims.jti)
    if (seq === undefined || seq <= this.#expiredThrough) return null
    if (claims.exp * 1000 <= this.#options.now()) return null
    const family = this.#families.get(claims.sid)
    return family && !family.revoked ? claims : null
  }

  #issueAccess({ sub, jkt }: Family, sid: string): string {
    const iat = Math.floor(this.#options.now() / 1000)
    const jti = randomUUID()
    this.#accessSeq.set(jti, ++this.#seq)
    const exp = iat + this.#options.accessTokenTtl
    const claims: AccessTokenClaims = { sub, iat, exp, jti, sid }
    if (jkt !== undefined) claims.cnf = { jkt }
    return signJwt(claims, this.#secret)
  }

  #issueRefresh(sid: string): string {
    const token = randomBytes(32).toString('base64url')
    const expiresAt = this.#options.now() + this.#options.refreshTokenTtl * 1000
    this.#refreshTokens.set(token, { sid, expiresAt, spent: false })
    return token
  }
}
