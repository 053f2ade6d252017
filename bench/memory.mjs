// Benchmark 4, one library in a fresh process: retained heap after 100 000 requests and
// 1 000 refresh cycles, in-process, GC forced. Needs `node --expose-gc`.
//
//   node --expose-gc bench/memory.mjs <library>
//
// A refresh cycle is 10 concurrent requests after the token stopped working. Even cycles:
// the wall clock jumps 31 minutes (virtual clock: the token is past its `exp` everywhere).
// Odd cycles: the server rejects the token (401s), except for axios-jwt, which has no 401
// handling and gets a clock jump every cycle. The heap is measured after a warm-up (same
// mix, smaller: code that is compiled late is not a leak), after the requests and at the
// end, each time after forced full collections.

import { createBackend } from './backend.mjs'
import { advance, installVirtualClock } from './clock.mjs'
import { settleAll } from './stats.mjs'
import { createSubject } from './subjects.mjs'

const name = process.argv[2]
const REQUESTS = Number(process.env.BENCH_MEMORY_REQUESTS ?? 100_000)
const CYCLES = Number(process.env.BENCH_MEMORY_CYCLES ?? 1_000)
const BATCH = 100
const PER_CYCLE = 10

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
installVirtualClock()

const backend = createBackend()
const subject = createSubject(name, {
  baseURL: 'http://api.test',
  adapter: backend.adapter,
  refreshUrl: 'http://api.test/auth/refresh',
})
await subject.signIn(backend.login())

const tally = { fulfilled: 0, failed: 0 }
async function requests(count) {
  for (let done = 0; done < count; done += BATCH) {
    const size = Math.min(BATCH, count - done)
    const outcome = await settleAll(
      Array.from({ length: size }, () => subject.http.get('/api/resource')),
      10_000,
    )
    tally.fulfilled += outcome.fulfilled
    tally.failed += outcome.rejected + outcome.hung
  }
}
async function cycles(count, offset = 0) {
  for (let i = 0; i < count; i += 1) {
    if ((offset + i) % 2 === 0 || name === 'axios-jwt') advance(31 * 60_000)
    else backend.expireAccessTokens()
    await requests(PER_CYCLE)
  }
}
async function collect() {
  for (let i = 0; i < 6; i += 1) {
    globalThis.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
const listeners = () => {
  // auth-machine only: subscribers and `on()` handlers of the actor.
  const actor = subject.auth?.actor
  if (!actor) return null
  let count = actor.observers?.size ?? 0
  for (const set of actor.eventListeners?.values() ?? []) count += set.size
  return count
}

const WARMUP_CYCLES = 200
await requests(10_000)
await cycles(WARMUP_CYCLES)
const before = {
  heap: await collect(),
  timers: timers(),
  interceptors: subject.interceptors(),
  listeners: listeners(),
}
const refreshesBefore = backend.counters.refreshCalls
const tallyBefore = { ...tally }

const started = performance.now()
await requests(REQUESTS)
const afterRequests = await collect()
await cycles(CYCLES, WARMUP_CYCLES)
const seconds = (performance.now() - started) / 1000

const after = {
  heap: await collect(),
  timers: timers(),
  interceptors: subject.interceptors(),
  listeners: listeners(),
}
console.log(
  JSON.stringify({
    lib: name,
    growthBytes: after.heap - before.heap,
    growthRequestsBytes: afterRequests - before.heap,
    growthCyclesBytes: after.heap - afterRequests,
    heapBefore: before.heap,
    heapAfter: after.heap,
    requests: tally.fulfilled + tally.failed - tallyBefore.fulfilled - tallyBefore.failed,
    failed: tally.failed - tallyBefore.failed,
    refreshCalls: backend.counters.refreshCalls - refreshesBefore,
    pending: subject.pending(),
    timers: [before.timers, after.timers],
    interceptors: [before.interceptors, after.interceptors],
    listeners: [before.listeners, after.listeners],
    seconds,
  }),
)
await subject.dispose()
