import type { Session } from './types.js'

/**
 * The largest delay `setTimeout` honours. Larger values overflow a signed 32-bit integer and
 * fire at once, which would turn a 30-day token into an immediate refresh loop.
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/** Bounds any delay to what timers can arm: never negative, never beyond `MAX_TIMER_DELAY`. */
export function clampDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0
  return Math.min(ms, MAX_TIMER_DELAY)
}

/** Tokens that live shorter than this (ms) get no proactive refresh, only on-demand ones. */
export const MIN_PROACTIVE_LIFETIME = 1_000

/** Default lead time before expiry at which a proactive refresh starts, in ms. */
export const DEFAULT_REFRESH_MARGIN = 60_000

/**
 * When the session should be refreshed proactively, as epoch ms, or `undefined` when its
 * expiry is unknown or the token had no lifetime at all. The margin never takes more than half
 * of the token's lifetime, so a token that lives shorter than the margin does not cause a
 * refresh loop.
 */
export function refreshDueAt(session: Session | null, margin: number): number | undefined {
  if (!session || session.expiresAt === undefined) return undefined
  const lifetime =
    session.obtainedAt === undefined
      ? Number.POSITIVE_INFINITY
      : session.expiresAt - session.obtainedAt
  // A token born expired (`expiresIn: 0`), or living less than a second, would be due the
  // moment it arrives, again after every refresh: a loop. It is refreshed on demand only.
  if (lifetime < MIN_PROACTIVE_LIFETIME) return undefined
  return session.expiresAt - Math.min(margin, lifetime / 2)
}

/** Retry policy for transient refresh failures. */
export interface RetryPolicy {
  /** Refresh attempts after the first one. `0` disables retries. */
  retries: number
  /** Delay before the first retry, in ms; doubled for each further retry. */
  baseDelay: number
  /** Upper bound for one delay, in ms. */
  maxDelay: number
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelay: 500, maxDelay: 30_000 }

/**
 * Exponential backoff with "equal jitter": half the delay is fixed so retries never bunch
 * at zero, half is random so many clients do not retry in lockstep.
 * `attempt` is the number of attempts already made (1 after the first failure).
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const exponential = policy.baseDelay * 2 ** Math.max(0, attempt - 1)
  const capped = Math.min(policy.maxDelay, exponential)
  return clampDelay(capped / 2 + random() * (capped / 2))
}
