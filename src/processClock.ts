import type { Clock } from './clock.js'

type Handle = { ref?: () => unknown; unref?: () => unknown }

const asHandle = (value: unknown): Handle | undefined =>
  typeof value === 'object' && value !== null ? (value as Handle) : undefined

/**
 * The client's clock, deciding whether its timers keep a Node process alive: while a refresh
 * runs (`hold()`), requests may be waiting on a retry timer, so timers are kept; otherwise
 * the only timer is the proactive refresh, and a signed-in client alone must not stop a
 * script from exiting (invariant 14). Browsers and manual clocks hand out numbers: no-op.
 */
export function createProcessClock(clock: Clock) {
  const live = new Set<unknown>()
  let held = false
  const apply = (handle: unknown) => {
    const timer = asHandle(handle)
    if (held) timer?.ref?.()
    else timer?.unref?.()
  }
  return {
    now: () => clock.now(),
    setTimeout(fn: () => void, ms: number): unknown {
      const handle = clock.setTimeout(() => {
        live.delete(handle)
        fn()
      }, ms)
      live.add(handle)
      apply(handle)
      return handle
    },
    clearTimeout(handle: unknown): void {
      live.delete(handle)
      clock.clearTimeout(handle)
    },
    /** Timers armed from now on, and those armed already, keep the process alive. */
    hold(): void {
      held = true
      for (const handle of live) apply(handle)
    },
    /** They no longer do. */
    release(): void {
      held = false
      for (const handle of live) apply(handle)
    },
  }
}
