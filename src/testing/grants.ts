import type { ServerResponse } from 'node:http'
import { faultResponse, type RefreshFaultKind } from './faults.js'
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

/** Answers a refresh call with its fault instead of what the server decided. */
async function answerFault(
  ctx: RouteContext,
  { req, res }: RoutedRequest,
  kind: RefreshFaultKind,
): Promise<void> {
  if (kind === 'reset') return void req.socket.destroy()
  if (kind === 'hang') {
    if (await ctx.hang()) sendJson(res, 503, { error: 'temporarily_unavailable' })
    return
  }
  const canned = faultResponse(kind)
  if (canned) sendRaw(res, canned.status, canned.body, canned.headers)
}

/**
 * Spends `refreshToken` the way every refresh route does: queued faults first (or, queued
 * `afterRefresh`, instead of the answer), then the store's rotation and reuse detection, with
 * the refresh counters kept. Shared so the JSON and OAuth routes cannot drift apart.
 */
export async function exchangeRefreshToken(
  ctx: RouteContext,
  request: RoutedRequest,
  refreshToken: string,
  dialect: RefreshDialect,
): Promise<void> {
  const { res } = request
  const fault = ctx.takeFault()
  if (fault && !fault.afterRefresh) {
    ctx.count('refreshFailures')
    return answerFault(ctx, request, fault.kind)
  }
  const outcome = ctx.store.refresh(refreshToken)
  ctx.count(outcome.ok ? 'refreshSuccesses' : 'refreshFailures')
  if (!outcome.ok && outcome.reason === 'reuse') ctx.count('reuseDetections')
  // Processed and counted: what the server decided never reaches the client.
  if (fault) return answerFault(ctx, request, fault.kind)
  if (outcome.ok) return dialect.sendTokens(res, outcome.tokens)
  if (outcome.reason === 'reuse') {
    return sendJson(res, dialect.rejectionStatus, {
      error: 'invalid_grant',
      error_description: 'refresh token reuse detected',
    })
  }
  sendJson(res, dialect.rejectionStatus, { error: 'invalid_grant' })
}
