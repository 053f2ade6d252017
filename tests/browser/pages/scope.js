// Several auth clients on one page, each protecting its own API. The test drives them
// through `window.scope`: make(id, options), login(id), fire(id, n), state(id), token(id).
import axios from 'axios'
import { createAuthClient, localStorageSession } from '/dist/src/index.js'

const clients = new Map()

const get = (id) => {
  const client = clients.get(id)
  if (!client) throw new Error(`no client ${id}`)
  return client
}

window.scope = {
  /**
   * options: { api, storage?: 'memory' | 'local:<key>', name?, predicateFor? }. With
   * predicateFor, attachTo is a predicate allowing that origin instead of a list.
   * Resolves to null, or to the name and code of the error createAuthClient threw.
   */
  async make(id, { api, storage = 'memory', name, predicateFor }) {
    const http = axios.create({ baseURL: api })
    try {
      const auth = createAuthClient({
        http,
        attachTo: predicateFor ? (url) => url.origin === predicateFor : [api],
        ...(storage.startsWith('local:')
          ? { storage: localStorageSession({ key: storage.slice('local:'.length) }) }
          : {}),
        crossTab: name ? { name } : true,
        onWarning: () => undefined,
        refresh: async (session, { signal }) =>
          (
            await axios.post(
              `${api}/auth/refresh`,
              { refreshToken: session.refreshToken },
              { signal },
            )
          ).data,
      })
      clients.set(id, { api, http, auth })
      await auth.ready
      return null
    } catch (error) {
      return { name: error.name, code: error.code }
    }
  },
  async login(id) {
    const { api, auth } = get(id)
    const { data } = await axios.post(`${api}/auth/login`, { username: 'ada', password: 'secret' })
    auth.login(data)
    return data.accessToken
  },
  state(id) {
    const value = get(id).auth.actor.getSnapshot().value
    return typeof value === 'string' ? value : Object.keys(value)[0]
  },
  token: (id) => get(id).auth.actor.getSnapshot().context.session?.accessToken ?? null,
  async fire(id, n) {
    const { http } = get(id)
    const results = await Promise.allSettled(
      Array.from({ length: n }, () => http.get('/api/resource')),
    )
    return results.filter((r) => r.status === 'fulfilled').length
  },
}
window.scopeReady = true
