// Benchmark 1, one run (bench/run.mjs starts several, each in a fresh process): requests per
// second on a valid token, in-process, through bare axios and each library. Every subject has
// its own axios instance on the same in-process backend. Rounds interleave the subjects in a
// rotating order, so drift and background load hit all of them alike; a subject's figure
// for this run is the median of its rounds. Prints one JSON line.

import { createBackend } from './backend.mjs'
import { median } from './stats.mjs'
import { createSubject, SUBJECTS } from './subjects.mjs'

const ROUNDS = Number(process.env.BENCH_OVERHEAD_ROUNDS ?? 8)
const PER_ROUND = Number(process.env.BENCH_OVERHEAD_REQUESTS ?? 1000)
const WARMUP = 2000

const backend = createBackend()
const subjects = SUBJECTS.map((name) =>
  createSubject(name, {
    baseURL: 'http://api.test',
    adapter: backend.adapter,
    refreshUrl: 'http://api.test/auth/refresh',
  }),
)
for (const subject of subjects) await subject.signIn(backend.login())

/** Sequential requests, each awaited: requests per second. */
async function measure(subject, count) {
  const { http } = subject
  const started = performance.now()
  for (let i = 0; i < count; i += 1) await http.get('/api/resource')
  return count / ((performance.now() - started) / 1000)
}

for (const subject of subjects) await measure(subject, WARMUP)
backend.resetCounters()

const samples = Object.fromEntries(SUBJECTS.map((name) => [name, []]))
for (let round = 0; round < ROUNDS; round += 1) {
  for (let k = 0; k < subjects.length; k += 1) {
    const subject = subjects[(round + k) % subjects.length]
    samples[subject.name].push(await measure(subject, PER_ROUND))
  }
}

const rps = Object.fromEntries(SUBJECTS.map((name) => [name, median(samples[name])]))
for (const subject of subjects) await subject.dispose()
console.log(
  JSON.stringify({
    rps,
    requests: ROUNDS * PER_ROUND,
    unauthorized: backend.counters.unauthorized,
    refreshCalls: backend.counters.refreshCalls,
  }),
)
