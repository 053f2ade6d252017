// One "tab" of an app using the built library. The test drives it through `window.tab`.
// Query: ?api=<token server origin>&storage=memory|local|throwing&degrade=1&transport=axios|fetch
//
// transport=axios: the `auth-machine` entry protects an axios instance. transport=fetch: the
// axios-free `auth-machine/fetch` entry and `auth.fetch`, with axios never loaded, as a
// fetch-only app ships. The scenarios are the same; only how the page talks HTTP differs.

const params = new URLSearchParams(location.search)
const api = params.get('api')
const storageKind = params.get('storage') ?? 'memory'
const transport = params.get('transport') ?? 'axios'

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

const net = transport === 'fetch' ? await fetchTransport() : await axiosTransport()

let blockRefresh = false
const warnings = []
const auth = net.createAuthClient({
  ...net.options,
  attachTo: [api],
  ...(storageKind === 'memory' ? {} : { storage: net.localStorageSession() }),
  onWarning: (message) => warnings.push(message),
  refresh: async (session, { signal }) => {
    tab.refreshCalls += 1
    // Simulates a tab that stalls (or dies) while it holds the refresh lock.
    if (blockRefresh) await new Promise(() => undefined)
    return net.post(`${api}/auth/refresh`, { refreshToken: session.refreshToken }, signal)
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
    auth.login(await net.post(`${api}/auth/login`, { username: 'ada', password: 'secret' }))
  },
  logout: () => auth.logout(),
  /** Fires `n` protected GETs at once: `ok` counts 2xx answers, `errors` names the rest. */
  async fire(n) {
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => net.get(auth, '/api/resource')),
    )
    return {
      ok: results.filter((r) => r.status === 'fulfilled').length,
      errors: results
        .filter((r) => r.status === 'rejected')
        .map((r) => r.reason?.name ?? String(r.reason)),
    }
  },
}

async function axiosTransport() {
  const [{ default: axios }, library] = await Promise.all([
    import('axios'),
    import('/dist/src/index.js'),
  ])
  const http = axios.create({ baseURL: api })
  return {
    ...library,
    options: { http },
    // A raw call: the refresh must never pass through the protected instance.
    post: async (url, body, signal) => (await axios.post(url, body, { signal })).data,
    get: (_auth, path) => http.get(path),
  }
}

async function fetchTransport() {
  const library = await import('/dist/src/fetch.js')
  return {
    ...library,
    options: {},
    post: async (url, body, signal) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      })
      if (!response.ok) throw Object.assign(new Error('refused'), { status: response.status })
      return response.json()
    },
    // An HTTP status never rejects `auth.fetch`: a non-2xx answer is reported as an error
    // here, so both transports count the same outcomes.
    get: async (client, path) => {
      const response = await client.fetch(`${api}${path}`)
      if (response.ok) return response.json()
      await response.body?.cancel()
      throw Object.assign(new Error('not ok'), { name: `HTTP ${response.status}` })
    },
  }
}

window.tab = tab
await auth.ready
document.getElementById('state').textContent = top()
window.tabReady = true
