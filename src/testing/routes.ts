import type { IncomingMessage, ServerResponse } from 'node:http'
import type { DpopPolicy } from './dpop-policy.js'
import type { QueuedFault } from './faults.js'
import {
  checkTokenRequestProof,
  exchangeRefreshToken,
  type RefreshDialect,
  refusedTokenInUrl,
  TEST_PASSWORD,
  type TokenType,
} from './grants.js'
import { parseJsonObject, sendEmpty, sendJson } from './http.js'
import type { AccessTokenClaims } from './jwt.js'
import {
  authorizationServerMetadata,
  METADATA_PATHS,
  OAUTH_TOKEN_PATH,
  oauthToken,
} from './oauth.js'
import type { RefreshedTokens, TokenSet, TokenStore } from './tokens.js'
import type { TestAuthServerCounters } from './types.js'

export { TEST_PASSWORD } from './grants.js'

/** What the application routes need from the server. */
export interface RouteContext {
  /** The server's base URL, its OAuth issuer identifier. */
  readonly issuer: string
  /** The server's sessions. */
  readonly store: TokenStore
  /** DPoP rules and state; `undefined` on a server without the `dpop` option. */
  readonly dpop: DpopPolicy | undefined
  /** `token_type` of the tokens this server issues. */
  readonly tokenType: TokenType
  /** Bumps a counter as a response is decided. */
  count(counter: keyof TestAuthServerCounters): void
  /** Issues a session and counts the login; `jkt` binds it to a DPoP key. */
  login(username: string, jkt: string | undefined): TokenSet
  /** Consumes the fault for this refresh call, if one is queued. */
  takeFault(): QueuedFault | undefined
  /** Parks a hung request: `true` once released (answer it), `false` if the server closed. */
  hang(): Promise<boolean>
  /** Next value of the running count of successful protected responses. */
  nextProtectedCount(): number
  /**
   * A pending {@link TestAuthServer.challengeDpopNonce} for `path`: consumed, the nonce
   * rotated and the retry's hold in place; returns the new nonce. `undefined` when none.
   */
  takeNonceChallenge(path: string): string | undefined
}

/** A request after routing information has been extracted and its body read. */
export interface RoutedRequest {
  /** The raw request; its body has already been consumed into `body`. */
  req: IncomingMessage
  /** Where the answer goes. */
  res: ServerResponse
  /** HTTP method, upper case. */
  method: string
  /** Path without the query string. */
  path: string
  /** Raw text after `?`, `''` when none. */
  query: string
  /** Raw body, `''` when none. */
  body: string
}

const invalidRequest = { error: 'invalid_request' }

function sendTokens(
  res: ServerResponse,
  tokens: TokenSet | RefreshedTokens,
  tokenType: TokenType,
): void {
  sendJson(res, 200, { ...tokens, tokenType })
}

const jsonDialect: RefreshDialect = { sendTokens, rejectionStatus: 401 }

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: 'method_not_allowed' }, { allow })
}

function bodyString(body: string, key: string): string | undefined {
  const value = parseJsonObject(body)?.[key]
  return typeof value === 'string' && value !== '' ? value : undefined
}

function login(ctx: RouteContext, request: RoutedRequest) {
  const { res, body } = request
  const credentials = parseJsonObject(body)
  if (!credentials) return sendJson(res, 400, invalidRequest)
  const key = checkTokenRequestProof(ctx, request, false)
  if (!key) return
  const { username, password } = credentials
  if (typeof username !== 'string' || username === '' || password !== TEST_PASSWORD) {
    return sendJson(res, 401, { error: 'invalid_credentials' })
  }
  sendTokens(res, ctx.login(username, key.jkt), ctx.tokenType)
}

async function refresh(ctx: RouteContext, request: RoutedRequest) {
  if (refusedTokenInUrl(ctx, request)) return
  const refreshToken = bodyString(request.body, 'refreshToken')
  if (!refreshToken) {
    ctx.count('refreshFailures')
    return sendJson(request.res, 400, invalidRequest)
  }
  const key = checkTokenRequestProof(ctx, request, true)
  if (!key) return
  await exchangeRefreshToken(ctx, request, refreshToken, jsonDialect, key)
}

function logout(ctx: RouteContext, { res, body }: RoutedRequest) {
  const refreshToken = bodyString(body, 'refreshToken')
  if (!refreshToken) return sendJson(res, 400, invalidRequest)
  ctx.store.logout(refreshToken)
  sendEmpty(res, 204)
}

