import type { IncomingMessage, ServerResponse } from 'node:http'
import type { QueuedFault } from './faults.js'
import {
  exchangeRefreshToken,
  type RefreshDialect,
  refusedTokenInUrl,
  TEST_PASSWORD,
} from './grants.js'
import { parseJsonObject, sendEmpty, sendJson } from './http.js'
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
  /** Bumps a counter as a response is decided. */
  count(counter: keyof TestAuthServerCounters): void
  /** Issues a session and counts the login. */
  login(username: string): TokenSet
  /** Consumes the fault for this refresh call, if one is queued. */
  takeFault(): QueuedFault | undefined
  /** Parks a hung request: `true` once released (answer it), `false` if the server closed. */
  hang(): Promise<boolean>
  /** Next value of the running count of successful protected responses. */
  nextProtectedCount(): number
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

function sendTokens(res: ServerResponse, tokens: TokenSet | RefreshedTokens): void {
  sendJson(res, 200, { ...tokens, tokenType: 'Bearer' })
}

const jsonDialect: RefreshDialect = { sendTokens, rejectionStatus: 401 }

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendJson(res, 405, { error: 'method_not_allowed' }, { allow })
}

function bodyString(body: string, key: string): string | undefined {
  const value = parseJsonObject(body)?.[key]
  return typeof value === 'string' && value !== '' ? value : undefined
}

function login(ctx: RouteContext, { res, body }: RoutedRequest) {
  const credentials = parseJsonObject(body)
  if (!credentials) return sendJson(res, 400, invalidRequest)
  const { username, password } = credentials
  if (typeof username !== 'string' || username === '' || password !== TEST_PASSWORD) {
    return sendJson(res, 401, { error: 'invalid_credentials' })
  }
  sendTokens(res, ctx.login(username))
}

async function refresh(ctx: RouteContext, request: RoutedRequest) {
  if (refusedTokenInUrl(ctx, request)) return
  const refreshToken = bodyString(request.body, 'refreshToken')
  if (!refreshToken) {
    ctx.count('refreshFailures')
    return sendJson(request.res, 400, invalidRequest)
  }
  await exchangeRefreshToken(ctx, request, refreshToken, jsonDialect)
}

function logout(ctx: RouteContext, { res, body }: RoutedRequest) {
  const refreshToken = bodyString(body, 'refreshToken')
  if (!refreshToken) return sendJson(res, 400, invalidRequest)
  ctx.store.logout(refreshToken)
  sendEmpty(res, 204)
}

function bearerToken(header: string | undefined): string | undefined {
  return header?.match(/^Bearer +(\S+) *$/i)?.[1]
}

function protectedResource(ctx: RouteContext, { req, res, method, path }: RoutedRequest) {
  // Checked only now, after any hold or delay, so a token that expires while a request
  // waits is rejected, as it would be by a real server that is slow to get to it.
  const token = bearerToken(req.headers.authorization)
  const claims = token ? ctx.store.verifyAccessToken(token) : null
  if (!claims) {
    ctx.count('unauthorized')
    if (path === '/api/soft-401') {
      return sendJson(res, 200, { code: 401, message: 'token expired' })
    }
    return sendJson(
      res,
      401,
      { error: 'invalid_token' },
      { 'www-authenticate': 'Bearer error="invalid_token"' },
    )
  }
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
    const body = path === '/public' ? { ok: true } : authorizationServerMetadata(ctx.issuer)
    return sendJson(res, 200, body)
  }
  sendJson(res, 404, { error: 'not_found', path })
}
