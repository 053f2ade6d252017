// The optional link to the Stately inspector (stately.ai/inspect, needs a network connection).
// The client's `inspect` option always feeds this page; the toggle decides whether events are
// also forwarded. Everything forwarded is sanitised once more (see secrets.ts): @statelyai/inspect
// reads some snapshots straight from actor refs, past the client's own redaction.
//
// @statelyai/inspect opens its window and waits, silently, for the page there to say it is
// connected. Offline that never happens, so the page tells what it can: whether the browser
// opened a window at all, whether stately.ai could be reached, and when the inspector answered.
import { createBrowserInspector } from '@statelyai/inspect'
import type { InspectionEvent } from 'xstate'
import { auth, onInspection } from './auth.js'
import { sanitize } from './secrets.js'
import { createStore } from './store.js'

type Inspector = ReturnType<typeof createBrowserInspector>

const INSPECTOR_URL = 'https://stately.ai/inspect'

/** Where the link stands: `blocked` (no window) and `unreachable` (offline) switch it off. */
export type InspectorStatus = 'off' | 'opening' | 'connected' | 'blocked' | 'unreachable'

export const inspectorStatus = createStore<InspectorStatus>('off')

let inspector: Inspector | null = null
let stopForwarding: (() => void) | null = null
let stopWatching: (() => void) | null = null

function forward(event: InspectionEvent): void {
  inspector?.inspect.next?.(event)
}

/**
 * Watches the inspector's window: its greeting means connected; a request to its address that
 * fails (no network, DNS, blocked) means the window shows an error page and never will be.
 */
function watch(popup: Window, url: string): () => void {
  const controller = new AbortController()
  const onMessage = (event: MessageEvent) => {
    const type = (event.data as { type?: unknown } | null)?.type
    if (event.source === popup && type === '@statelyai.connected') {
      inspectorStatus.set('connected')
    }
  }
  window.addEventListener('message', onMessage, { signal: controller.signal })
  // `no-cors`: only whether the address answers matters, not what it answers.
  fetch(url, { mode: 'no-cors', cache: 'no-store', signal: controller.signal }).catch(() => {
    if (controller.signal.aborted) return
    disconnectInspector()
    inspectorStatus.set('unreachable')
  })
  return () => controller.abort()
}

/** Opens the inspector window and forwards from now on. */
export function connectInspector(url = INSPECTOR_URL): void {
  if (inspector) return
  const opened: { popup: Window | null } = { popup: null }
  // The inspector opens its window through this stand-in, so the page learns whether the
  // browser opened one (`window.open` gives null when pop-ups are blocked).
  const host = {
    open: (target: string, name: string) => {
      opened.popup = window.open(target, name)
      return opened.popup
    },
    addEventListener: window.addEventListener.bind(window),
  } as unknown as Window
  inspector = createBrowserInspector({
    url,
    window: host,
    serialize: (event) => sanitize(event) as typeof event,
  })
  if (!opened.popup) {
    disconnectInspector()
    inspectorStatus.set('blocked')
    return
  }
  inspectorStatus.set('opening')
  stopWatching = watch(opened.popup, url)
  // The inspector missed the actor's creation: register it with its current (sanitised) state.
  const snapshot = auth.actor.getSnapshot()
  inspector.actor(auth.actor, {
    status: snapshot.status,
    value: snapshot.value,
    context: sanitize(snapshot.context),
  })
  stopForwarding = onInspection(forward)
}

/** Stops forwarding and tells the inspector window we are gone. */
export function disconnectInspector(): void {
  stopWatching?.()
  stopWatching = null
  stopForwarding?.()
  stopForwarding = null
  inspector?.stop()
  inspector = null
  inspectorStatus.set('off')
}
