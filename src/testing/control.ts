import type { ServerResponse } from 'node:http'
import type { DelayRules } from './delays.js'
import { type FaultQueue, parseFaultKind } from './faults.js'
import type { HoldRegistry } from './holds.js'
import { parseJsonObject, sendEmpty, sendJson } from './http.js'
import type { TokenSet } from './tokens.js'
import type { TestAuthServer } from './types.js'

/** What the control routes drive: the public API plus the registries behind it. */
export interface ControlTarget {
  /** The server's public API. */
  readonly server: TestAuthServer
  /** Holds, addressed by id over HTTP. */
  readonly holds: HoldRegistry
  /** Queued refresh faults, listed in the status. */
  readonly faults: FaultQueue
  /** Delay rules, listed in the status. */
  readonly delays: DelayRules
}

/** A JSON-safe picture of the server's state, served at `GET /__control/status`. */
export function controlStatus({ server, holds, faults, delays }: ControlTarget) {
  return {
    counters: server.counters,
    refreshInFlight: server.refreshInFlight,
    maxConcurrentRefreshes: server.maxConcurrentRefreshes,
    holds: holds.list().map(({ id, pathPrefix, waiting }) => ({
      id,
      pathPrefix,
      waiting: waiting(),
    })),
    faults: faults.list(),
    delays: delays.list(),
    // Only where nonces are on, so other servers' status is unchanged.
    ...(server.dpopNonce !== undefined && { dpopNonce: server.dpopNonce }),
  }
}

type Params = Record<string, unknown>
type Action = (target: ControlTarget, params: Params, res: ServerResponse) => void

function badRequest(res: ServerResponse, description: string): void {
  sendJson(res, 400, { error: 'invalid_request', error_description: description })
}

function done(res: ServerResponse): void {
  sendEmpty(res, 204)
}

function simple(run: (server: TestAuthServer) => void): Action {
  return ({ server }, _, res) => {
    run(server)
    done(res)
  }
}

// JSON has no Infinity, so `null` or the string 'Infinity' stand for it.
function parseTimes(value: unknown): number | undefined {
  if (value === undefined) return 1
  if (value === null || value === 'Infinity') return Number.POSITIVE_INFINITY
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined
}

const posts = new Map<string, Action>([
  [
    'login',
    ({ server }, { username, jkt }, res) => {
      if (username !== undefined && (typeof username !== 'string' || username === '')) {
        return badRequest(res, 'username must be a non-empty string')
      }
      if (jkt !== undefined && typeof jkt !== 'string') {
        return badRequest(res, 'jkt must be a string')
      }
      let tokens: TokenSet
      try {
        tokens = server.login(username, jkt === undefined ? {} : { jkt })
      } catch (error) {
        // login's own messages: about the jkt option, never about a token.
        return badRequest(res, error instanceof Error ? error.message : String(error))
      }
      sendJson(res, 200, { ...tokens, tokenType: jkt === undefined ? 'Bearer' : 'DPoP' })
    },
  ],
  [
    'rotate-dpop-nonce',
    ({ server }, _, res) => {
      if (server.dpopNonce === undefined) {
        return badRequest(res, 'DPoP nonces are off: set the dpop.nonce option')
      }
      sendJson(res, 200, { nonce: server.rotateDpopNonce() })
    },
  ],
  ['expire-access-tokens', simple((s) => s.expireAccessTokens())],
  ['revoke-sessions', simple((s) => s.revokeSessions())],
  [
    'fail-next-refresh',
    ({ server }, { kind, times, afterRefresh = false }, res) => {
      const fault = parseFaultKind(kind)
      const count = parseTimes(times)
      if (fault === undefined) return badRequest(res, 'unknown fault kind')
      if (count === undefined) return badRequest(res, 'times must be an integer >= 0 or null')
      if (typeof afterRefresh !== 'boolean')
        return badRequest(res, 'afterRefresh must be a boolean')
      server.failNextRefresh(fault, { times: count, afterRefresh })
      done(res)
    },
  ],
  ['clear-faults', simple((s) => s.clearFaults())],
  ['release-hung', simple((s) => s.releaseHung())],
  [
    'hold',
    ({ holds }, { path }, res) => {
      if (typeof path !== 'string') return badRequest(res, 'path must be a string')
      sendJson(res, 200, { id: holds.create(path).id })
    },
  ],
  [
    'release',
    ({ holds }, { id }, res) => {
      if (id === undefined) {
        for (const hold of holds.list()) hold.release()
        return done(res)
      }
      const hold = typeof id === 'number' ? holds.get(id) : undefined
      if (!hold) return sendJson(res, 404, { error: 'not_found' })
      hold.release()
      done(res)
    },
  ],
  [
    'delay',
    ({ server }, { path, ms }, res) => {
      if (typeof path !== 'string') return badRequest(res, 'path must be a string')
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        return badRequest(res, 'ms must be a finite number >= 0')
      }
      server.delay(path, ms)
      done(res)
    },
  ],
  ['clear-delays', simple((s) => s.clearDelays())],
  ['reset-counters', simple((s) => s.resetCounters())],
])

/**
 * Answers `/__control/*`: the programmatic controls over HTTP, for browser pages and the
 * visualizer. POST bodies are JSON objects (an empty body counts as `{}`).
 *
 * - `GET counters`, `GET status`, `GET dpop-nonce` → `{nonce}` (`null` when nonces are off)
 * - `POST login {username?, jkt?}` (`jkt` binds the session to a DPoP key; required with
 *   the `dpop` option), `expire-access-tokens`, `revoke-sessions`
 * - `POST rotate-dpop-nonce` → `{nonce}` (400 when nonces are off)
 * - `POST fail-next-refresh {kind, times?, afterRefresh?}` (`times: null` means Infinity),
 *   `clear-faults`,
 *   `release-hung`
 * - `POST hold {path}` → `{id}`, `release {id?}` (no id: every hold)
 * - `POST delay {path, ms}`, `clear-delays`, `reset-counters`
 */
export function handleControl(
  target: ControlTarget,
  method: string,
  path: string,
  body: string,
  res: ServerResponse,
): void {
  const name = path.slice('/__control/'.length)
  const action = posts.get(name)
  const params = body.trim() === '' ? {} : parseJsonObject(body)
  if (method === 'GET' && name === 'counters') sendJson(res, 200, target.server.counters)
  else if (method === 'GET' && name === 'status') sendJson(res, 200, controlStatus(target))
  else if (method === 'GET' && name === 'dpop-nonce') {
    sendJson(res, 200, { nonce: target.server.dpopNonce ?? null })
  } else if (!action) sendJson(res, 404, { error: 'not_found', path })
  else if (method !== 'POST') sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'POST' })
  else if (!params) badRequest(res, 'body must be a JSON object')
  else action(target, params, res)
}
