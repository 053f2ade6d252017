/**
 * The deferred promises of requests waiting for a token, keyed by the queue id the machine
 * knows them by. The machine decides; this only settles, and each id exactly once.
 */
export function createWaiters() {
  const pending = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>()
  return {
    /** Registers `id` and returns the promise its settlement will resolve or reject. */
    add(id: string): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject })
      })
    },
    resolve(ids: readonly string[]): void {
      for (const id of ids) {
        pending.get(id)?.resolve()
        pending.delete(id)
      }
    },
    reject(ids: readonly string[], error: (id: string) => unknown): void {
      for (const id of ids) {
        pending.get(id)?.reject(error(id))
        pending.delete(id)
      }
    },
    rejectAll(error: () => unknown): void {
      this.reject([...pending.keys()], error)
    },
    /** How many promises are still unsettled. */
    get size(): number {
      return pending.size
    },
  }
}

export type Waiters = ReturnType<typeof createWaiters>
