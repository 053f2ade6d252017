/**
 * Real-time delays by path prefix, for demos where a human should see a request wait.
 * Tests should prefer holds: a delay makes a test slow and its timing a guess.
 */
export class DelayRules {
  readonly #rules = new Map<string, number>()
  readonly #sleeping = new Set<{ timer: NodeJS.Timeout; wake: () => void }>()

  /** Delays requests whose path starts with `pathPrefix` by `ms`; replaces a rule for the same prefix. */
  set(pathPrefix: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`delay needs a finite, non-negative ms; got ${ms}`)
    }
    this.#rules.set(pathPrefix, ms)
  }

  /** Removes every rule. Requests already sleeping keep sleeping. */
  clear(): void {
    this.#rules.clear()
  }

  /** Rules as `{ pathPrefix, ms }`, for status output. */
  list(): { pathPrefix: string; ms: number }[] {
    return [...this.#rules].map(([pathPrefix, ms]) => ({ pathPrefix, ms }))
  }

  /** Sleeps for the longest delay whose prefix matches `path` (not the sum: rules overlap). */
  async wait(path: string): Promise<void> {
    let ms = 0
    for (const [prefix, delay] of this.#rules) if (path.startsWith(prefix)) ms = Math.max(ms, delay)
    if (ms === 0) return
    await new Promise<void>((resolve) => {
      const entry = {
        timer: setTimeout(() => entry.wake(), ms),
        wake: () => {
          clearTimeout(entry.timer)
          this.#sleeping.delete(entry)
          resolve()
        },
      }
      this.#sleeping.add(entry)
    })
  }

  /** Wakes every sleeper at once so that closing the server leaves no timer behind. */
  wakeAll(): void {
    for (const entry of [...this.#sleeping]) entry.wake()
  }
}
