import type { Session } from '../../../machines/types.js'
import { isNewerSession } from '../../session.js'
import { type Coordination, EndedElsewhere } from '../types.js'
import { openSharedRecord, type SharedRecord, type SharedRecordStore } from './sharedRecord.js'

/** Options of cross-tab coordination; `true` takes the defaults. */
export interface CrossTabOptions {
  /**
   * Name of the BroadcastChannel, the Web Lock and the IndexedDB record. Clients with the
   * same name (same origin) coordinate. Default `'auth-machine'`.
   */
  name?: string
}

/** What one tab tells the others. Sessions travel only inside the origin's own channel. */
export type TabMessage =
  | { type: 'session'; reason: 'login' | 'refresh'; session: Session }
  | { type: 'ended' }
  /** A new tab without a session asks the open ones for theirs. */
  | { type: 'hello' }

/** Hands sessions between tabs and serialises their refreshes. */
export interface CrossTab {
  /** Tells the other tabs about a login or logout made here, and records it. */
  announce(message: TabMessage, at: number): Promise<void>
  /** Tells the other tabs without recording anything. */
  tell(message: TabMessage): void
  /**
   * Runs `refresh` under the cross-tab lock. Inside the lock the shared record is read
   * again: a session another tab obtained meanwhile is returned instead of spending the
   * refresh token, and a logout elsewhere calls `ended()` and discards the result.
   */
  refresh: Coordination['refresh']
  close(): void
}

function endedSince(record: SharedRecord | undefined, since: number): boolean {
  return record?.kind === 'ended' && record.at >= since
}

/**
 * Cross-tab coordination from whatever this runtime offers: BroadcastChannel for hand-over,
 * Web Locks for one refresh at a time, IndexedDB for the record read inside the lock. Each
 * missing piece degrades to in-tab behaviour, never to an error or a wait.
 */
export function createCrossTab(
  options: CrossTabOptions,
  onMessage: (message: TabMessage) => void,
): CrossTab {
  const name = options.name ?? 'auth-machine'
  const channel =
    typeof BroadcastChannel === 'undefined' ? undefined : new BroadcastChannel(`${name}:session`)
  if (channel) {
    channel.onmessage = (event: MessageEvent<TabMessage>) => onMessage(event.data)
    // Node: a forgotten client must not keep the process alive.
    ;(channel as { unref?: () => void }).unref?.()
  }
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks
  const record: SharedRecordStore | undefined = openSharedRecord(name)

  const underLock = async <T>(signal: AbortSignal, run: () => Promise<T>): Promise<T> => {
    // A lock is released when its holder's tab dies, and this request is abandoned when the
    // refresh times out or the session ends (the signal), so no tab waits forever.
    if (!locks) return run()
    let started = false
    try {
      return (await locks.request(`${name}:refresh`, { signal }, () => {
        started = true
        return run()
      })) as T
    } catch (error) {
      // A document that may not use locks (a sandboxed iframe) refreshes on its own, as a
      // browser without them does.
      if (started || (error as { name?: unknown } | null)?.name !== 'SecurityError') throw error
      return run()
    }
  }

  return {
    async announce(message, at) {
      channel?.postMessage(message)
      if (message.type === 'ended') await record?.write({ kind: 'ended', at })
      else if (message.type === 'session') {
        await record?.write({ kind: 'session', session: message.session })
      }
    },

    tell(message) {
      channel?.postMessage(message)
    },

    async refresh(current, startedAt, signal, refresh, ended) {
      try {
        return await underLock(signal, async () => {
          // A document that may not use IndexedDB refreshes without the re-check, as a browser
          // without it does. A read that failed or took too long (bounded, so the lock is let
          // go) fails this attempt: refreshing blind could present a token another tab spent.
          const shared = await record?.read().catch((error: unknown) => {
            if (record.refused()) return undefined
            throw error
          })
          if (endedSince(shared, startedAt)) throw new EndedElsewhere()
          if (shared?.kind === 'session' && isNewerSession(shared.session, current)) {
            return shared.session
          }
          const session = await refresh()
          // Abandoned meanwhile (logout, another login here): its result is nobody's news.
          if (signal.aborted) throw signal.reason
          const written = await record
            ?.write({ kind: 'session', session }, (now) => endedSince(now, startedAt))
            .catch(() => true)
          if (written === false) throw new EndedElsewhere()
          channel?.postMessage({ type: 'session', reason: 'refresh', session } satisfies TabMessage)
          return session
        })
      } catch (error) {
        if (error instanceof EndedElsewhere) ended()
        throw error
      }
    },

    close() {
      channel?.close()
      record?.close()
    },
  }
}
