// The optional link to the Stately inspector (stately.ai/inspect, needs a network connection).
// The client's `inspect` option always feeds this page; the toggle decides whether events are
// also forwarded. Everything forwarded is sanitised once more (see secrets.ts): @statelyai/inspect
// reads some snapshots straight from actor refs, past the client's own redaction.
import { createBrowserInspector } from '@statelyai/inspect'
import type { InspectionEvent } from 'xstate'
import { auth, onInspection } from './auth.js'
import { sanitize } from './secrets.js'
import { createStore } from './store.js'

type Inspector = ReturnType<typeof createBrowserInspector>

let inspector: Inspector | null = null
let stopForwarding: (() => void) | null = null

/** Whether events are being forwarded to the Stately inspector. */
export const inspectorOn = createStore(false)

function forward(event: InspectionEvent): void {
  inspector?.inspect.next?.(event)
}

/** Opens the inspector window and forwards from now on. */
export function connectInspector(url?: string): void {
  if (inspector) return
  inspector = createBrowserInspector({
    ...(url ? { url } : {}),
    serialize: (event) => sanitize(event) as typeof event,
  })
  // The inspector missed the actor's creation: register it with its current (sanitised) state.
  const snapshot = auth.actor.getSnapshot()
  inspector.actor(auth.actor, {
    status: snapshot.status,
    value: snapshot.value,
    context: sanitize(snapshot.context),
  })
  stopForwarding = onInspection(forward)
  inspectorOn.set(true)
}

/** Stops forwarding and tells the inspector window we are gone. */
export function disconnectInspector(): void {
  stopForwarding?.()
  stopForwarding = null
  inspector?.stop()
  inspector = null
  inspectorOn.set(false)
}
