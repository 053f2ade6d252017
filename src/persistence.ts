import type { Session } from '../machines/types.js'
import { errorName } from './errors.js'
import { parseStoredSession } from './session.js'
import type { TokenStorage } from './storage.js'

/**
 * Mirrors the machine's session into the user's storage. Writes are chained so async
 * adapters apply them in order; a failing adapter is reported once per operation and the
 * client carries on in memory.
 */
export function createPersistence(storage: TokenStorage, warn: (message: string) => void) {
  // What the storage holds as far as we know; starts as "nothing" so the initial
  // signed-out snapshot does not wipe a session before it is restored.
  let stored: Session | null = null
  let writes: Promise<void> = Promise.resolve()
  const reported = new Set<string>()

  const report = (operation: 'get' | 'set' | 'remove', error: unknown) => {
    if (reported.has(operation)) return
    reported.add(operation)
    warn(`storage.${operation}() failed (${errorName(error)}); the session is kept in memory only.`)
  }

  return {
    /** Reads the stored session; `null` when there is none, it is malformed, or reading fails. */
    async restore(): Promise<Session | null> {
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
        this.save(null, true)
      }
      return session
    },
    /** Marks `session` as already stored, so adopting it writes nothing back. */
    adopt(session: Session): void {
      stored = session
    },
    save(session: Session | null, force = false): void {
      if (session === stored && !force) return
      stored = session
      writes = writes.then(async () => {
        try {
          await (session ? storage.set(session) : storage.remove())
        } catch (error) {
          report(session ? 'set' : 'remove', error)
        }
      })
    },
    /** Resolves once every write issued so far has been applied (or has failed). */
    flushed(): Promise<void> {
      return writes
    },
  }
}
