// An in-process token backend, served two ways with no sockets: a custom axios adapter and a
// `fetch` function. Protected requests settle as already-resolved promises (no event loop
// turns), so what is measured is the client's own work, not the network. Same semantics as
// the real test server: JWT-shaped access tokens with `iat`/`exp`, rotating refresh tokens
// with reuse detection.
//
// The `fetch` is fetch without the network: it builds the `Request` from `(input, init)` as
// the platform's `fetch` does first (headers validated and normalised), and answers a
// `Response`. Bare fetch and every fetch-based client pay for both, as with a real fetch.

import { AxiosError } from 'axios'

const HEADER = b64url({ alg: 'HS256', typ: 'JWT' })
const SIGNATURE = 'c2lnbmF0dXJlLW5vdC1jaGVja2VkLWluLXByb2Nlc3MtYmVuY2htYXJr'

function b64url(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

const OK = { status: 200, data: { ok: true } }
const UNAUTHORIZED = { status: 401, data: { error: 'invalid_token' } }
const JSON_HEADERS = { 'content-type': 'application/json' }

function jsonResponse(status, data) {
  return new Response(JSON.stringify(data), { status, headers: JSON_HEADERS })
}

/** Resolves on the next macrotask, as a network answer would. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/**
 * @param {{ ttl?: number }} options access token lifetime in seconds (default 1800)
 */
export function createBackend({ ttl = 1800 } = {}) {
  let seq = 0
  let expiredThrough = 0
  /** access token -> { seq, exp (s) } */
  const access = new Map()
  /** live refresh token -> family */
  const refreshTokens = new Map()
  // The most recently spent refresh tokens (bounded, so that a long run does not grow the
  // backend's own heap): presenting one again is a reuse, which revokes its family.
  const spent = new Map()
  const SPENT_KEPT = 64
  const revokedFamilies = new Set()
  const counters = {
    refreshCalls: 0,
    refreshSuccesses: 0,
    reuseDetections: 0,
    unauthorized: 0,
    protectedOk: 0,
  }

  function issue(family, { age = 0 } = {}) {
    // Forget tokens that can never be accepted again, so the backend's heap stays flat.
    for (const [token, record] of access) {
      if (record.seq <= expiredThrough || record.exp * 1000 <= Date.now()) access.delete(token)
    }
    seq += 1
    // `age` seconds ago: a token with age > ttl is already past its `exp`.
    const iat = Math.floor(Date.now() / 1000) - age
    const exp = iat + ttl
    const accessToken = `${HEADER}.${b64url({ sub: 'ada', iat, exp, jti: `a${seq}`, sid: family })}.${SIGNATURE}`
    const refreshToken = `r${seq}.${family}.${Math.random().toString(36).slice(2)}`
    access.set(accessToken, { seq, exp })
    refreshTokens.set(refreshToken, family)
    return { accessToken, refreshToken, expiresIn: ttl }
  }

  function isValid(token) {
    const record = access.get(token)
    return record !== undefined && record.seq > expiredThrough && record.exp * 1000 > Date.now()
  }

  function respond(config, status, data) {
    const response = { data, status, statusText: String(status), headers: {}, config, request: {} }
    const ok = config.validateStatus ? config.validateStatus(status) : status < 300
    if (ok) return Promise.resolve(response)
    return Promise.reject(
      new AxiosError(
        `Request failed with status code ${status}`,
        status >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST,
        config,
        response.request,
        response,
      ),
    )
  }

  /** Spends a refresh token: the new tokens, or a rejection (reuse revokes the family). */
  function spend(token) {
    const reused = spent.get(token)
    if (reused !== undefined) {
      counters.reuseDetections += 1
      revokedFamilies.add(reused)
      return { status: 401, data: { error: 'invalid_grant' } }
    }
    const family = refreshTokens.get(token)
    if (family === undefined || revokedFamilies.has(family)) {
      return { status: 401, data: { error: 'invalid_grant' } }
    }
    refreshTokens.delete(token)
    spent.set(token, family)
    if (spent.size > SPENT_KEPT) spent.delete(spent.keys().next().value)
    counters.refreshSuccesses += 1
    return { status: 200, data: issue(family) }
  }

  /** A protected resource, for the token the request carries (`Bearer …` or nothing). */
  function serve(header) {
    const token = typeof header === 'string' ? header.slice(7) : undefined
    if (token === undefined || !isValid(token)) {
      counters.unauthorized += 1
      return UNAUTHORIZED
    }
    counters.protectedOk += 1
    return OK
  }

  async function refreshAxios(config) {
    counters.refreshCalls += 1
    await nextTurn()
    const body = typeof config.data === 'string' ? JSON.parse(config.data) : (config.data ?? {})
    const { status, data } = spend(body.refreshToken)
    return respond(config, status, data)
  }

  async function refreshFetch(request) {
    counters.refreshCalls += 1
    await nextTurn()
    const body = await request.json().catch(() => ({}))
    const { status, data } = spend(body.refreshToken)
    return jsonResponse(status, data)
  }

  let families = 0
  return {
    counters,
    /** A new session, as a login would return it; `age` seconds old (see `issue`). */
    login(options) {
      families += 1
      return issue(`f${families}`, options)
    },
    /** Every access token issued so far is rejected from now on (server-side expiry). */
    expireAccessTokens() {
      expiredThrough = seq
      access.clear()
    },
    /** The token `Authorization` must carry for the bare-axios baseline. */
    isValid,
    resetCounters() {
      for (const key of Object.keys(counters)) counters[key] = 0
    },
    /** The axios adapter. Protected requests settle as already-resolved promises. */
    adapter(config) {
      if (config.url?.endsWith('/auth/refresh')) return refreshAxios(config)
      const { status, data } = serve(
        config.headers?.get?.('Authorization') ?? config.headers?.Authorization,
      )
      return respond(config, status, data)
    },
    /** The in-process `fetch`. Protected requests settle as already-resolved promises. */
    fetch(input, init) {
      const request = new Request(input, init)
      if (request.url.endsWith('/auth/refresh')) return refreshFetch(request)
      const { status, data } = serve(request.headers.get('Authorization') ?? undefined)
      return Promise.resolve(jsonResponse(status, data))
    },
  }
}
