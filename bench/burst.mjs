// Benchmark 2, one run (bench/run.mjs starts several, each in a fresh process): N concurrent
// requests meet a token that no longer works, for each library and each N. Prints one JSON
// line with, per library and N: refresh calls, reuse detections, requests fulfilled /
// rejected / hung (not settled within 30 s), and the time from the first refresh
// response reaching the client to the last request settling.
//
//   node bench/burst.mjs <mode> <transport> <sizes> [run]
//   mode:      expired   the token is past its `exp` on every clock: the session was
//                        signed in normally (expiresIn 1800 s), then the wall clock jumps
//                        31 minutes (a sleeping laptop); the server rejects the token too
//              rejected  the server rejects a token the client still believes valid
//                        (`expireAccessTokens()`: revocation, key rotation, a client clock
//                        running late): a burst of 401s
//   transport: inprocess (the custom adapter) | loopback (the real token server, in a
//              process of its own; `rejected` mode only: its clock is not virtual)

import { createBackend } from './backend.mjs'
import { advance, installVirtualClock } from './clock.mjs'
import { startServer } from './remote.mjs'
import { settleAll } from './stats.mjs'
import { AAR_NO_DEDUP, createSubject, LIBRARIES } from './subjects.mjs'

const [mode = 'expired', transport = 'inprocess', sizesArg = '10,100', runArg = '0'] =
  process.argv.slice(2)
const sizes = sizesArg.split(',').map(Number)
const run = Number(runArg)
const libraries = [...LIBRARIES, AAR_NO_DEDUP]
const HUNG_AFTER_MS = 30_000

installVirtualClock()
if (transport === 'loopback' && mode !== 'rejected') throw new Error('loopback: rejected only')
const server = transport === 'loopback' ? await startServer() : undefined

async function world() {
  if (transport === 'inprocess') {
    const backend = createBackend()
    return {
      baseURL: 'http://api.test',
      adapter: backend.adapter,
      refreshUrl: 'http://api.test/auth/refresh',
      login: () => backend.login(),
      expireAccessTokens: () => backend.expireAccessTokens(),
      counters: () => backend.counters,
      close: async () => undefined,
    }
  }
  await server.resetCounters()
  return {
    baseURL: server.url,
    refreshUrl: `${server.url}/auth/refresh`,
    login: () => server.login(),
    expireAccessTokens: () => server.expireAccessTokens(),
    counters: () => server.counters(),
    close: async () => undefined,
  }
}

async function burst(name, n) {
  const w = await world()
  let answeredAt = 0
  const subject = createSubject(name, {
    baseURL: w.baseURL,
    adapter: w.adapter,
    refreshUrl: w.refreshUrl,
    onRefreshAnswered: () => {
      answeredAt ||= performance.now()
    },
  })
  await subject.signIn(await w.login())
  if (mode === 'expired') advance(31 * 60_000)
  else await w.expireAccessTokens()

  const started = performance.now()
  const outcome = await settleAll(
    Array.from({ length: n }, (_, i) => subject.http.get(`/api/resource?i=${i}`)),
    HUNG_AFTER_MS,
  )
  const { refreshCalls, reuseDetections, unauthorized } = await w.counters()
  const result = {
    lib: name,
    n,
    refreshCalls,
    reuseDetections,
    unauthorized,
    fulfilled: outcome.fulfilled,
    rejected: outcome.rejected,
    hung: outcome.hung,
    errors: outcome.errors,
    totalMs: (outcome.hung ? performance.now() : outcome.lastAt) - started,
    afterRefreshMs: answeredAt && !outcome.hung ? outcome.lastAt - answeredAt : null,
    pending: subject.pending(),
  }
  await subject.dispose()
  await w.close()
  return result
}

// axios-jwt cannot recover from a 401 burst at any N (it never looks at 401s); past N = 100
// it would only spend the time budget failing the same way.
const skip = (name, n) => mode === 'rejected' && name === 'axios-jwt' && n > 100

const results = []
for (const [i, n] of sizes.entries()) {
  // Rotate the order so no library always runs first (cold) or last.
  for (let k = 0; k < libraries.length; k += 1) {
    const name = libraries[(run + i + k) % libraries.length]
    if (!skip(name, n)) results.push(await burst(name, n))
  }
}
await server?.close()
console.log(JSON.stringify({ mode, transport, results }))
