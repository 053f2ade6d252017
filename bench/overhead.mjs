// Benchmark 1, one run of one transport (bench/run.mjs starts several, each in a fresh
// process): requests per second on a valid token, in-process, through bare axios and each
// axios library, or through bare fetch, `auth.fetch` and ky. Every axios subject has its own
// axios instance on the in-process backend's adapter; every fetch subject calls the backend's
// in-process `fetch` (fetch without the network: see bench/backend.mjs). Rounds interleave the
// subjects in a rotating order, so drift and background load hit all of them alike; a
// subject's figure for this run is the median of its rounds. Prints one JSON line.
//
//   node bench/overhead.mjs [axios|fetch]

import { createBackend } from './backend.mjs'
import { FETCH_SUBJECTS, installFetch, KY } from './fetchSubjects.mjs'
import { median } from './stats.mjs'
import { createSubject, SUBJECTS } from './subjects.mjs'

const ROUNDS = Number(process.env.BENCH_OVERHEAD_ROUNDS ?? 20)
const PER_ROUND = Number(process.env.BENCH_OVERHEAD_REQUESTS ?? 1000)
const WARMUP = 2000
// One transport per process: the fetch subjects leave far more garbage (streams, abort
// signals) than the axios ones, and whichever subject ran next would pay for it.
const world = process.argv[2] ?? 'axios'
const NAMES = world === 'fetch' ? FETCH_SUBJECTS : SUBJECTS
// ky runs several times slower than bare fetch in-process: a fifth of the requests per
// round keeps its share of the run's time near the others' (the figure is a rate either way).
const perRound = (name) => (name === KY ? Math.ceil(PER_ROUND / 5) : PER_ROUND)

const backend = createBackend()
if (world === 'fetch') installFetch(backend.fetch)
const subjects = NAMES.map((name) =>
  createSubject(name, {
    baseURL: 'http://api.test',
    adapter: backend.adapter,
    fetch: backend.fetch,
    refreshUrl: 'http://api.test/auth/refresh',
  }),
)
for (const subject of subjects) await subject.signIn(backend.login())

/** Sequential requests, each awaited: requests per second. */
async function measure(subject, count) {
  const started = performance.now()
  for (let i = 0; i < count; i += 1) await subject.get('/api/resource')
  return count / ((performance.now() - started) / 1000)
}

for (const subject of subjects) await measure(subject, WARMUP)
backend.resetCounters()

// The order rotates, and runs backwards every other round, so that no subject always follows
// the same one (and pays for the garbage it left).
const samples = Object.fromEntries(NAMES.map((name) => [name, []]))
for (let round = 0; round < ROUNDS; round += 1) {
  for (let k = 0; k < subjects.length; k += 1) {
    const step = round % 2 === 0 ? k : subjects.length - 1 - k
    const subject = subjects[(round + step) % subjects.length]
    samples[subject.name].push(await measure(subject, perRound(subject.name)))
  }
}

const rps = Object.fromEntries(NAMES.map((name) => [name, median(samples[name])]))
for (const subject of subjects) await subject.dispose()
console.log(
  JSON.stringify({
    rps,
    requests: ROUNDS * PER_ROUND,
    kyRequests: ROUNDS * perRound(KY),
    unauthorized: backend.counters.unauthorized,
    refreshCalls: backend.counters.refreshCalls,
  }),
)
