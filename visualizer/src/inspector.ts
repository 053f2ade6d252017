// The optional link to the Stately inspector (stately.ai/inspect, needs a network connection).
// The client's `inspect` option always feeds this page; the toggle decides whether events are
// also forwarded. Everything forwarded is sanitised once more (see secrets.ts): @statelyai/inspect
// reads some snapshots straight from actor refs, past the client's own redaction.
//
// @statelyai/inspect opens its window and waits, silently, for the page there to say it is
// connected. Offline that never happens, so the page tells what it can: whether the browser
// opened a window at all, whether stately.ai could be reached, and when the inspector answered.
//
// Switching off must leave nothing behind: @statelyai/inspect adds a 'message' listener to the
// window it is given and its stop() never removes it, so a stopped inspector would still answer
// the next greeting by posting its whole buffer. It is given a stand-in window whose listeners
// go with the connection.
import { createBrowserInspector } from '@statelyai/inspect'
import type { InspectionEvent } from 'xstate'
import { auth, onInspection } from './auth.js'
import { sanitize } from './secrets.js'
import { createStore } from './store.js'

type Inspector = ReturnType<typeof createBrowserInspector>

const INSPECTOR_URL = 'https://stately.ai/inspect'

/**
 * How long the inspector window has to greet once the page's own request to its address failed.
 * That request can fail while the window works (an extension or a proxy that filters fetch()
 * from other origins): the greeting decides, and only its absence means offline.
 */
const GREETING_GRACE_MS = 5_000

/** Where the link stands: `blocked` (no window) and `unreachable` (offline) switch it off. */
export type InspectorStatus = 'off' | 'opening' | 'connected' | 'blocked' | 'unreachable'

export const inspectorStatus = createStore<InspectorStatus>('off')

/** One connection: everything it added to the page, removed together. */
interface Connection {
  inspector: Inspector
  /** The window the page opened; `null` when the browser blocked it. */
  popup: Window | null
  /** Aborts every listener added for this connection (the inspector's and ours) and the probe. */
  controller: AbortController
  stopForwarding: (() => void) | null
  grace: ReturnType<typeof setTimeout> | null
}

let connection: Connection | null = null

/** `options` for addEventListener with the connection's signal added. */
function withSignal(
  options: boolean | AddEventListenerOptions | undefined,
  signal: AbortSignal,
): AddEventListenerOptions {
  if (typeof options === 'boolean') return { capture: options, signal }
  const own = options?.signal
  return { ...options, signal: own ? AbortSignal.any([own, signal]) : signal }
}

/**
 * Watches the inspector's window: its greeting means connected. The page also requests the
 * window's address: when that fails (no network, DNS, blocked), the window most likely shows an
 * error page. The greeting decides, though: a failure after it is ignored, and after a failure
 * the window still has {@link GREETING_GRACE_MS} to greet before the link is given up.
 */
function watch(link: Connection, url: string): void {
  const { popup, controller } = link
  const onMessage = (event: MessageEvent) => {
    const type = (event.data as { type?: unknown } | null)?.type
    if (event.source === popup && type === '@statelyai.connected') {
      if (link.grace !== null) clearTimeout(link.grace)
      link.grace = null
      inspectorStatus.set('connected')
    }
  }
  window.addEventListener('message', onMessage, { signal: controller.signal })
  // `no-cors`: only whether the address answers matters, not what it answers.
  fetch(url, { mode: 'no-cors', cache: 'no-store', signal: controller.signal }).catch(() => {
    if (controller.signal.aborted || inspectorStatus.get() === 'connected') return
    link.grace = setTimeout(() => {
      link.grace = null
      if (connection !== link || inspectorStatus.get() === 'connected') return
      teardown(link, { closePopup: true })
      inspectorStatus.set('unreachable')
    }, GREETING_GRACE_MS)
  })
}

/** Opens the inspector window and forwards from now on. */
export function connectInspector(url = INSPECTOR_URL): void {
  if (connection) return
  const controller = new AbortController()
  const opened: { popup: Window | null } = { popup: null }
  // The inspector opens its window and listens for its greeting through this stand-in: the
  // page learns whether the browser opened a window (`window.open` gives null when pop-ups are
  // blocked), and every listener the inspector adds is removed when the connection ends.
  const host = {
    open: (target: string, name: string) => {
      opened.popup = window.open(target, name)
      return opened.popup
    },
    addEventListener: (
      type: string,
      listener: EventListenerOrEventListenerObject,
      options?: boolean | AddEventListenerOptions,
    ) => window.addEventListener(type, listener, withSignal(options, controller.signal)),
  } as unknown as Window
  const inspector = createBrowserInspector({
    url,
    window: host,
    serialize: (event) => sanitize(event) as typeof event,
  })
  const link: Connection = {
    inspector,
    popup: opened.popup,
    controller,
    stopForwarding: null,
    grace: null,
  }
  connection = link
  if (!link.popup) {
    teardown(link, { closePopup: false })
    inspectorStatus.set('blocked')
    return
  }
  inspectorStatus.set('opening')
  watch(link, url)
  // The inspector missed the actor's creation: register it with its current (sanitised) state.
  const snapshot = auth.actor.getSnapshot()
  inspector.actor(auth.actor, {
    status: snapshot.status,
    value: snapshot.value,
    context: sanitize(snapshot.context),
  })
  link.stopForwarding = onInspection(forward)
}

function forward(event: InspectionEvent): void {
  connection?.inspector.inspect.next?.(event)
}

/** Ends `link`: stops forwarding, tells its window we are gone, removes every listener. */
function teardown(link: Connection, { closePopup }: { closePopup: boolean }): void {
  if (connection === link) connection = null
  if (link.grace !== null) clearTimeout(link.grace)
  link.grace = null
  link.stopForwarding?.()
  link.stopForwarding = null
  link.inspector.stop()
  link.controller.abort()
  if (closePopup) link.popup?.close()
}

/**
 * Stops forwarding and tells the inspector window we are gone. A window that never connected
 * (still loading, or an error page) is closed; a connected one is left to the reader, with the
 * events it recorded, and gets nothing more from this page.
 */
export function disconnectInspector(): void {
  if (connection) {
    teardown(connection, { closePopup: inspectorStatus.get() !== 'connected' })
  }
  inspectorStatus.set('off')
}
