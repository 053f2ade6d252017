// Benchmark 2, one run (bench/run.mjs starts several, each in a fresh process): N concurrent
// requests meet a token that no longer works, for each library and each N. Prints one JSON
// line with, per library and N: refresh calls, reuse detections, requests fulfilled /
// rejected / hung (not settled within 30 s), and three times:
//
//   totalMs          the whole burst: from firing the first request to the last of the N
//                    settling. This is the headline figure: it includes the work each
//                    library does per request while the refresh is outstanding (queueing,
//                    or sending and taking back a 401), not only the release afterwards.
//   beforeRefreshMs  from firing the first request to the first refresh response reaching
//                    the client (in-process: the refresh is answered on the next macrotask,
//                    so it is held until every request of the burst has been queued)
//   afterRefreshMs   from that refresh response to the last request settling
//
// `bare` (plain axios, a valid token set by hand, no refresh at all) runs the same N requests
// in the same process: the floor every axios ratio is taken against. In-process, the fetch
// subjects run too (`auth.fetch`, ky with its README's refresh recipe), over the same
// backend's in-process `fetch`, with bare `fetch` as their floor.
//
//   node [--expose-gc] bench/burst.mjs <mode> <transport> <sizes> [run]
//   mode:      expired   the token is past its `exp` on every clock: the session was
//                        signed in normally (expiresIn 1800 s), then the wall clock jumps
//                        31 minutes (a sleeping laptop); the server rejects the token too
//              rejected  the server rejects a token the client still believes valid
//                        (`expireAccessTokens()`: revocation, key rotation, a client clock
//                        running late): a burst of 401s
//   transport: inprocess (the custom adapter) | loopback (the real token server, in a
//              process of its own; `rejected` mode only: its clock is not virtual)
//
// With --expose-gc a full collection runs before every burst, so that no burst pays for the
// garbage of the one before it. Environment: BENCH_BURST_PEER_BUDGET_MS (default 15 000): a
// peer whose time at the previous N, scaled linearly, would exceed this budget is not run at
// the larger N (reported as capped); auth-machine and the baselines are never capped.

import { createBackend } from './backend.mjs'
import { advance, installVirtualClock } from './clock.mjs'
import { AUTH_FETCH, BARE_FETCH, FETCH_SUBJECTS, installFetch } from './fetchSubjects.mjs'
import { startServer } from './remote.mjs'
import { settleAll } from './stats.mjs'
import { AAR_NO_DEDUP, createSubject, LIBRARIES } from './subjects.mjs'

const [mode = 'expired', transport = 'inprocess', sizesArg = '10,100', runArg = '0'] =
  process.argv.slice(2)
const sizes = sizesArg.split(',').map(Number)
const run = Number(runArg)
// The fetch subjects need the in-process `fetch`: loopback bursts are axios only.
const subjects = [
  'bare',
  ...LIBRARIES,
  AAR_NO_DEDUP,
  ...(transport === 'inprocess' ? FETCH_SUBJECTS : []),
]
const NEVER_CAPPED = new Set(['bare', 'auth-machine', BARE_FETCH, AUTH_FETCH])
const HUNG_AFTER_MS = 30_000
const PEER_BUDGET_MS = Number(process.env.BENCH_BURST_PEER_BUDGET_MS ?? 15_000)
const WARM_UP_N = 100
const collect = typeof globalThis.gc === 'function' ? () => globalThis.gc() : () => undefined

installVirtualClock()
if (transport === 'loopback' && mode !== 'rejected') throw new Error('loopback: rejected only')
const server = transport === 'loopback' ? await startServer() : undefined

async function world() {
  if (transport === 'inprocess') {
    const backend = createBackend()
    installFetch(backend.fetch)
    return {
      baseURL: 'http://api.test',
      adapter: backend.adapter,
      fetch: backend.fetch,
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
  let queuedAtAnswer = null
  const subject = createSubject(name, {
    baseURL: w.baseURL,
    adapter: w.adapter,
    fetch: w.fetch,
    refreshUrl: w.refreshUrl,
    onRefreshAnswered: () => {
      if (answeredAt) return
      answeredAt = performance.now()
      queuedAtAnswer = subject.pending()
    },
  })
  await subject.signIn(await w.login())
  // The baselines keep their valid token: the same N requests without any refresh.
  if (name !== 'bare' && name !== BARE_FETCH) {
    if (mode === 'expired') advance(31 * 60_000)
    else await w.expireAccessTokens()
  }

  collect()
  const started = performance.now()
  const outcome = await settleAll(
    Array.from({ length: n }, (_, i) => subject.get(`/api/resource?i=${i}`)),
    HUNG_AFTER_MS,
  )
  const { refreshCalls, reuseDetections, unauthorized } = await w.counters()
  const settled = !outcome.hung
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
    totalMs: (settled ? outcome.lastAt : performance.now()) - started,
    beforeRefreshMs: answeredAt ? answeredAt - started : null,
    afterRefreshMs: answeredAt && settled ? outcome.lastAt - answeredAt : null,
    queuedAtAnswer,
    pending: subject.pending(),
  }
  await subject.dispose()
  await w.close()
  return result
}

// Fixed caps, with the reason the report prints. axios-jwt cannot recover from a 401 burst
// at any N (it never looks at 401s); past N = 100 it would only spend the time budget
// failing the same way.
function fixedCap(name, n) {
  if (mode === 'rejected' && name === 'axios-jwt' && n > 100) {
    return 'never handles a 401, fails the same way at any N'
  }
  return undefined
}

// One unmeasured small burst per subject first, so that N = 10 does not measure whichever
// library happens to load and compile its code first (each burst starts from fresh counters).
for (const name of subjects) await burst(name, WARM_UP_N)

const results = []
const capped = []
/** The last figure of each subject, to extrapolate the next N from. */
const lastTotal = new Map()
for (const [i, n] of sizes.entries()) {
  // Rotate the order so no library always runs first (cold) or last.
  for (let k = 0; k < subjects.length; k += 1) {
    const name = subjects[(run + i + k) % subjects.length]
    let reason = fixedCap(name, n)
    const last = lastTotal.get(name)
    if (!reason && last && !NEVER_CAPPED.has(name)) {
      const projected = (last.totalMs * n) / last.n
      if (projected > PEER_BUDGET_MS) {
        reason = `${Math.round(last.totalMs)} ms at N = ${last.n}, so ~${Math.round(projected / 1000)} s or more at N = ${n} (budget ${PEER_BUDGET_MS / 1000} s)`
      }
    }
    if (reason) {
      capped.push({ lib: name, n, reason })
      continue
    }
    const result = await burst(name, n)
    lastTotal.set(name, result)
    results.push(result)
  }
}
await server?.close()
console.log(JSON.stringify({ mode, transport, run, results, capped }))
