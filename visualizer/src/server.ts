// The token server's control routes (/__control/*), reached through the page's own origin.

// Types only: the server itself runs in Node; the page talks to it over HTTP.
import type { RefreshFaultKind, TestAuthServerCounters } from 'auth-machine/testing'

/** What the next refresh call should do instead of refreshing. */
export type FaultKind = RefreshFaultKind

export type ServerCounters = TestAuthServerCounters

export interface ServerStatus {
  counters: ServerCounters
  refreshInFlight: number
  maxConcurrentRefreshes: number
  holds: { id: number; pathPrefix: string; waiting: number }[]
  faults: { kind: FaultKind; remaining: number | null; afterRefresh?: true }[]
  delays: unknown[]
}

async function post(name: string, body: Record<string, unknown> = {}): Promise<void> {
  const response = await fetch(`/__control/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!response.ok) throw new Error(`/__control/${name} answered ${response.status}`)
}

export const tokenServer = {
  status: async (): Promise<ServerStatus> => {
    const response = await fetch('/__control/status', { cache: 'no-store' })
    if (!response.ok) throw new Error(`/__control/status answered ${response.status}`)
    return (await response.json()) as ServerStatus
  },
  expireAccessTokens: () => post('expire-access-tokens'),
  revokeSessions: () => post('revoke-sessions'),
  /**
   * `times: null` means every refresh call from now on; `afterRefresh`: the server refreshes
   * (spends the token) and then fails instead of answering.
   */
  failNextRefresh: (kind: FaultKind, times: number | null = 1, afterRefresh = false) =>
    post('fail-next-refresh', { kind, times, afterRefresh }),
  clearFaults: () => post('clear-faults'),
  releaseHung: () => post('release-hung'),
  resetCounters: () => post('reset-counters'),
}

/** Offline is simulated as "every refresh connection is reset" (see the README). */
export function isOffline(status: ServerStatus | null): boolean {
  return (
    status?.faults.some((f) => f.kind === 'reset' && f.remaining === null && !f.afterRefresh) ??
    false
  )
}
