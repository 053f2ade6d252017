import type { AuthClient } from '../../src/index.js'

/**
 * How many subscribers and emitted-event listeners the client's actor holds. XState keeps them
 * in `observers` and `eventListeners`, which are not public API: a test that reads them
 * breaks loudly (undefined counts) if XState renames them, rather than passing quietly.
 */
export function listenersOf(client: AuthClient): { observers: number; listeners: number } {
  const actor = client.actor as unknown as {
    observers: Set<unknown>
    eventListeners: Map<string, Set<unknown>>
  }
  let listeners = 0
  for (const set of actor.eventListeners.values()) listeners += set.size
  return { observers: actor.observers.size, listeners }
}
