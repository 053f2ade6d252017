import type { ServerResponse } from 'node:http'
import { faultResponse, type RefreshFaultKind } from './faults.js'
import { sendJson, sendRaw } from './http.js'
import type { RouteContext, RoutedRequest } from './routes.js'
import type { RefreshedTokens, RefreshRejection } from './tokens.js'

/** The `token_type` of issued access tokens: `'DPoP'` on a server with the `dpop` option. */
export type TokenType = 'Bearer' | 'DPoP'

/** The password every test user has. Any non-empty user name logs in with it. */
export const TEST_PASSWORD = 'secret'

/**
 * How a refresh is answered on one route: the JSON route speaks this server's camelCase
 * dialect and answers a refused grant with 401; the OAuth route speaks RFC 6749.
 */
export interface RefreshDialect {
  /** Sends freshly issued tokens, labelled `tokenType` (`'Bearer'`, or `'DPoP'` when bound). */
  sendTokens(res: ServerResponse, tokens: RefreshedTokens, tokenType: TokenType): void
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

/** A token request that passed the DPoP check: the key to bind to, if the server does DPoP. */
export interface TokenRequestKey {
  /** Thumbprint of the proof's key; `undefined` on a server without the `dpop` option. */
  jkt: string | undefined
}

/**
 * With the `dpop` option, checks the proof of a token request (`POST` to its own URL, no
 * `ath`) and answers a refusal: 400 `invalid_dpop_proof`, or 400 `use_dpop_nonce` with a
 * `DPoP-Nonce` header. A refused proof on a refresh call counts as a failed refresh, like
 * any other malformed refresh request; a nonce challenge does not (the client retries at
 * once). Returns `null` once it has answered; no fault is taken and nothing is spent.
 */
export function checkTokenRequestProof(
  ctx: RouteContext,
  { req, res, path }: RoutedRequest,
  refresh: boolean,
): TokenRequestKey | null {
  if (!ctx.dpop) return { jkt: undefined }
  const verdict = ctx.dpop.check({
    endpoint: 'token',
    proof: req.headers.dpop,
    method: 'POST',
    url: `${ctx.issuer}${path}`,
  })
  if (verdict.ok) return { jkt: verdict.jkt }
  const body = { error: verdict.error, error_description: verdict.description }
  if (verdict.error === 'use_dpop_nonce') {
    ctx.count('dpopNonceChallenges')
    sendJson(res, 400, body, { 'dpop-nonce': verdict.nonce })
    return null
  }
  ctx.count('dpopProofsRefused')
  if (verdict.replay) ctx.count('dpopReplays')
  if (refresh) ctx.count('refreshFailures')
  sendJson(res, 400, body)
  return null
}

const REJECTION_DESCRIPTIONS: Partial<Record<RefreshRejection, string>> = {
  reuse: 'refresh token reuse detected',
  'key-mismatch': 'DPoP key mismatch',
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
 * `key` is what {@link checkTokenRequestProof} let through: a DPoP-bound session refreshes
 * only with a proof from its own key.
 */
export async function exchangeRefreshToken(
  ctx: RouteContext,
  request: RoutedRequest,
  refreshToken: string,
  dialect: RefreshDialect,
  key: TokenRequestKey,
): Promise<void> {
  const { res } = request
  const fault = ctx.takeFault()
  if (fault && !fault.afterRefresh) {
    ctx.count('refreshFailures')
    return answerFault(ctx, request, fault.kind)
  }
  const outcome = ctx.store.refresh(refreshToken, key.jkt)
  ctx.count(outcome.ok ? 'refreshSuccesses' : 'refreshFailures')
  if (!outcome.ok && outcome.reason === 'reuse') ctx.count('reuseDetections')
  // Processed and counted: what the server decided never reaches the client.
  if (fault) return answerFault(ctx, request, fault.kind)
  if (outcome.ok) return dialect.sendTokens(res, outcome.tokens, ctx.tokenType)
  const description = REJECTION_DESCRIPTIONS[outcome.reason]
  sendJson(
    res,
    dialect.rejectionStatus,
    description
      ? { error: 'invalid_grant', error_description: description }
      : { error: 'invalid_grant' },
  )
}
