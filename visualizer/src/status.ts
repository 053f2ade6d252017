// The token server's counters, polled for display only (tests wait on the server itself).
import { useSyncExternalStore } from 'react'
import { type ServerStatus, tokenServer } from './server.js'
import { createStore } from './store.js'

export const serverStatus = createStore<{ status: ServerStatus | null; error: string | null }>({
  status: null,
  error: null,
})

/** Polls `GET /__control/status` every `interval` ms; returns a function that stops. */
export function startPolling(interval = 400): () => void {
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const poll = async () => {
    try {
      serverStatus.set({ status: await tokenServer.status(), error: null })
    } catch (error) {
      serverStatus.set({ status: serverStatus.get().status, error: String(error) })
    }
    if (!stopped) timer = setTimeout(poll, interval)
  }
  void poll()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

/** Polls once now (after a control action), without waiting for the next tick. */
export async function refreshStatus(): Promise<void> {
  try {
    serverStatus.set({ status: await tokenServer.status(), error: null })
  } catch (error) {
    serverStatus.set({ status: serverStatus.get().status, error: String(error) })
  }
}

export function useServerStatus() {
  return useSyncExternalStore(serverStatus.subscribe, serverStatus.get)
}
