import axios from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, fakeAdapter, tokens } from './axiosFake.js'

// Third review: two clients on one axios instance undid each other's decisions (one's
// interceptor consumed the other's replay marker: a persistent 401 was replayed and refreshed
// without end). An instance belongs to one client: attaching a second one throws.

const clients: AuthClient[] = []
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose()
})

const client = () => {
  const auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  clients.push(auth)
  return auth
}

it('a second client cannot attach to an instance another client protects', () => {
  const http = axios.create({ baseURL: API, adapter: fakeAdapter().adapter })
  client().attach(http, { attachTo: [API] })
  expect(() => client().attach(http, { attachTo: ['https://other.test'] })).toThrow(
    /attached to another auth client/,
  )
})

it('after the first client detaches, another may attach', () => {
  const http = axios.create({ baseURL: API, adapter: fakeAdapter().adapter })
  const detach = client().attach(http, { attachTo: [API] })
  detach()
  expect(() => client().attach(http, { attachTo: [API] })).not.toThrow()
})
