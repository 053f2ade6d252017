import type { Coordinator } from '../types.js'
import { type CrossTabOptions, createCrossTab } from './crossTab.js'
import { crossTabName, releaseCrossTabName } from './scope.js'
import { openKeyStore } from './sharedRecord.js'

/**
 * The browser driver: the tabs of one profile share a session. One refresh per expiry under
 * a Web Lock, sessions and logouts handed over a BroadcastChannel, the lock-time re-check
 * read from IndexedDB. Each missing browser API degrades to in-tab behaviour. The default
 * coordinator in browsers.
 *
 * @throws {@link CrossTabScopeError} (when the client is created) if another client of this
 * page holds the default name with a different scope.
 */
export function tabsCoordinator(options: CrossTabOptions = {}): Coordinator {
  return {
    open(context) {
      const name = crossTabName(options.name, context.attachTo, context.storage)
      const tabs = createCrossTab({ name }, (message) => {
        if (message.type !== 'hello') return context.deliver(message)
        // A new tab without a session asks for ours.
        const session = context.current()
        if (session) tabs.tell({ type: 'session', reason: 'login', session })
      })
      // Without IndexedDB there is no key to share: `null`, the client keeps it in this tab.
      const dpopKeys = openKeyStore(name, context.warn) ?? null
      return {
        async restore(stored) {
          // Without one, the open tabs answer with theirs, which arrives as a message.
          if (!stored) tabs.tell({ type: 'hello' })
          return stored
        },
        announce: (message) => tabs.announce(message, context.now()),
        refresh: (current, startedAt, signal, refresh, ended) =>
          tabs.refresh(current, startedAt, signal, refresh, ended),
        dpopKeys,
        close() {
          tabs.close()
          dpopKeys?.close?.()
          releaseCrossTabName(name, context.attachTo)
        },
      }
    },
  }
}
