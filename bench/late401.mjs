// Benchmark 3, one run (bench/run.mjs starts several): the late 401. On loopback against the
// real token server (its own process; rotation and reuse detection on), for each library:
//
//   1. sign in; GET /api/slow goes out with token A and the server holds it
//   2. the server expires every access token issued so far (A)
//   3. 5 concurrent GET /api/resource: 401, one refresh, token B, replayed
//   4. the held request is released: the server answers it 401 (A), after the refresh
//   5. one more GET /api/resource: is the session still alive?
//
// Goal: 1 refresh call, 0 reuse detections, every request fulfilled. axios-jwt never looks
// at 401s; it refreshes when the token's `exp` is within its 10 s leeway, so for it step 3
// waits until that is true of A (the server's lifetime is 12 s, so at most ~2 s).
// Prints one JSON line.
//
//   node bench/late401.mjs [run]

import { startServer } from './remote.mjs'
import { settleAll } from './stats.mjs'
import { AAR_NO_DEDUP, createSubject, LIBRARIES } from './subjects.mjs'

const run = Number(process.argv[2] ?? 0)
const libraries = [...LIBRARIES, AAR_NO_DEDUP]
const BOUND_MS = 15_000
const ACCESS_TTL = 12
const JWT_LEEWAY_S = 10

const server = await startServer({ accessTokenTtl: ACCESS_TTL })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const expOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).exp

async function scenario(name) {
  await server.resetCounters()
  const subject = createSubject(name, {
    baseURL: server.url,
    refreshUrl: `${server.url}/auth/refresh`,
  })
  const tokens = await server.login()
  await subject.signIn(tokens)

  const hold = await server.hold('/api/slow')
  const late = settleAll([subject.http.get('/api/slow')], BOUND_MS)
  await hold.untilWaiting(1)
  await server.expireAccessTokens()
  if (name === 'axios-jwt') {
    await sleep(Math.max(0, (expOf(tokens.accessToken) - JWT_LEEWAY_S) * 1000 - Date.now() + 50))
  }

  const fresh = await settleAll(
    Array.from({ length: 5 }, () => subject.http.get('/api/resource')),
    BOUND_MS,
  )
  const before = await server.counters()
  await hold.release()
  const lateOutcome = await late
  const after = await server.counters()
  const alive = await settleAll([subject.http.get('/api/resource')], BOUND_MS)
  const final = await server.counters()
  await subject.dispose()

  const outcome = (o) => (o.fulfilled ? 'ok' : o.hung ? 'hung' : `failed (${o.errors.join(', ')})`)
  return {
    lib: name,
    refreshCalls: final.refreshCalls,
    refreshesFromLate401: after.refreshCalls - before.refreshCalls,
    reuseDetections: final.reuseDetections,
    freshFailed: fresh.rejected + fresh.hung,
    late: outcome(lateOutcome),
    failed: fresh.rejected + fresh.hung + lateOutcome.rejected + lateOutcome.hung,
    sessionAlive: alive.fulfilled === 1,
  }
}

const results = []
for (let k = 0; k < libraries.length; k += 1) {
  results.push(await scenario(libraries[(run + k) % libraries.length]))
}
await server.close()
console.log(JSON.stringify({ results }))
