// The page's protected requests, through the transport picked in the page: the axios instance
// the client protects, or `auth.fetch`. Both share the client's one queue and refresh, so the
// statechart, queue and log read the same; only the HTTP client differs. The choice is kept
// in the URL (`?transport=fetch`), so a reload and "Open another tab" keep it.
import { AuthError } from 'auth-machine'
import { addLog } from './activity.js'
import { auth, http } from './auth.js'
import { createStore } from './store.js'

export const TRANSPORTS = ['axios', 'fetch'] as const
export type Transport = (typeof TRANSPORTS)[number]

const fromUrl = (): Transport =>
  new URLSearchParams(location.search).get('transport') === 'fetch' ? 'fetch' : 'axios'

export const transport = createStore<Transport>(fromUrl())

export function chooseTransport(next: Transport): void {
  if (next === transport.get()) return
  const url = new URL(location.href)
  if (next === 'axios') url.searchParams.delete('transport')
  else url.searchParams.set('transport', next)
  history.replaceState(history.state, '', url)
  transport.set(next)
  addLog('control', `requests go through ${next === 'fetch' ? 'auth.fetch' : 'axios'}`)
}

/**
 * How a failure is shown: its `code` (AuthError codes such as SESSION_EXPIRED, axios codes
 * such as ERR_NETWORK, `HTTP 401` for a fetch answer), else its name. Codes survive
 * minification; class names do not.
 */
export function errorName(reason: unknown): string {
  if (reason instanceof AuthError) return reason.code
  if (reason instanceof Error) {
    const code = (reason as { code?: unknown }).code
    return typeof code === 'string' ? code : reason.name
  }
  return typeof reason
}

/**
 * One protected GET. `auth.fetch` resolves on any HTTP status, as fetch does; a non-2xx
 * answer is turned into a failure here so both transports are counted alike.
 */
async function get(via: Transport, path: string): Promise<void> {
  if (via === 'axios') {
    await http.get(path)
    return
  }
  const response = await auth.fetch(path)
  await response.arrayBuffer()
  if (!response.ok) {
    throw Object.assign(new Error('not ok'), { code: `HTTP ${response.status}` })
  }
}

/** Fires `count` protected requests at once through the chosen transport; logs how they ended. */
export async function fire(count: number): Promise<void> {
  const via = transport.get()
  addLog('control', `fire ${count} concurrent GET /api/resource via ${via}`)
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => get(via, '/api/resource')),
  )
  const ok = results.filter((r) => r.status === 'fulfilled').length
  const failures = new Map<string, number>()
  for (const result of results) {
    if (result.status === 'rejected') {
      const name = errorName(result.reason)
      failures.set(name, (failures.get(name) ?? 0) + 1)
    }
  }
  const rejected = [...failures].map(([name, n]) => `${n}× ${name}`).join(', ')
  addLog(
    failures.size === 0 ? 'ok' : 'error',
    `${ok}/${count} ok via ${via}${rejected ? `, failed: ${rejected}` : ''}`,
  )
}
