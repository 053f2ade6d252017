import type { Session } from '../../machines/types.js'
import type { DpopKeyStore } from '../dpop/keys.js'
import type { AttachTo } from '../origin.js'
import type { TokenStorage } from '../storage.js'

/** What one client tells the others (other tabs, other processes) about its session. */
export type CoordinatorMessage =
  | { type: 'session'; reason: 'login' | 'refresh'; session: Session }
  | { type: 'ended' }

/** What a coordinator gets from the client it coordinates. */
export interface CoordinatorContext {
  /** News from elsewhere; the client turns it into machine events, and the machine decides. */
  deliver(message: CoordinatorMessage): void
  /** The session this client holds now: to answer a newcomer, or to repopulate a store. */
  current(): Session | null
  now(): number
  warn(message: string): void
  /** The client's `refreshTimeout`: how long a refresh may wait for the coordinator. */
  refreshTimeout: number
  /** What a default coordination name is scoped by. */
  attachTo: AttachTo
  storage: TokenStorage
}

/** A coordinator at work for one client. */
export interface Coordination {
  /**
   * The session a client starts with, given the one in its own storage (`null`: none): the
   * stored one, the shared one (another tab's or process's), or `null` when the shared
   * record says the stored one ended. A session that arrives later comes through `deliver`.
   * Never rejects.
   */
  restore(stored: Session | null): Promise<Session | null>
  /** Tells the others about a login or logout made here, and records it. */
  announce(message: CoordinatorMessage): Promise<void>
  /**
   * Runs `refresh` as the one refresh of every client sharing the session. A session another
   * client obtained meanwhile is returned instead of spending the refresh token; a logout
   * elsewhere calls `ended()` and rejects. `refresh` calls `confirm` (when given) right
   * before it sends the call, and does not send it if `confirm` throws.
   */
  refresh(
    current: Session,
    startedAt: number,
    signal: AbortSignal,
    refresh: (confirm?: () => Promise<void>) => Promise<Session>,
    ended: () => void,
  ): Promise<Session>
  close(): void
  /**
   * Where the session's DPoP key lives so that every client sharing the session signs with
   * it (IndexedDB for tabs). `null`: nowhere to share it (a browser without IndexedDB), so
   * each client keeps its own. Absent: the clients cannot share a key (processes), so a
   * DPoP client must be given its `keyPair`.
   */
  dpopKeys?: DpopKeyStore | null | undefined
}

/**
 * Shares one session between clients that cannot share memory: the tabs of a browser
 * profile ({@link tabsCoordinator}) or the processes of a service (`redisCoordinator` from
 * `auth-machine/redis`). Passed as the `coordinator` option.
 */
export interface Coordinator {
  /** Starts coordinating one client. Called once, by `createAuthClient`. */
  open(context: CoordinatorContext): Coordination
}

/** Thrown inside a coordinated refresh when the session ended elsewhere; the machine has moved on. */
export class EndedElsewhere extends Error {}
