// One "tab" of an app using the built library. The test drives it through `window.tab`.
// Query: ?api=<token server origin>&storage=memory|local|throwing&degrade=1
import axios from 'axios'
import { createAuthClient, localStorageSession } from '/dist/src/index.js'

const params = new URLSearchParams(location.search)
const api = params.get('api')
const storageKind = params.get('storage') ?? 'memory'

if (storageKind === 'throwing') {
  // Storage that fails as in a full quota or a locked-down profile.
  Storage.prototype.setItem = () => {
    throw new DOMException('quota exceeded', 'QuotaExceededError')
  }
  Storage.prototype.getItem = () => {
    throw new DOMException('denied', 'SecurityError')
  }
}

if (params.get('degrade') === '1') {
  // An old browser: no Web Locks, no BroadcastChannel, no IndexedDB.
  Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined })
  delete globalThis.BroadcastChannel
  Object.defineProperty(globalThis, 'indexedDB', { get: () => undefined })
}

let blockRefresh = false
const warnings = []
const http = axios.create({ baseURL: api })
const auth = createAuthClient({
  http,
  attachTo: [api],
  ...(storageKind === 'memory' ? {} : { storage: localStorageSession() }),
  onWarning: (message) => warnings.push(message),
  refresh: async (session, { signal }) => {
    tab.refreshCalls += 1
    // Simulates a tab that stalls (or dies) while it holds the refresh lock.
    if (blockRefresh) await new Promise(() => undefined)
    const { data } = await axios.post(
      `${api}/auth/refresh`,
      { refreshToken: session.refreshToken },
      { signal },
    )
    return data
  },
})

const top = () => {
  const value = auth.actor.getSnapshot().value
  return typeof value === 'string' ? value : Object.keys(value)[0]
}
auth.actor.subscribe(() => {
  document.getElementById('state').textContent = top()
})

const tab = {
  refreshCalls: 0,
  warnings,
  state: top,
  token: () => auth.actor.getSnapshot().context.session?.accessToken ?? null,
  block(on) {
    blockRefresh = on
  },
  async login() {
    const { data } = await axios.post(`${api}/auth/login`, { username: 'ada', password: 'secret' })
    auth.login(data)
  },
  logout: () => auth.logout(),
  async fire(n) {
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => http.get('/api/resource')),
    )
    return {
      ok: results.filter((r) => r.status === 'fulfilled').length,
      errors: results
        .filter((r) => r.status === 'rejected')
        .map((r) => r.reason?.name ?? String(r.reason)),
    }
  },
}
window.tab = tab
await auth.ready
document.getElementById('state').textContent = top()
window.tabReady = true
