// One "tab" of an app using the built library. The tests drive it through `window.tab`.
// Query: ?api=<token server origin>&storage=memory|local|throwing&degrade=1&transport=axios|fetch
//        &dpop=1 (DPoP: a made key shared by the tabs; sign-in and refresh through `dpop.fetch`)
// and, for the DPoP browser tests (tests/browser/dpop):
//   idb=throw   indexedDB.open throws (a profile where IndexedDB is refused)
//   idb=error   indexedDB.open's request fails asynchronously (error event)
//   idb=none    no IndexedDB, but BroadcastChannel and Web Locks
//   idb=getter  reading `indexedDB` throws SecurityError (a sandboxed iframe)
//   (in a srcdoc iframe, the query comes from `window.REVIEW_QUERY`)
//   extra=<origin>  also allowed in attachTo
//
// transport=axios: the `auth-machine` entry protects an axios instance. transport=fetch: the
// axios-free `auth-machine/fetch` entry and `auth.fetch`, with axios never loaded, as a
// fetch-only app ships. The scenarios are the same; only how the page talks HTTP differs.

const params = new URLSearchParams(globalThis.REVIEW_QUERY ?? location.search)
const api = params.get('api')
const storageKind = params.get('storage') ?? 'memory'
const transport = params.get('transport') ?? 'axios'
const dpop = params.get('dpop') === '1'
const idbMode = params.get('idb')
const extra = params.get('extra')

// What this tab posted on any BroadcastChannel, as structured-clone-able snapshots.
const posted = []
if (typeof BroadcastChannel !== 'undefined') {
  const original = BroadcastChannel.prototype.postMessage
  BroadcastChannel.prototype.postMessage = function (message) {
    posted.push({ channel: this.name, message, hasCryptoKey: containsCryptoKey(message) })
    return original.call(this, message)
  }
}
// What this tab received on its channels (the library's `onmessage` handlers), by type.
const received = []
if (typeof BroadcastChannel !== 'undefined') {
  const slot = Object.getOwnPropertyDescriptor(BroadcastChannel.prototype, 'onmessage')
  Object.defineProperty(BroadcastChannel.prototype, 'onmessage', {
    configurable: true,
    get() {
      return slot.get.call(this)
    },
    set(handler) {
      slot.set.call(this, (event) => {
        received.push({
          channel: this.name,
          type: event.data?.type,
          reason: event.data?.reason,
          sessionId: event.data?.session?.id,
        })
        return handler.call(this, event)
      })
    },
  })
}
function containsCryptoKey(value, seen = new Set()) {
  if (typeof CryptoKey !== 'undefined' && value instanceof CryptoKey) return true
  if (typeof value !== 'object' || value === null || seen.has(value)) return false
  seen.add(value)
  return Object.values(value).some((v) => containsCryptoKey(v, seen))
}

if (storageKind === 'throwing') {
  // Storage that fails as in a full quota or a locked-down profile.
  Storage.prototype.setItem = () => {
    throw new DOMException('quota exceeded', 'QuotaExceededError')
  }
  Storage.prototype.getItem = () => {
    throw new DOMException('denied', 'SecurityError')
  }
}

if (idbMode === 'throw') {
  IDBFactory.prototype.open = () => {
    throw new DOMException('IndexedDB is not allowed here', 'SecurityError')
  }
}
if (idbMode === 'error') {
  IDBFactory.prototype.open = () => {
    // A request whose open fails, as in a profile whose IndexedDB backing store is broken.
    const request = new EventTarget()
    Object.defineProperty(request, 'error', {
      value: new DOMException('Internal error opening backing store', 'UnknownError'),
    })
    setTimeout(() => request.onerror?.(new Event('error')), 0)
    return request
  }
}