/** The token of an `Authorization: <scheme> <token>` header (scheme case-insensitive). */
function schemeToken(header: string | undefined, scheme: TokenType): string | undefined {
  const match = header?.match(/^(\S+) +(\S+) *$/)
  return match?.[1]?.toLowerCase() === scheme.toLowerCase() ? match[2] : undefined
}

/**
 * With the `dpop` option, checks the proof sent with a valid bound token (RFC 9449 §7.1)
 * and answers a refusal with 401 and `WWW-Authenticate: DPoP error=...`: `invalid_dpop_proof`
 * (counted as refused, not as `unauthorized`), or `use_dpop_nonce` with a `DPoP-Nonce`
 * header (counted as a challenge). Returns whether it answered.
 */
function refusedResourceProof(
  ctx: RouteContext,
  { req, res, method, path }: RoutedRequest,
  accessToken: string,
  claims: AccessTokenClaims,
): boolean {
  if (!ctx.dpop) return false
  const verdict = ctx.dpop.check({
    endpoint: 'resource',
    proof: req.headers.dpop,
    method,
    url: `${ctx.issuer}${path}`,
    accessToken,
    ...(claims.cnf && { boundJkt: claims.cnf.jkt }),
  })
  if (verdict.ok) return false
  const headers: Record<string, string> = {
    'www-authenticate': `DPoP error="${verdict.error}"`,
  }
  if (verdict.error === 'use_dpop_nonce') {
    ctx.count('dpopNonceChallenges')
    headers['dpop-nonce'] = verdict.nonce
  } else {
    ctx.count('dpopProofsRefused')
    if (verdict.replay) ctx.count('dpopReplays')
  }
  sendJson(res, 401, { error: verdict.error, error_description: verdict.description }, headers)
  return true
}

function protectedResource(ctx: RouteContext, request: RoutedRequest) {
  const { req, res, method, path } = request
  const challenged = ctx.takeNonceChallenge(path)
  if (challenged !== undefined) {
    ctx.count('dpopNonceChallenges')
    return sendJson(
      res,
      401,
      { error: 'use_dpop_nonce' },
      { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': challenged },
    )
  }
  // Checked only now, after any hold or delay, so a token that expires while a request
  // waits is rejected, as it would be by a real server that is slow to get to it.
  // The token comes before the proof: a client told `invalid_token` refreshes, and a proof
  // cannot make up for a dead token. A DPoP server takes bound tokens only, as DPoP.
  const token = schemeToken(req.headers.authorization, ctx.tokenType)
  const claims = token ? ctx.store.verifyAccessToken(token) : null
  if (!token || !claims || (ctx.dpop && !claims.cnf)) {
    ctx.count('unauthorized')
    if (path === '/api/soft-401') {
      return sendJson(res, 200, { code: 401, message: 'token expired' })
    }
    return sendJson(
      res,
      401,
      { error: 'invalid_token' },
      { 'www-authenticate': `${ctx.tokenType} error="invalid_token"` },
    )
  }
  if (refusedResourceProof(ctx, request, token, claims)) return
  ctx.count('protectedOk')
  sendJson(res, 200, { ok: true, sub: claims.sub, path, method, n: ctx.nextProtectedCount() })
}

// A Map, not an object literal: request paths must never reach prototype properties.
const authRoutes = new Map<string, (ctx: RouteContext, r: RoutedRequest) => void | Promise<void>>([
  ['/auth/login', login],
  ['/auth/refresh', refresh],
  ['/auth/logout', logout],
  [OAUTH_TOKEN_PATH, oauthToken],
])

/**
 * Answers an application request: `/auth/*`, the OAuth token endpoint and metadata,
 * protected `/api/*`, `/public`, or 404.
 * The request has already been logged and has passed holds and delays.
 */
export async function handleAppRoute(ctx: RouteContext, request: RoutedRequest): Promise<void> {
  const { method, path, res } = request
  const auth = authRoutes.get(path)
  if (auth) {
    if (method !== 'POST') return methodNotAllowed(res, 'POST')
    return auth(ctx, request)
  }
  if (path.startsWith('/api/')) return protectedResource(ctx, request)
  if (path === '/public' || METADATA_PATHS.includes(path)) {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
    const body =
      path === '/public' ? { ok: true } : authorizationServerMetadata(ctx.issuer, !!ctx.dpop)
    return sendJson(res, 200, body)
  }
  sendJson(res, 404, { error: 'not_found', path })
}
