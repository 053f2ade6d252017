import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import {
  createManualClock,
  createTestAuthServer,
  type TestAuthServer,
} from '../../src/testing/index.js'
import { refreshAt, signInAt } from '../helpers.js'

// One session for several HTTP clients: axios instances attached with `auth.attach` and
// `auth.fetch` share one refresh, while each instance keeps its own allow-list.

let auth: AuthClient | undefined
const servers: TestAuthServer[] = []
afterEach(async () => {
  auth?.dispose()
  auth = undefined
  for (const server of servers.splice(0)) await server.close()
})

async function setup() {
  const clock = createManualClock(Date.now())
  const api = await createTestAuthServer({ now: clock.now })
  const other = await createTestAuthServer({ now: clock.now })
  servers.push(api, other)
  const warnings: string[] = []
  auth = createAuthClient({
    refresh: refreshAt(api.url),
    clock,
    onWarning: (message) => warnings.push(message),
  })
  auth.login(await signInAt(api.url))
  return { api, other, auth, warnings }
}

const interceptors = (http: ReturnType<typeof axios.create>) =>
  http.interceptors.request.handlers?.filter(Boolean).length ?? 0

describe('auth.attach', () => {
  it('two axios instances and auth.fetch share one refresh for a burst on an expired token', async () => {
    const { api, auth } = await setup()
    const first = axios.create({ baseURL: api.url })
    const second = axios.create({ baseURL: `${api.url}/api` })
    auth.attach(first)
    auth.attach(second)
    api.expireAccessTokens()
    const statuses = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => first.get(`/api/a${i}`).then((r) => r.status)),
      ...Array.from({ length: 10 }, (_, i) => second.get(`/b${i}`).then((r) => r.status)),
      ...Array.from({ length: 10 }, (_, i) =>
        auth.fetch(`${api.url}/api/c${i}`).then((r) => r.status),
      ),
    ])
    // auth.fetch has no origin by default in Node: its requests went without a token.
    expect(statuses).toEqual([...Array(20).fill(200), ...Array(10).fill(401)])
    expect(api.counters.refreshCalls).toBe(1)
  })

  it("each instance's default attachTo is its own baseURL's origin", async () => {
    const { api, other, auth, warnings } = await setup()
    const toApi = axios.create({ baseURL: api.url })
    const toOther = axios.create({ baseURL: other.url })
    auth.attach(toApi)
    auth.attach(toOther)
    await toApi.get('/public')
    await toOther.get('/public')
    // An absolute URL to the other origin, through the first instance: no token.
    await toApi.get(`${other.url}/public`)
    const [viaOther, viaApi] = other.requests
    expect(api.requests.at(-1)?.authorization).toMatch(/^Bearer /)
    expect(viaOther?.authorization).toMatch(/^Bearer /)
    expect(viaApi?.authorization).toBeUndefined()
    expect(warnings).toEqual([])
  })

  it('the client attachTo, or the attach option, overrides the instance default', async () => {
    const { api, other, auth } = await setup()
    const http = axios.create({ baseURL: other.url })
    auth.attach(http, { attachTo: [api.url] })
    await http.get('/public')
    await http.get(`${api.url}/public`)
    expect(other.requests.at(-1)?.authorization).toBeUndefined()
    expect(api.requests.at(-1)?.authorization).toMatch(/^Bearer /)
  })

  it('warns when an instance has no origin to default to', async () => {
    const { auth, warnings } = await setup()
    auth.attach(axios.create())
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/attachTo/)
  })

  it('detach() ejects the interceptors once; attaching twice throws; dispose detaches all', async () => {
    const { api, auth } = await setup()
    const http = axios.create({ baseURL: api.url })
    const before = interceptors(http)
    const transformers = http.defaults.transformRequest
    const detach = auth.attach(http)
    expect(() => auth.attach(http)).toThrow(/already attached/)
    expect(interceptors(http)).toBe(before + 1)
    detach()
    detach()
    expect(interceptors(http)).toBe(before)
    expect(http.defaults.transformRequest).toBe(transformers)
    await http.get('/public')
    expect(api.requests.at(-1)?.authorization).toBeUndefined()
    auth.attach(http)
    auth.dispose()
    expect(interceptors(http)).toBe(before)
  })

  it('the http option is attach(http), and its baseURL joins the default origins of auth.fetch', async () => {
    const clock = createManualClock(Date.now())
    const api = await createTestAuthServer({ now: clock.now })
    servers.push(api)
    const http = axios.create({ baseURL: api.url })
    auth = createAuthClient({ refresh: refreshAt(api.url), http, clock })
    auth.login(await signInAt(api.url))
    expect(() => auth?.attach(http)).toThrow(/already attached/)
    await auth.fetch(`${api.url}/public`)
    expect(api.requests.at(-1)?.authorization).toMatch(/^Bearer /)
  })
})