if (idbMode === 'none') {
  // IndexedDB missing while BroadcastChannel and Web Locks exist.
  Object.defineProperty(globalThis, 'indexedDB', { configurable: true, get: () => undefined })
}
if (idbMode === 'getter') {
  // As in a sandboxed iframe (opaque origin): reading `indexedDB` throws.
  Object.defineProperty(globalThis, 'indexedDB', {
    configurable: true,
    get() {
      throw new DOMException('Access is denied for this document.', 'SecurityError')
    },
  })
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
let auth
try {
  auth = createClient()
} catch (error) {
  window.createError = { name: error?.name, code: error?.code, message: error?.message }
  window.reviewReady = 'failed'
  throw error
}
function createClient() {
  return net.createAuthClient({
    ...net.options,
    attachTo: extra ? [api, extra] : [api],
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
}

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
const full = () => JSON.stringify(auth.actor.getSnapshot().value)
auth.actor.subscribe(() => {
  document.getElementById('state').textContent = top()
})

const describeError = (reason) => ({
  name: reason?.name ?? String(reason),
  code: reason?.code,
  message: reason?.message,
})

const tab = {
  refreshCalls: 0,
  warnings,
  posted,
  received,
  auth,
  state: top,
  fullState: full,
  token: () => auth.actor.getSnapshot().context.session?.accessToken ?? null,
  sessionId: () => auth.actor.getSnapshot().context.session?.id ?? null,
  block(on) {
    blockRefresh = on
  },
  /** Step 1 of a sign-in: the token request, with a proof (DPoP) from `auth.dpop`. */
  async signInTokens() {
    const credentials = { username: 'ada', password: 'secret' }
    return dpop
      ? await dpopPost(auth.dpop, `${api}/auth/login`, credentials)
      : await net.post(`${api}/auth/login`, credentials)
  },
  /** Step 2 of a sign-in: hands the tokens to the client. */
  commit(tokens) {
    auth.login(tokens)
  },
  async login() {
    auth.login(await tab.signInTokens())
  },
  /** Same as login(), but reports a failure as data instead of throwing. */
  async tryLogin() {
    try {
      await tab.login()
      return { ok: true }
    } catch (error) {
      return { ok: false, error: describeError(error) }
    }
  },
  async key() {
    const pair = await auth.dpop.keyPair()
    return { jkt: await auth.dpop.thumbprint(), extractable: pair.privateKey.extractable }
  },
  logout: () => auth.logout(),
  /** Fires `n` protected GETs at once: `ok` counts 2xx answers, `errors` names the rest. */
  fire: (n) => fire(n, (reason) => reason?.name ?? String(reason)),
  /** One protected request to an absolute URL, through the page's transport. */
  async fireUrl(url) {
    try {
      const data = await net.getUrl(auth, url)
      return { ok: true, data }
    } catch (error) {
      return { ok: false, error: describeError(error) }
    }
  },
  /** Every record in the shared 'auth-machine' database, as stored. */
  async idbDump() {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('auth-machine', 1)
      req.onupgradeneeded = () => req.result.createObjectStore('records')
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    try {
      const tx = db.transaction('records', 'readonly')
      const store = tx.objectStore('records')
      const [keys, values] = await Promise.all(
        [store.getAllKeys(), store.getAll()].map(
          (r) =>
            new Promise((res, rej) => {
              r.onsuccess = () => res(r.result)
              r.onerror = () => rej(r.error)
            }),
        ),
      )
      // The keys record holds each session's key (by id) and a sign-in's pending one: one
      // entry per stored key. Bound keys only: a pending key belongs to no session yet.
      return keys.flatMap((key, i) => {
        const value = values[i]
        if (String(key).endsWith(':dpop-key')) {
          return Object.values(value?.sessions ?? {}).map((stored) => ({
            key,
            sessionId: stored.sessionId,
            privateExtractable: stored.keyPair?.privateKey?.extractable,
          }))
        }
        return [{ key, kind: value?.kind, json: JSON.stringify(value) }]
      })
    } finally {
      db.close()
    }
  },
  localStorageDump() {
    const out = {}
    for (let i = 0; i < localStorage.length; i += 1) {
      const k = localStorage.key(i)
      out[k] = localStorage.getItem(k)
    }
    return out
  },
}

/** `n` protected GETs at once; `errors` tells each failure as `describe` says. */
async function fire(n, describe) {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => net.get(auth, '/api/resource')),
  )
  return {
    ok: results.filter((r) => r.status === 'fulfilled').length,
    errors: results.filter((r) => r.status === 'rejected').map((r) => describe(r.reason)),
  }
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
    getUrl: async (_auth, url) => (await http.get(url)).data,
  }
}

async function fetchTransport() {
  const library = await import('/dist/src/fetch.js')
  const get = async (client, url) => {
    const response = await client.fetch(url)
    if (response.ok) return response.json()
    await response.body?.cancel()
    throw Object.assign(new Error('not ok'), { name: `HTTP ${response.status}` })
  }
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
    get: (client, path) => get(client, `${api}${path}`),
    getUrl: get,
  }
}

window.tab = tab
// The DPoP browser tests' name for it (tests/browser declares `window.tab` with its own
// type); their `fire` tells failures by code (`LOGGED_OUT`), the others' by error name.
window.review = Object.create(tab, {
  fire: { value: (n) => fire(n, (reason) => reason?.code ?? reason?.name ?? String(reason)) },
})
await auth.ready
document.getElementById('state').textContent = top()
window.tabReady = true
window.reviewReady = true
