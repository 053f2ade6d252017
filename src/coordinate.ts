import type { Session } from '../machines/types.js'
import type { RefreshCoordinator } from './refresh.js'
import { isNewerSession, isSameSession } from './session.js'
import type { CrossTab } from './tabs/crossTab.js'

/** What the refresh coordination reads and tells. */
export interface CoordinationOptions {
  /** The session in storage now (bounded read). */
  reread: () => Promise<Session | null>
  /** The other tabs, when cross-tab coordination is on. */
  tabs: CrossTab | undefined
  now: () => number
  /** The session ended elsewhere while this refresh waited for its turn. */
  ended: () => void
  /** Another sign-in took over the shared storage or record: a login, not a refresh. */
  replaced: (session: Session) => void
}

/** Thrown when the refresh gave way to another sign-in; the machine has moved on. */
class Replaced extends Error {}

/**
 * Where a refresh call runs: under the tabs' lock when there are tabs, and in every case
 * after a look at the storage. Another client persisting to the same storage (another tab
 * without cross-tab, another process) may have rotated the refresh token already: its
 * session is taken instead of spending the token a second time.
 */
export function createCoordinator(options: CoordinationOptions): RefreshCoordinator {
  const { reread, tabs, now, ended, replaced } = options
  return async (session, signal, run) => {
    const spend = async () => {
      const stored = await reread()
      return stored && isNewerSession(stored, session) ? stored : run()
    }
    const result = await (tabs ? tabs.refresh(session, now(), signal, spend, ended) : spend())
    // A newer session of another sign-in (another user, a new login elsewhere) is never a
    // refresh of this one: what waited must not be sent with it. It arrives as a login.
    if (!isSameSession(result, session)) {
      replaced(result)
      throw new Replaced('Another sign-in replaced the session.')
    }
    return result
  }
}
