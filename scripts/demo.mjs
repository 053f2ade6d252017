// Terminal demo: a real token server on loopback, one client, concurrent requests across
// several expiries and faults. Prints every state transition and the server's counters.
// Uses only the published entry points, as an app would.

import { createAuthClient } from 'auth-machine'
import { createTestAuthServer } from 'auth-machine/testing'
import axios from 'axios'

const color = process.stdout.isTTY
  ? { dim: (s) => `\x1b[2m${s}\x1b[0m`, bold: (s) => `\x1b[1m${s}\x1b[0m` }
  : { dim: (s) => s, bold: (s) => s }

const server = await createTestAuthServer({ accessTokenTtl: 4 })
const http = axios.create({ baseURL: server.url })
const auth = createAuthClient({
  http,
  refreshMargin: 1000,
  refreshTimeout: 800,
  retry: { retries: 2, baseDelay: 100, maxDelay: 400 },
  refresh: async (session, { signal }) => {
    const { data } = await axios.post(
      `${server.url}/auth/refresh`,
      { refreshToken: session.refreshToken },
      { signal, timeout: 5000 },
    )
    return data
  },
})

const started = Date.now()
const stamp = () => color.dim(`${String(Date.now() - started).padStart(5)}ms`)
const stateName = (value) =>
  typeof value === 'string'
    ? value
    : Object.entries(value)
        .map(([k, v]) => `${k}.${stateName(v)}`)
        .join()
let last = ''
auth.actor.subscribe((snapshot) => {
  const name = stateName(snapshot.value)
  if (name === last) return
  const queue = snapshot.context.queue.length
  console.log(
    `${stamp()}  ${last || '(start)'} → ${color.bold(name)}  gen ${snapshot.context.generation}${queue ? `, ${queue} queued` : ''}`,
  )
  last = name
})
auth.actor.on('sessionExpired', () => console.log(`${stamp()}  event: sessionExpired`))

const expected = { refreshes: 0 }
const counters = () => {
  const c = server.counters
  return `refresh calls ${c.refreshCalls}, successes ${c.refreshSuccesses}, 401s ${c.unauthorized}, reuse detections ${c.reuseDetections}`
}
async function fire(n, path = '/api/resource') {
  const results = await Promise.allSettled(Array.from({ length: n }, () => http.get(path)))
  const ok = results.filter((r) => r.status === 'fulfilled').length
  const errors = [
    ...new Set(results.filter((r) => r.status === 'rejected').map((r) => r.reason.name)),
  ]
  return `${ok}/${n} ok${errors.length ? `, rejected with ${errors.join(', ')}` : ''}`
}
async function step(title, run, refreshes) {
  console.log(`\n${color.bold(`▶ ${title}`)}`)
  const outcome = await run()
  expected.refreshes += refreshes
  console.log(`${stamp()}  ${outcome}`)
  console.log(`${stamp()}  server: ${counters()}`)
}
const login = async () => {
  const { data } = await axios.post(`${server.url}/auth/login`, {
    username: 'ada',
    password: 'secret',
  })
  auth.login(data)
}
const until = (predicate) => server.waitFor(predicate)

console.log(`token server on ${server.url} (access tokens live 4 s, refresh 1 s before expiry)`)
await step(
  'sign in, 20 concurrent requests',
  async () => {
    await login()
    return fire(20)
  },
  0,
)
await step(
  'server expires every access token; 100 concurrent requests',
  async () => {
    server.expireAccessTokens()
    return fire(100)
  },
  1,
)
await step(
  'wait for the proactive refresh (no request fails)',
  async () => {
    const before = server.counters.refreshSuccesses
    await until((s) => s.counters.refreshSuccesses === before + 1)
    return fire(10)
  },
  1,
)
await step(
  'a 401 that arrives after the refresh finished',
  async () => {
    const hold = server.hold('/api/slow')
    const late = http.get('/api/slow')
    await hold.untilWaiting(1)
    server.expireAccessTokens()
    const fresh = await fire(5)
    hold.release()
    await late
    return `${fresh}; the late 401 was replayed with the new token, no second refresh`
  },
  1,
)
await step(
  'a slow refresh: answered after the timeout, adopted by the retry',
  async () => {
    server.delay('/auth/refresh', 1000)
    server.expireAccessTokens()
    const outcome = await fire(10)
    server.clearDelays()
    return `${outcome}; one call, no reuse detection`
  },
  1,
)
await step(
  'refresh fails with 500 once, then succeeds',
  async () => {
    server.failNextRefresh(500)
    server.expireAccessTokens()
    return fire(30)
  },
  2,
)
await step(
  'refresh hangs (timeout 800 ms, 2 retries that join the same call, never spend twice)',
  async () => {
    server.failNextRefresh('hang')
    server.expireAccessTokens()
    const outcome = await fire(10)
    return `${outcome}; the session is kept, the hung call cancelled`
  },
  1,
)
await step('the network is back: the next requests refresh and succeed', () => fire(10), 1)
await step(
  'the server revokes the session: refresh rejected',
  async () => {
    server.revokeSessions()
    const outcome = await fire(10)
    return `${outcome}; ${auth.actor.getSnapshot().value === 'expired' ? 'state is expired' : 'UNEXPECTED STATE'}`
  },
  1,
)
await step(
  'sign in again, log out while a refresh is on the wire',
  async () => {
    await login()
    const hold = server.hold('/auth/refresh')
    server.expireAccessTokens()
    const pending = fire(10)
    await hold.untilWaiting(1)
    await auth.logout()
    hold.release()
    return `${await pending}; late refresh result ignored, signed out: ${(await auth.getAccessToken()) === null}`
  },
  1,
)

const { refreshCalls, reuseDetections } = server.counters
console.log(
  `\n${color.bold('summary')}: ${refreshCalls} refresh calls for ${expected.refreshes} expected, ${reuseDetections} reuse detections`,
)
auth.dispose()
await server.close()
if (refreshCalls !== expected.refreshes || reuseDetections !== 0) process.exitCode = 1
