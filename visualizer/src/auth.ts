// The page's own auth client, created once outside React exactly as an app would, from the
// public entry point. Its `inspect` option feeds the event log, the transition highlight and,
// when switched on, the Stately inspector.
import { createAuthClient } from 'auth-machine'
import axios from 'axios'
import type { InspectionEvent } from 'xstate'
import { config } from './config.js'
import { rememberTokens } from './secrets.js'

type InspectionListener = (event: InspectionEvent) => void
const inspectionListeners = new Set<InspectionListener>()

/** Receives every (already redacted) inspection event of the client's actor system. */
export function onInspection(listener: InspectionListener): () => void {
  inspectionListeners.add(listener)
  return () => inspectionListeners.delete(listener)
}

const warnings = new Set<(message: string) => void>()

/** The protected instance: same origin, so the default `attachTo` (the page's origin) applies. */
export const http = axios.create()

export const auth = createAuthClient({
  http,
  refreshMargin: config.refreshMargin,
  refreshTimeout: config.refreshTimeout,
  retry: config.retry,
  // A bare axios call, never `http`: the refresh must not pass through the interceptors.
  refresh: async (session, { signal }) => {
    const { data } = await axios.post(
      '/auth/refresh',
      { refreshToken: session.refreshToken },
      { signal, timeout: config.refreshTimeout * 2 },
    )
    rememberTokens(data)
    return data
  },
  revoke: async (session, { signal }) => {
    await axios.post('/auth/logout', { refreshToken: session.refreshToken }, { signal })
  },
  inspect: (event) => {
    for (const listener of inspectionListeners) listener(event)
  },
  onWarning: (message) => {
    for (const listener of warnings) listener(message)
  },
})

/** Receives the client's warnings (storage failures, discarded sessions). */
export function onWarning(listener: (message: string) => void): () => void {
  warnings.add(listener)
  return () => warnings.delete(listener)
}

/** Signs in through the token server's login route, as the app's own login form would. */
export async function signIn(username: string): Promise<void> {
  const { data } = await axios.post('/auth/login', { username, password: 'secret' })
  rememberTokens(data)
  auth.login(data)
}
