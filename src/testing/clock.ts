/**
 * Opaque handle returned by {@link ManualClock.setTimeout}. It is a plain number so that it
 * survives being stored in JSON-serializable state, but callers should treat it as opaque.
 */
export type ManualTimerHandle = number

/**
 * A clock whose time only moves when the test says so.
 *
 * It is structurally compatible with XState v5's `clock` option for `createActor`
 * (`{ setTimeout(fn, timeout), clearTimeout(id) }`) and with the core library's `Clock`
 * interface, so the same timers the client would arm on a real clock can be stepped
 * through deterministically, without real sleeps.
 */
export interface ManualClock {
  /** Current time in milliseconds. Starts at the value given to {@link createManualClock}. */
  now(): number
  /**
   * Schedules `fn` to run once the clock has advanced `ms` milliseconds past {@link now}.
   * Negative or non-finite delays are treated as 0, like the platform's `setTimeout` does
   * for negative and `NaN` values. Delays are kept as given (never wrapped at 2^31−1 as a
   * real timer would be), and recorded in {@link maxDelayArmed} so tests can assert on them.
   */
  setTimeout(fn: () => void, ms: number): ManualTimerHandle
  /** Cancels a timer. Unknown or already-fired handles are ignored. */
  clearTimeout(handle: unknown): void
  /**
   * Moves time forward by `ms`, running every timer due on the way in due-time order
   * (ties in scheduling order), with {@link now} set to each timer's due time while it runs.
   * Timers scheduled by those callbacks that fall due inside the window run as well.
   * Ends with {@link now} equal to the start time plus `ms`.
   */
  advance(ms: number): void
  /**
   * Runs timers, advancing time to each one's due time, until none are pending.
   * Throws after `limit` timers (default 1000) so that a timer that keeps re-arming itself
   * fails the test instead of looping forever.
   *
   * @returns the number of timers that ran.
   */
  runAll(limit?: number): number
  /** Number of timers armed and not yet fired or cleared. */
  pending(): number
  /** Largest delay ever passed to {@link setTimeout}, in milliseconds (0 if none). */
  readonly maxDelayArmed: number
}

interface Timer {
  readonly id: number
  readonly due: number
  readonly fn: () => void
}

/**
 * Creates a {@link ManualClock} starting at `start` milliseconds.
 *
 * @example
 * ```ts
 * const clock = createManualClock()
 * const actor = createActor(machine, { clock })
 * clock.advance(30 * 60_000)
 * ```
 */
export function createManualClock(start = 0): ManualClock {
  let current = start
  let nextId = 1
  let maxDelayArmed = 0
  // Insertion order doubles as the tie-breaker for timers due at the same instant.
  const timers = new Map<number, Timer>()

  const nextDue = (until: number): Timer | undefined => {
    let earliest: Timer | undefined
    for (const timer of timers.values()) {
      if (timer.due <= until && (earliest === undefined || timer.due < earliest.due)) {
        earliest = timer
      }
    }
    return earliest
  }

  const fire = (timer: Timer): void => {
    // Removed before running so a throwing callback cannot fire twice.
    timers.delete(timer.id)
    current = Math.max(current, timer.due)
    timer.fn()
  }

  return {
    now: () => current,
    setTimeout(fn, ms) {
      const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
      if (delay > maxDelayArmed) maxDelayArmed = delay
      const id = nextId++
      timers.set(id, { id, due: current + delay, fn })
      return id
    },
    clearTimeout(handle) {
      if (typeof handle === 'number') timers.delete(handle)
    },
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) {
        throw new RangeError(`advance(ms) needs a finite, non-negative ms; got ${ms}`)
      }
      const target = current + ms
      for (let timer = nextDue(target); timer; timer = nextDue(target)) fire(timer)
      current = target
    },
    runAll(limit = 1000) {
      let ran = 0
      for (let timer = nextDue(Number.POSITIVE_INFINITY); timer; ) {
        if (ran >= limit) {
          throw new Error(`runAll: more than ${limit} timers ran; is a timer re-arming itself?`)
        }
        fire(timer)
        ran++
        timer = nextDue(Number.POSITIVE_INFINITY)
      }
      return ran
    },
    pending: () => timers.size,
    get maxDelayArmed() {
      return maxDelayArmed
    },
  }
}
