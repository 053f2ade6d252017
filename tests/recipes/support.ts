import { expect } from 'vitest'
import type { LoggedRequest, TestAuthServer } from '../../src/testing/index.js'
import { createHarness, type Harness } from '../helpers.js'

/** Callers in a burst: enough that a second refresh or a double replay would show. */
export const BURST = 50

/**
 * Which token a logged request carried, by name: assertions compare names, so a failing test
 * never prints a token.
 */
export type Carried = 'expired' | 'fresh' | 'none' | 'other'

/** What the token server's protected routes answer: the recipes read it back. */
export interface Echo {
  ok: boolean
  path: string
  method: string
}

/** The JSON body every recipe POSTs, as it must arrive both times. */
export const ITEM = { title: 'milk', qty: 2 }

/**
 * A POST of {@link ITEM} to `/api/items` met a 401 with the `expired` token and was replayed
 * once, with the fresh token and the same bytes.
 */
export async function expectItemReplayedOnce(h: Harness, expired: string) {
  const body = JSON.stringify(ITEM)
  expect(logged(h.server, '/api/items', { expired, fresh: await currentToken(h) })).toEqual([
    { method: 'POST', query: '', body, token: 'expired' },
    { method: 'POST', query: '', body, token: 'fresh' },
  ])
}

/** The token the burst started with (now refused by the server) and the one it ended with. */
export interface Tokens {
  expired: string
  fresh: string
}

/** A fetch-transport harness, signed in: the recipes hand `h.auth.fetch` to each library. */
export async function signedIn(): Promise<Harness> {
  const h = await createHarness({}, {}, 'fetch')
  await h.signIn()
  return h
}

/** The current access token; the recipes only run while signed in. */
export async function currentToken(h: Harness): Promise<string> {
  const token = await h.auth.getAccessToken()
  if (token === null) throw new Error('expected a signed-in client')
  return token
}

/** Expires the session's access token on the server; returns it, to recognise it in the log. */
export async function expireToken(h: Harness): Promise<string> {
  const expired = await currentToken(h)
  h.server.expireAccessTokens()
  return expired
}

export function carried(request: LoggedRequest, tokens: Tokens): Carried {
  if (request.authorization === undefined) return 'none'
  if (request.authorization === `Bearer ${tokens.expired}`) return 'expired'
  if (request.authorization === `Bearer ${tokens.fresh}`) return 'fresh'
  return 'other'
}

/** What the server logged for `path`, oldest first, with the token named. */
export function logged(server: TestAuthServer, path: string, tokens: Tokens) {
  return server.requests
    .filter((request) => request.path === path)
    .map((request) => ({
      method: request.method,
      query: request.query,
      body: request.body,
      token: carried(request, tokens),
    }))
}

/** For each request the server logged for `path`, oldest first: did it carry a token? */
export function tokenSent(server: TestAuthServer, path: string): boolean[] {
  return server.requests
    .filter((request) => request.path === path)
    .map((request) => request.authorization !== undefined)
}

/**
 * The attempts of every call of a burst, told apart by their query string (one distinct
 * query per call), as the tokens they carried in arrival order.
 */
export function attemptsPerCall(server: TestAuthServer, path: string, tokens: Tokens) {
  const calls = new Map<string, Carried[]>()
  for (const { query, token } of logged(server, path, tokens)) {
    calls.set(query, [...(calls.get(query) ?? []), token])
  }
  return [...calls.values()]
}

/**
 * Invariants 1 and 4 as a library's user sees them: one refresh for the whole burst, and
 * every call either went out once with the fresh token or met its 401 and was replayed
 * exactly once with the fresh token. Returns the figures for the report.
 */
export function expectOneRefreshForTheBurst(h: Harness, path: string, tokens: Tokens) {
  const attempts = attemptsPerCall(h.server, path, tokens)
  expect(attempts).toHaveLength(BURST)
  for (const call of attempts) expect([['fresh'], ['expired', 'fresh']]).toContainEqual(call)
  const requests = attempts.flat().length
  expect(requests).toBeLessThanOrEqual(2 * BURST)
  expect(h.server.counters.refreshCalls).toBe(1)
  expect(h.server.counters.reuseDetections).toBe(0)
  expect(h.server.counters.protectedOk).toBe(BURST)
  expect(h.server.counters.unauthorized).toBe(requests - BURST)
  return { refreshes: h.server.counters.refreshCalls, ok: BURST, requests }
}

/**
 * Runs `call` on an expired token and makes its one replay meet a 401 as well: the refresh
 * succeeds, the replay is held, and the server drops the refreshed token before answering
 * it. This is the "401 that survives the replay" each library then reports in its own way.
 */
export async function withRejectedReplay<T>(h: Harness, call: () => Promise<T>): Promise<T> {
  h.server.expireAccessTokens()
  const refresh = h.server.hold('/auth/refresh')
  const pending = call()
  // Handled here as well: it may settle while the holds are being arranged.
  pending.catch(() => undefined)
  await refresh.untilWaiting(1)
  const replay = h.server.hold('/api/')
  refresh.release()
  await replay.untilWaiting(1)
  h.server.expireAccessTokens()
  replay.release()
  return pending
}
