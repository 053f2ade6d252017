/**
 * How a refresh call can be made to fail with {@link TestAuthServer.failNextRefresh}.
 *
 * - `500`, `503`, `429`: transient server errors (429 carries `Retry-After: 1`).
 * - `400`, `401`, `403`: the server rejects the grant, body `{ error: 'invalid_grant' }`.
 * - `'malformed'`: 200 with an HTML body, as from a misrouted proxy or login page.
 * - `'malformed-json'`: 200 with JSON lacking `accessToken` (`{ "access": 42 }`).
 * - `'hang'`: no answer until `releaseHung()` (then 503) or `close()`.
 * - `'reset'`: the socket is destroyed without any response.
 *
 * Each fails the call before the server looks at the refresh token, unless it is queued with
 * `afterRefresh` (see {@link FailNextRefreshOptions}).
 *
 * @see TestAuthServer.failNextRefresh
 */
export type RefreshFaultKind =
  | 500
  | 503
  | 429
  | 400
  | 401
  | 403
  | 'malformed'
  | 'malformed-json'
  | 'hang'
  | 'reset'

/** Every {@link RefreshFaultKind}, for validating input from the control routes. */
export const REFRESH_FAULT_KINDS: readonly RefreshFaultKind[] = [
  500,
  503,
  429,
  400,
  401,
  403,
  'malformed',
  'malformed-json',
  'hang',
  'reset',
]

/** Options of {@link TestAuthServer.failNextRefresh}. */
export interface FailNextRefreshOptions {
  /** How many consecutive refresh calls fail this way; `Infinity` for all. Default 1. */
  times?: number
  /**
   * Refresh first, then fail: the server processes the call as usual (with rotation the
   * presented token is spent and new tokens are issued, and the counters say so), and the
   * fault replaces the answer. `'reset'` this way is a refresh answer lost on its way back:
   * the client never learns the new tokens and still holds the spent one. Default false:
   * the fault comes first and nothing is spent.
   */
  afterRefresh?: boolean
}

/** The fault a refresh call takes from the queue. */
export interface QueuedFault {
  kind: RefreshFaultKind
  /** The refresh is processed before the fault replaces its answer. */
  afterRefresh: boolean
}

/** A canned HTTP answer for a fault that does answer. */
export interface FaultResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** Returns `value` as a fault kind if it names one (numeric kinds may come as strings). */
export function parseFaultKind(value: unknown): RefreshFaultKind | undefined {
  const candidate = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  return REFRESH_FAULT_KINDS.find((kind) => kind === candidate)
}

const json = { 'content-type': 'application/json; charset=utf-8' }

/** The response a fault produces, or `undefined` for `'hang'` and `'reset'`, which produce none. */
export function faultResponse(kind: RefreshFaultKind): FaultResponse | undefined {
  switch (kind) {
    case 500:
      return { status: 500, headers: json, body: JSON.stringify({ error: 'server_error' }) }
    case 503:
      return {
        status: 503,
        headers: json,
        body: JSON.stringify({ error: 'temporarily_unavailable' }),
      }
    case 429:
      return {
        status: 429,
        headers: { ...json, 'retry-after': '1' },
        body: JSON.stringify({ error: 'rate_limited' }),
      }
    case 400:
    case 401:
    case 403:
      return { status: kind, headers: json, body: JSON.stringify({ error: 'invalid_grant' }) }
    case 'malformed':
      return {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: '<html>oops</html>',
      }
    case 'malformed-json':
      return { status: 200, headers: json, body: JSON.stringify({ access: 42 }) }
    case 'hang':
    case 'reset':
      return undefined
  }
}

/**
 * Faults queued for upcoming refresh calls, consumed in the order they were queued:
 * `failNextRefresh(503); failNextRefresh(401)` fails the next call with 503, then one with 401.
 */
export class FaultQueue {
  readonly #queue: (QueuedFault & { remaining: number })[] = []

  /** Queues `kind` for the next `times` refresh calls after those already queued. */
  add(kind: RefreshFaultKind, times = 1, afterRefresh = false): void {
    if (!(times >= 0) || (Number.isFinite(times) && !Number.isInteger(times))) {
      throw new RangeError(`times must be a non-negative integer or Infinity; got ${times}`)
    }
    if (times > 0) this.#queue.push({ kind, afterRefresh, remaining: times })
  }

  /** Consumes and returns the fault for the current refresh call, if any. */
  take(): QueuedFault | undefined {
    const head = this.#queue[0]
    if (!head) return undefined
    head.remaining--
    if (head.remaining <= 0) this.#queue.shift()
    return { kind: head.kind, afterRefresh: head.afterRefresh }
  }

  /** Drops every queued fault. */
  clear(): void {
    this.#queue.length = 0
  }

  /**
   * Queued faults, for status output; `remaining` is `null` for `Infinity` (JSON-safe) and
   * `afterRefresh` is listed only when set.
   */
  list(): { kind: RefreshFaultKind; remaining: number | null; afterRefresh?: true }[] {
    return this.#queue.map(({ kind, remaining, afterRefresh }) => ({
      kind,
      remaining: Number.isFinite(remaining) ? remaining : null,
      ...(afterRefresh ? { afterRefresh } : {}),
    }))
  }
}
