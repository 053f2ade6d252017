// One "tab" of an app using the built library. The test drives it through `window.tab`.
// Query: ?api=<token server origin>&storage=memory|local|throwing&degrade=1&transport=axios|fetch
//        &dpop=1 (DPoP: a made key shared by the tabs; sign-in and refresh through `dpop.fetch`)
//
// transport=axios: the `auth-machine` entry protects an axios instance. transport=fetch: the
// axios-free `auth-machine/fetch` entry and `auth.fetch`, with axios never loaded, as a
// fetch-only app ships. The scenarios are the same; only how the page talks HTTP differs.

const params = new URLSearchParams(location.search)
const api = params.get('api')
const storageKind = params.get('storage') ?? 'memory'
const transport = params.get('transport') ?? 'axios'
const dpop = params.get('dpop') === '1'

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
  ...(dpop ? { dpop: true } : {}),
  refresh: async (session, context) => {
    tab.refreshCalls += 1
    // Simulates a tab that stalls (or dies) while it holds the refresh lock.
    if (blockRefresh) await new Promise(() => undefined)
    const body = { refreshToken: session.refreshToken }
    if (context.dpop) return dpopPost(context.dpop, `${api}/auth/refresh`, body, context.signal)
    return net.post(`${api}/auth/refresh`, body, context.signal)
  },
})

/** A raw call to the token server with a DPoP proof (`dpop.fetch` answers nonce challenges). */
async function dpopPost(handle, url, body, signal) {
  const response = await handle.fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  })
  if (!response.ok) throw Object.assign(new Error('refused'), { status: response.status })
  return response.json()
}

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
    const credentials = { username: 'ada', password: 'secret' }
    auth.login(
      dpop
        ? await dpopPost(auth.dpop, `${api}/auth/login`, credentials)
        : await net.post(`${api}/auth/login`, credentials),
    )
  },
  /** The DPoP key this tab would sign with now, and whether its private half can leave. */
  async key() {
    const pair = await auth.dpop.keyPair()
    return { jkt: await auth.dpop.thumbprint(), extractable: pair.privateKey.extractable }
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
