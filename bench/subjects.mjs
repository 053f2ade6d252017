// The contenders, each set up the way its own README recommends, over a fresh axios instance
// (the fetch-based ones over one `fetch`: bench/fetchSubjects.mjs). Every one refreshes
// through the same kind of bare axios instance (never the protected one) and stores what the
// refresh returns, rotated refresh token included. Every subject has `get(path)`.

import { createAuthClient } from 'auth-machine'
import axios from 'axios'
import { createAuthRefresh } from 'axios-auth-refresh'
import { applyAuthTokenInterceptor, clearAuthTokens, setAuthTokens } from 'axios-jwt'
import { createFetchSubject, FETCH_SUBJECTS } from './fetchSubjects.mjs'
import { applyNaiveRefresh } from './naive.mjs'
import { memoryLocalStorage } from './storage.mjs'

/** The libraries compared, in report order. `bare` is the baseline: no refresh at all. */
export const LIBRARIES = ['auth-machine', 'axios-auth-refresh', 'axios-jwt', 'naive']
export const SUBJECTS = ['bare', ...LIBRARIES]
/**
 * axios-auth-refresh with `deduplicateRefresh: false`: not its README's recommendation, but
 * the workaround for its open issue #307 (with the default, 401s that arrive while a refresh
 * runs are rejected). Shown as an extra row where it changes the outcome.
 */
export const AAR_NO_DEDUP = 'axios-auth-refresh:no-dedup'

function interceptorCount(http) {
  const live = (manager) => manager.handlers.filter(Boolean).length
  return live(http.interceptors.request) + live(http.interceptors.response)
}

/**
 * @param {string} name one of SUBJECTS or FETCH_SUBJECTS
 * @param {{
 *   baseURL: string,
 *   adapter?: import('axios').AxiosAdapter,
 *   fetch?: typeof globalThis.fetch,
 *   refreshUrl: string,
 *   onRefreshAnswered?: () => void,
 * }} options `adapter` for the in-process backend, none for loopback (axios' http adapter);
 *   `fetch` for the fetch subjects (default: the platform's)
 */
export function createSubject(name, options) {
  if (FETCH_SUBJECTS.includes(name)) {
    return createFetchSubject(name, { ...options, fetch: options.fetch ?? globalThis.fetch })
  }
  const { baseURL, adapter, refreshUrl, onRefreshAnswered } = options
  const withAdapter = adapter ? { adapter } : {}
  const http = axios.create({ baseURL, ...withAdapter })
  // The raw call every contender refreshes with: a bare instance, as each README insists.
  const refreshHttp = axios.create(withAdapter)
  const postRefresh = async (refreshToken, signal) => {
    const { data } = await refreshHttp.post(
      refreshUrl,
      { refreshToken },
      signal ? { signal } : undefined,
    )
    onRefreshAnswered?.()
    return data
  }
  const base = {
    name,
    http,
    get: (path) => http.get(path),
    interceptors: () => interceptorCount(http),
    pending: () => null,
  }

  if (name === 'bare') {
    return {
      ...base,
      // The header set by hand on the instance: the fastest an authorised request can be.
      signIn: async (tokens) => {
        http.defaults.headers.common.Authorization = `Bearer ${tokens.accessToken}`
      },
      dispose: () => undefined,
    }
  }

  if (name === 'auth-machine') {
    // README quick start, defaults for everything else (memorySession, retry, margins).
    const auth = createAuthClient({
      http,
      refresh: async (session, { signal }) => postRefresh(session.refreshToken, signal),
    })
    return {
      ...base,
      auth,
      signIn: async (tokens) => auth.login(tokens),
      pending: () => auth.actor.getSnapshot().context.queue.length,
      dispose: () => auth.dispose(),
    }
  }

  if (name === 'axios-auth-refresh' || name === AAR_NO_DEDUP) {
    // README: createAuthRefresh(instance, refreshAuthLogic) with default options
    // (statusCodes [401], deduplicateRefresh true), plus the README's request interceptor that
    // reads the token from localStorage on every request.
    const storage = memoryLocalStorage()
    const options = name === AAR_NO_DEDUP ? { deduplicateRefresh: false } : {}
    createAuthRefresh(
      http,
      async (failedRequest) => {
        const data = await postRefresh(storage.getItem('refreshToken'))
        storage.setItem('token', data.accessToken)
        if (data.refreshToken) storage.setItem('refreshToken', data.refreshToken)
        failedRequest.response.config.headers.Authorization = `Bearer ${data.accessToken}`
      },
      options,
    )
    http.interceptors.request.use((request) => {
      request.headers.Authorization = `Bearer ${storage.getItem('token')}`
      return request
    })
    return {
      ...base,
      signIn: async (tokens) => {
        storage.setItem('token', tokens.accessToken)
        storage.setItem('refreshToken', tokens.refreshToken)
      },
      dispose: () => {
        http.interceptors.request.clear()
        http.interceptors.response.clear()
      },
    }
  }

  if (name === 'axios-jwt') {
    // README: applyAuthTokenInterceptor(instance, { requestRefresh, getStorage }) with the
    // default header, prefix and 10 s expiry leeway; requestRefresh returns both tokens (the
    // server rotates). getBrowserLocalStorage() is undefined in Node, so getStorage gives the
    // same async wrapper it builds (BrowserStorageService) over a Map-backed localStorage.
    const local = memoryLocalStorage()
    const storage = {
      get: async (key) => local.getItem(key),
      set: async (key, value) => local.setItem(key, value),
      remove: async (key) => local.removeItem(key),
    }
    applyAuthTokenInterceptor(http, {
      requestRefresh: async (refreshToken) => {
        const data = await postRefresh(refreshToken)
        return { accessToken: data.accessToken, refreshToken: data.refreshToken }
      },
      getStorage: () => storage,
    })
    return {
      ...base,
      signIn: (tokens) =>
        setAuthTokens({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken }),
      dispose: async () => {
        http.interceptors.request.clear()
        await clearAuthTokens()
      },
    }
  }

  if (name === 'naive') {
    const storage = memoryLocalStorage()
    const recipe = applyNaiveRefresh(http, { storage, refresh: (token) => postRefresh(token) })
    return {
      ...base,
      signIn: async (tokens) => {
        storage.setItem('accessToken', tokens.accessToken)
        storage.setItem('refreshToken', tokens.refreshToken)
      },
      pending: () => recipe.queued,
      dispose: () => recipe.eject(),
    }
  }

  throw new Error(`unknown subject ${name}`)
}
