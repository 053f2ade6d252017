import type { Session } from '../machines/types.js'
import type { RefreshCoordinator } from './refresh.js'
import { isNewerSession } from './session.js'
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
}

/**
 * Where a refresh call runs: under the tabs' lock when there are tabs, and in every case
 * after a look at the storage. Another client persisting to the same storage (another tab
 * without cross-tab, another process) may have rotated the refresh token already: its
 * session is taken instead of spending the token a second time.
 */
export function createCoordinator(options: CoordinationOptions): RefreshCoordinator {
  const { reread, tabs, now, ended } = options
  return (session, signal, run) => {
    const spend = async () => {
      const stored = await reread()
      return stored && isNewerSession(stored, session) ? stored : run()
    }
    return tabs ? tabs.refresh(session, now(), signal, spend, ended) : spend()
  }
}
