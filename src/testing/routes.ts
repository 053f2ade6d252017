import type { IncomingMessage, ServerResponse } from 'node:http'
import { faultResponse, type RefreshFaultKind } from './faults.js'
import { parseJsonObject, sendEmpty, sendJson, sendRaw } from './http.js'
import type { RefreshedTokens, TokenSet, TokenStore } from './tokens.js'
import type { TestAuthServerCounters } from './types.js'

/** The password every test user has. Any non-empty user name logs in with it. */
export const TEST_PASSWORD = 'secret'

/** What the application routes need from the server. */
export interface RouteContext {
  /** The server's sessions. */
  readonly store: TokenStore
  /** Bumps a counter as a response is decided. */
  count(counter: keyof TestAuthServerCounters): void
  /** Issues a session and counts the login. */
  login(username: string): TokenSet
  /** Consumes the fault for this refresh call, if one is queued. */
  takeFault(): RefreshFaultKind | undefined
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

async function refresh(ctx: RouteContext, { req, res, query, body }: RoutedRequest) {
  const params = new URLSearchParams(query)
  // A token in a URL ends up in access logs and Referer headers; refusing it loudly makes
  // a client that sends one fail its tests instead of quietly working.
  if (params.has('refreshToken') || params.has('refresh_token')) {
    ctx.count('refreshFailures')
    return sendJson(res, 400, {
      ...invalidRequest,
      error_description: 'refresh token must be sent in the JSON body, never in the URL',
    })
  }
  const refreshToken = bodyString(body, 'refreshToken')
  if (!refreshToken) {
    ctx.count('refreshFailures')
    return sendJson(res, 400, invalidRequest)
  }
  const fault = ctx.takeFault()
  if (fault !== undefined) {
    ctx.count('refreshFailures')
    if (fault === 'reset') return void req.socket.destroy()
    if (fault === 'hang') {
      if (await ctx.hang()) sendJson(res, 503, { error: 'temporarily_unavailable' })
      return
    }
    const canned = faultResponse(fault)
    if (canned) sendRaw(res, canned.status, canned.body, canned.headers)
    return
  }
  const outcome = ctx.store.refresh(refreshToken)
  if (outcome.ok) {
    ctx.count('refreshSuccesses')
    return sendTokens(res, outcome.tokens)
  }
  ctx.count('refreshFailures')
  if (outcome.reason === 'reuse') {
    ctx.count('reuseDetections')
    return sendJson(res, 401, {
      error: 'invalid_grant',
      error_description: 'refresh token reuse detected',
    })
  }
  sendJson(res, 401, { error: 'invalid_grant' })
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
])

/**
 * Answers an application request: `/auth/*`, protected `/api/*`, `/public`, or 404.
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
  if (path === '/public') {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
    return sendJson(res, 200, { ok: true })
  }
  sendJson(res, 404, { error: 'not_found', path })
}
