/**
 * Time as the client sees it. Injected so tests (and simulations) can move time by hand;
 * compatible with XState's `clock` actor option.
 */
export interface Clock {
  /** Current time in epoch ms. */
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
}
