// The fetch-world contenders, over one `fetch` (the in-process backend's, or a real one):
// bare fetch, `auth.fetch` from `auth-machine/fetch`, and ky with the refresh recipe of its
// README. Each refreshes with a bare call on the same `fetch`, never through the protected
// client, and stores the rotated refresh token it gets back.

import { createAuthClient } from 'auth-machine/fetch'
import ky from 'ky'
import { memoryLocalStorage } from './storage.mjs'

/** Bare `fetch` with the header set by hand: the baseline of the fetch rows. */
export const BARE_FETCH = 'fetch'
export const AUTH_FETCH = 'auth-machine:fetch'
export const KY = 'ky'
/** The fetch-based libraries compared, in report order. */
export const FETCH_LIBRARIES = [AUTH_FETCH, KY]
export const FETCH_SUBJECTS = [BARE_FETCH, ...FETCH_LIBRARIES]

/** Makes `fetch` the global one for this process, as the app's platform fetch. */
export function installFetch(fetch) {
  globalThis.fetch = fetch
}

/**
 * @param {string} name one of FETCH_SUBJECTS
 * @param {{
 *   baseURL: string,
 *   fetch: typeof globalThis.fetch,
 *   refreshUrl: string,
 *   onRefreshAnswered?: () => void,
 * }} options
 */
export function createFetchSubject(name, { baseURL, fetch, refreshUrl, onRefreshAnswered }) {
  // Absolute URLs for every subject: Node's fetch resolves nothing against a page.
  const url = (path) => `${baseURL}${path}`
  const base = { name, interceptors: () => null, pending: () => null }

  if (name === BARE_FETCH) {
    let headers
    return {
      ...base,
      get: (path) => fetch(url(path), { headers }),
      signIn: async (tokens) => {
        headers = { Authorization: `Bearer ${tokens.accessToken}` }
      },
      dispose: () => undefined,
    }
  }

  if (name === AUTH_FETCH) {
    // The README's quick start: a raw refresh call on the same `fetch`, `attachTo` the API's
    // origin (Node has no page origin to default to), every other option default. The
    // in-process `fetch` is installed as the global one (see installFetch), the one an app's
    // auth.fetch calls without a `fetch` option: with the option, auth.fetch gives each
    // request the session's abort signal, a cost only apps with their own fetch pay.
    const auth = createAuthClient({
      ...(fetch === globalThis.fetch ? {} : { fetch }),
      attachTo: [baseURL],
      refresh: async (session, { signal }) => {
        const res = await fetch(refreshUrl, {
          method: 'POST',
          signal,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refreshToken: session.refreshToken }),
        })
        if (!res.ok) throw Object.assign(new Error('refresh failed'), { status: res.status })
        const data = await res.json()
        onRefreshAnswered?.()
        return data
      },
    })
    return {
      ...base,
      auth,
      get: (path) => auth.fetch(url(path)),
      signIn: async (tokens) => auth.login(tokens),
      pending: () => auth.actor.getSnapshot().context.queue.length,
      dispose: () => auth.dispose(),
    }
  }

  if (name === KY) {
    // README (ky 1.x): `hooks.beforeRequest` sets the header on the first attempt only
    // ("retries may have refreshed token set by beforeRetry"), and the `hooks.afterResponse`
    // recipe "retry with a fresh token on a 401 error", copied as written: on the first
    // 401 refresh with the bare `ky`, then `ky.retry({ request: new Request(request,
    // { headers }), code: 'TOKEN_REFRESHED' })`. One refresh per 401, no single flight; the
    // forced retry waits ky's default retry delay (300 ms for the first retry).
    const storage = memoryLocalStorage()
    const bare = ky.create({ fetch })
    const api = ky.create({
      fetch,
      hooks: {
        beforeRequest: [
          (request, _options, { retryCount }) => {
            if (retryCount === 0) {
              request.headers.set('Authorization', `Bearer ${storage.getItem('token')}`)
            }
          },
        ],
        afterResponse: [
          async (request, _options, response, state) => {
            if (response.status === 401 && state.retryCount === 0) {
              // Only refresh on first 401, not on subsequent retries
              const data = await bare
                .post(refreshUrl, { json: { refreshToken: storage.getItem('refreshToken') } })
                .json()
              onRefreshAnswered?.()
              storage.setItem('token', data.accessToken)
              if (data.refreshToken) storage.setItem('refreshToken', data.refreshToken)

              const headers = new Headers(request.headers)
              headers.set('Authorization', `Bearer ${data.accessToken}`)

              return ky.retry({
                request: new Request(request, { headers }),
                code: 'TOKEN_REFRESHED',
              })
            }
          },
        ],
      },
    })
    return {
      ...base,
      get: (path) => api.get(url(path)),
      signIn: async (tokens) => {
        storage.setItem('token', tokens.accessToken)
        storage.setItem('refreshToken', tokens.refreshToken)
      },
      dispose: () => undefined,
    }
  }

  throw new Error(`unknown fetch subject ${name}`)
}
