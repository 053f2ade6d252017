/**
 * Control over a hold placed with {@link TestAuthServer.hold}.
 */
export interface HoldHandle {
  /** Answers every request waiting on this hold and stops holding new ones. Idempotent. */
  release(): void
  /** How many requests are waiting on this hold right now. */
  waiting(): number
  /**
   * Resolves once at least `n` requests are waiting on this hold. Event-driven: it is
   * re-checked whenever a request starts waiting, never by polling. Rejects if the server
   * closes first.
   */
  untilWaiting(n: number): Promise<void>
}

/** A hold as the registry keeps it; the server adds `untilWaiting` on top. */
export interface Hold {
  /** Identifies the hold to the control routes. */
  readonly id: number
  /** Requests whose path starts with this are held. */
  readonly pathPrefix: string
  /** See {@link HoldHandle.release}. */
  release(): void
  /** See {@link HoldHandle.waiting}. */
  waiting(): number
}

interface HoldState extends Hold {
  readonly waiters: Set<() => void>
}

/**
 * Active holds. A request is answered only once no active hold matches its path, so a
 * request can be held by several holds in turn; a released hold never holds again.
 */
export class HoldRegistry {
  readonly #active = new Map<number, HoldState>()
  readonly #onChange: () => void
  #nextId = 1
  #closed = false

  /** `onChange` runs whenever a request starts or stops waiting, to wake up `waitFor`. */
  constructor(onChange: () => void) {
    this.#onChange = onChange
  }

  /** Starts holding requests whose path starts with `pathPrefix`. */
  create(pathPrefix: string): Hold {
    const id = this.#nextId++
    const waiters = new Set<() => void>()
    const hold: HoldState = {
      id,
      pathPrefix,
      waiters,
      release: () => {
        if (!this.#active.delete(id)) return
        const released = [...waiters]
        waiters.clear()
        for (const resume of released) resume()
        this.#onChange()
      },
      waiting: () => waiters.size,
    }
    if (!this.#closed) this.#active.set(id, hold)
    return hold
  }

  /** Looks up an active hold by id, for the control routes. */
  get(id: number): Hold | undefined {
    return this.#active.get(id)
  }

  /** Active holds, oldest first. */
  list(): Hold[] {
    return [...this.#active.values()]
  }

  /**
   * Waits while any active hold matches `path`.
   *
   * @returns `false` if the registry was closed meanwhile and the request must not be answered.
   */
  async pass(path: string): Promise<boolean> {
    for (;;) {
      if (this.#closed) return false
      const hold = [...this.#active.values()].find((h) => path.startsWith(h.pathPrefix))
      if (!hold) return true
      await new Promise<void>((resume) => {
        hold.waiters.add(resume)
        this.#onChange()
      })
    }
  }

  /** Frees every waiting request (to be dropped) and refuses any new hold: the server is closing. */
  close(): void {
    this.#closed = true
    for (const hold of this.list()) hold.release()
  }
}
