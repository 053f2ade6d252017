import type { ServerResponse } from 'node:http'
import { faultResponse } from './faults.js'
import { sendJson, sendRaw } from './http.js'
import type { RouteContext, RoutedRequest } from './routes.js'
import type { RefreshedTokens } from './tokens.js'

/** The password every test user has. Any non-empty user name logs in with it. */
export const TEST_PASSWORD = 'secret'

/**
 * How a refresh is answered on one route: the JSON route speaks this server's camelCase
 * dialect and answers a refused grant with 401; the OAuth route speaks RFC 6749.
 */
export interface RefreshDialect {
  /** Sends freshly issued tokens. */
  sendTokens(res: ServerResponse, tokens: RefreshedTokens): void
  /** HTTP status for a refused refresh token (`invalid_grant`). */
  readonly rejectionStatus: number
}

/** Whether a query string carries a refresh token, in either spelling. */
export function hasTokenInUrl(query: string): boolean {
  const params = new URLSearchParams(query)
  return params.has('refreshToken') || params.has('refresh_token')
}

/**
 * Turns down a request that carries a refresh token in its URL, counting it as a failed
 * refresh. A token in a URL ends up in access logs and Referer headers; refusing it loudly
 * makes a client that sends one fail its tests instead of quietly working.
 */
export function refusedTokenInUrl(ctx: RouteContext, { res, query }: RoutedRequest): boolean {
  if (!hasTokenInUrl(query)) return false
  ctx.count('refreshFailures')
  sendJson(res, 400, {
    error: 'invalid_request',
    error_description: 'refresh token must be sent in the request body, never in the URL',
  })
  return true
}

/**
 * Spends `refreshToken` the way every refresh route does: queued faults first, then the
 * store's rotation and reuse detection, with the refresh counters kept. Shared so the JSON
 * and OAuth routes cannot drift apart.
 */
export async function exchangeRefreshToken(
  ctx: RouteContext,
  { req, res }: RoutedRequest,
  refreshToken: string,
  dialect: RefreshDialect,
): Promise<void> {
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
    return dialect.sendTokens(res, outcome.tokens)
  }
  ctx.count('refreshFailures')
  if (outcome.reason === 'reuse') {
    ctx.count('reuseDetections')
    return sendJson(res, dialect.rejectionStatus, {
      error: 'invalid_grant',
      error_description: 'refresh token reuse detected',
    })
  }
  sendJson(res, dialect.rejectionStatus, { error: 'invalid_grant' })
}
