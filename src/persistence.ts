import type { Session } from '../machines/types.js'
import type { Clock } from './clock.js'
import { errorName } from './errors.js'
import { parseStoredSession } from './session.js'
import type { TokenStorage } from './storage.js'

/** How long the stored session may take to read before the client goes on without it. */
export const RESTORE_TIMEOUT = 3_000

/**
 * Mirrors the machine's session into the user's storage. Writes are chained so async
 * adapters apply them in order; a failing adapter is reported once per operation and the
 * client carries on in memory.
 */
export function createPersistence(
  storage: TokenStorage,
  warn: (message: string) => void,
  clock: Clock,
) {
  // What the storage holds as far as we know; starts as "nothing" so the initial
  // signed-out snapshot does not wipe a session before it is restored.
  let stored: Session | null = null
  let written = false
  let writeCount = 0
  let claimed = false // a logout has taken the start-up session (revoked once)
  // Access tokens of the sessions this client wrote: a read that returns one is our own.
  const ours = new Set<string>()
  let writes: Promise<void> = Promise.resolve()
  const reported = new Set<string>()

  const report = (operation: 'get' | 'set' | 'remove', error: unknown) => {
    if (reported.has(operation)) return
    reported.add(operation)
    warn(`storage.${operation}() failed (${errorName(error)}); the session is kept in memory only.`)
  }

  const save = (session: Session | null, force = false): void => {
    if (session === stored && !force) return
    stored = session
    written = true
    writeCount += 1
    if (session) {
      if (ours.size >= 16) ours.delete(ours.values().next().value as string)
      ours.add(session.accessToken)
    }
    writes = writes.then(async () => {
      try {
        await (session ? storage.set(session) : storage.remove())
      } catch (error) {
        report(session ? 'set' : 'remove', error)
      }
    })
  }

  /** The stored session; `null` when there is none, it is malformed, or reading fails. */
  async function read(): Promise<Session | null> {
    let raw: unknown
    try {
      raw = await storage.get()
    } catch (error) {
      report('get', error)
      return null
    }
    const session = parseStoredSession(raw)
    if (raw != null && !session) {
      warn('discarded a malformed stored session.')
      // Only if nothing was written meanwhile: a login during the read must stay stored.
      if (!written) save(null, true)
    }
    return session
  }

  // Bounded: a storage that never answers must not hold anything up forever. Once a read
  // has timed out, later reads don't wait until that one has answered.
  let stalled = false
  const waiting = new Set<() => void>()
  const bounded = (what: string) =>
    new Promise<Session | null>((resolve) => {
      if (stalled) return resolve(null)
      const giveUp = () => {
        waiting.delete(giveUp)
        clock.clearTimeout(timer)
        resolve(null)
      }
      const timer = clock.setTimeout(() => {
        stalled = true
        warn(`storage.get() did not answer within ${RESTORE_TIMEOUT} ms; ${what}.`)
        // Every read still waiting waits on the same storage: none of them waits any longer.
        for (const other of [...waiting]) other()
      }, RESTORE_TIMEOUT)
      waiting.add(giveUp)
      read().then((session) => {
        stalled = false
        waiting.delete(giveUp)
        clock.clearTimeout(timer)
        resolve(session)
      })
    })
  const restored = bounded('going on without the stored session')

  return {
    /** The stored session as read at start-up (bounded by {@link RESTORE_TIMEOUT}). */
    restored,
    /**
     * What a logout before `ready` must still revoke: the session read at start-up, unless
     * this client has written since, or the read returned a session this client wrote itself
     * (a login that came while the logout waited for the read).
     */
    async unclaimed(): Promise<Session | null> {
      // Once this client has written, what was stored at start-up is overwritten anyway.
      if (written || claimed) return null
      claimed = true
      const session = await restored
      return session && !ours.has(session.accessToken) ? session : null
    },
    /** How many writes were issued so far: a logout clears only what nothing replaced. */
    get writeCount(): number {
      return writeCount
    },
    /**
     * The session in storage now, read again (bounded), for a refresh about to spend the
     * refresh token: another client on the same storage may have rotated it already.
     */
    reread(): Promise<Session | null> {
      return bounded('refreshing without checking it')
    },
    /** Marks `session` as already stored, so adopting it writes nothing back. */
    adopt(session: Session): void {
      stored = session
    },
    save,
    /**
     * Resolves once every write issued so far has been applied (or has failed), or after
     * {@link RESTORE_TIMEOUT} with a warning: a storage that never answers holds up no logout.
     */
    flushed(): Promise<void> {
      return new Promise<void>((resolve) => {
        const timer = clock.setTimeout(() => {
          warn(`storage.set()/remove() did not answer within ${RESTORE_TIMEOUT} ms.`)
          resolve()
        }, RESTORE_TIMEOUT)
        void writes.then(() => {
          clock.clearTimeout(timer)
          resolve()
        })
      })
    },
  }
}
