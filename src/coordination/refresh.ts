import type { Session } from '../../machines/types.js'
import type { RefreshCoordinator } from '../refresh.js'
import { isNewerSession, isSameSession } from '../session.js'
import type { Coordination } from './types.js'

/** What the refresh coordination reads and tells. */
export interface CoordinationOptions {
  /** The session in storage now (bounded read). */
  reread: () => Promise<Session | null>
  /** The other tabs or processes, when a coordinator is on. */
  coordination: Coordination | undefined
  now: () => number
  /** The session ended elsewhere while this refresh waited for its turn. */
  ended: () => void
  /** Another sign-in took over the shared storage or record: a login, not a refresh. */
  replaced: (session: Session) => void
  /**
   * What identifies the storage across clients of this realm: its `id` (`local:<key>`),
   * or the adapter object itself. Clients sharing it take turns to refresh.
   */
  storageKey: object | string
  /** How long a turn may be waited for: past it, the call holding it is presumed lost. */
  patience: number
}

interface Turn {
  /** The session the turn's refresh got (before any storage write of it), if it got one. */
  done: Promise<Session | undefined>
  startedAt: number
}

// Clients of one realm that persist to the same storage refresh one at a time, each reading
// the storage inside its turn: the second finds the first one's rotated session.
const turnsById = new Map<string, Turn>()
const turnsByAdapter = new WeakMap<object, Turn>()

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** Thrown when the refresh gave way to another sign-in; the machine has moved on. */
class Replaced extends Error {}

/**
 * Where a refresh call runs: under the coordinator's lock when there is one (tabs, Redis), and in every case
 * after a look at the storage. Another client persisting to the same storage (another tab
 * without cross-tab, another process) may have rotated the refresh token already: its
 * session is taken instead of spending the token a second time.
 */
export function createCoordinator(options: CoordinationOptions): RefreshCoordinator {
  const { reread, coordination, now, ended, replaced, storageKey, patience } = options
  const turnOf = () =>
    typeof storageKey === 'string' ? turnsById.get(storageKey) : turnsByAdapter.get(storageKey)
  const take = (turn: Turn) =>
    typeof storageKey === 'string'
      ? turnsById.set(storageKey, turn)
      : turnsByAdapter.set(storageKey, turn)
  return async (session, signal, run) => {
    const spend = async (confirm?: () => Promise<void>) => {
      const previous = turnOf()
      const mine = (async () => {
        // Waited for while it is young; a turn older than the patience is presumed lost.
        const theirs =
          previous && now() - previous.startedAt < patience
            ? await Promise.race([previous.done, aborted(signal)])
            : undefined
        // Their result may not be in storage yet: a newer token of this same sign-in is taken
        // as it came. Anything else is for the storage read to tell.
        if (theirs && isSameSession(theirs, session) && isNewerSession(theirs, session)) {
          return theirs
        }
        const stored = await reread()
        if (stored && isNewerSession(stored, session)) return stored
        // The coordinator's last word before the token is spent (its lock still held?).
        await confirm?.()
        return run()
      })()
      take({ done: mine.catch(() => undefined), startedAt: now() })
      return mine
    }
    const result = await (coordination
      ? coordination.refresh(session, now(), signal, spend, ended)
      : spend())
    // A newer session of another sign-in (another user, a new login elsewhere) is never a
    // refresh of this one: what waited must not be sent with it. It arrives as a login.
    if (!isSameSession(result, session)) {
      replaced(result)
      throw new Replaced('Another sign-in replaced the session.')
    }
    return result
  }
}
