import type { ServerResponse } from 'node:http'
import {
  checkTokenRequestProof,
  exchangeRefreshToken,
  hasTokenInUrl,
  type RefreshDialect,
  refusedTokenInUrl,
  TEST_PASSWORD,
  type TokenType,
} from './grants.js'
import { sendJson } from './http.js'
import type { RouteContext, RoutedRequest } from './routes.js'
import type { RefreshedTokens } from './tokens.js'

/** Path of the standard OAuth 2.0 token endpoint. */
export const OAUTH_TOKEN_PATH = '/oauth/token'

/** Paths serving {@link authorizationServerMetadata}: RFC 8414's and OpenID Connect's. */
export const METADATA_PATHS: readonly string[] = [
  '/.well-known/oauth-authorization-server',
  '/.well-known/openid-configuration',
]

/**
 * Minimal authorization server metadata (RFC 8414): enough for OAuth libraries' discovery
 * (openid-client's `discovery()`) to find the token endpoint. There is no authorization
 * endpoint and no ID token, hence no `jwks_uri`. With DPoP, it lists
 * `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
 */
export function authorizationServerMetadata(issuer: string, dpop = false) {
  return {
    issuer,
    token_endpoint: `${issuer}${OAUTH_TOKEN_PATH}`,
    grant_types_supported: ['password', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['none'],
    ...(dpop && { dpop_signing_alg_values_supported: ['ES256'] }),
  }
}

/**
 * Whether a request to the token endpoint spends (or tries to spend) a refresh token, so
 * it is counted in the refresh counters like `POST /auth/refresh`: a `refresh_token` grant
 * in the body, or a refresh token put in the URL (which is refused).
 */
export function isOAuthRefreshCall(query: string, body: string): boolean {
  return new URLSearchParams(body).get('grant_type') === 'refresh_token' || hasTokenInUrl(query)
}

function sendOAuthTokens(res: ServerResponse, tokens: RefreshedTokens, tokenType: TokenType): void {
  const body: Record<string, unknown> = {
    access_token: tokens.accessToken,
    token_type: tokenType,
    expires_in: tokens.expiresIn,
  }
  // Absent without rotation, as RFC 6749 §6 allows: the client keeps its refresh token.
  if (tokens.refreshToken !== undefined) body.refresh_token = tokens.refreshToken
  sendJson(res, 200, body)
}

// RFC 6749 §5.2: a refused grant is 400 invalid_grant (the JSON route's 401 is its own).
const oauthDialect: RefreshDialect = { sendTokens: sendOAuthTokens, rejectionStatus: 400 }

function isForm(request: RoutedRequest): boolean {
  const type = request.req.headers['content-type'] ?? ''
  return type.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded'
}

/**
 * `POST /oauth/token`, the OAuth 2.0 token endpoint (RFC 6749): a form-encoded body with
 * `grant_type=password` (`username`, `password`) or `grant_type=refresh_token`
 * (`refresh_token`), and a `client_id` (any non-empty value: public clients, no secret).
 * Answers `{ access_token, token_type: 'Bearer', expires_in, refresh_token }`, or an OAuth
 * error. Refresh grants share `/auth/refresh`'s rotation, reuse detection, faults and
 * counters; a refused refresh token is 400 `invalid_grant`, as RFC 6749 says.
 * With DPoP, a well-formed request's proof is checked before the grant (see
 * `checkTokenRequestProof`), and tokens are issued as `token_type: 'DPoP'`.
 */
export async function oauthToken(ctx: RouteContext, request: RoutedRequest): Promise<void> {
  const { res } = request
  const params = new URLSearchParams(request.body)
  const grant = params.get('grant_type')
  const refusal = (status: number, error: string, error_description?: string) => {
    if (grant === 'refresh_token') ctx.count('refreshFailures')
    sendJson(res, status, error_description ? { error, error_description } : { error })
  }
  if (refusedTokenInUrl(ctx, request)) return
  if (!isForm(request)) {
    return refusal(400, 'invalid_request', 'send application/x-www-form-urlencoded')
  }
  if (!params.get('client_id')) return refusal(401, 'invalid_client', 'client_id is required')
  if (grant === 'password') {
    const key = checkTokenRequestProof(ctx, request, false)
    if (!key) return
    const username = params.get('username')
    if (!username || params.get('password') !== TEST_PASSWORD) {
      return sendJson(res, 400, { error: 'invalid_grant' })
    }
    return sendOAuthTokens(res, ctx.login(username, key.jkt), ctx.tokenType)
  }
  if (grant === 'refresh_token') {
    const refreshToken = params.get('refresh_token')
    if (!refreshToken) return refusal(400, 'invalid_request', 'refresh_token is required')
    const key = checkTokenRequestProof(ctx, request, true)
    if (!key) return
    return exchangeRefreshToken(ctx, request, refreshToken, oauthDialect, key)
  }
  refusal(400, 'unsupported_grant_type')
}
