// `npm run bench` (after the build): runs every benchmark, each run in a fresh Node process,
// and writes BENCHMARKS.md at the repository root. Progress goes to stderr.
//
// Environment: BENCH_RUNS=<n> runs per timed benchmark (default 5 for the overhead, 3 for
// the others); BENCH_QUICK=1 for a smoke run (fewer runs, smaller workloads: the figures are
// then not worth publishing, and the report says so).

import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { renderReport } from './report.mjs'
import { measureSizes } from './size.mjs'
import { LIBRARIES } from './subjects.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const quick = process.env.BENCH_QUICK === '1'
const runsOf = (fallback) => Number(process.env.BENCH_RUNS ?? (quick ? 1 : fallback))
const RUNS = {
  overhead: runsOf(5),
  burst: runsOf(3),
  late401: runsOf(3),
  memory: runsOf(3),
  dpop: runsOf(3),
}
// The expired-token burst goes up to 40 000 requests: large enough that per-request work that
// grows with the queue (O(N) per request, O(N²) per burst) shows, small enough for 2 cores.
const SIZES = { expired: [10, 100, 1000, 10_000, 40_000], rejected: [10, 100, 1000] }
const quickEnv = quick
  ? {
      BENCH_OVERHEAD_ROUNDS: '3',
      BENCH_OVERHEAD_REQUESTS: '500',
      BENCH_MEMORY_REQUESTS: '10000',
      BENCH_MEMORY_CYCLES: '100',
      BENCH_DPOP_ROUNDS: '3',
      BENCH_DPOP_OPS: '200',
    }
  : {}

const CHILD_TIMEOUT_MS = 5 * 60_000
const log = (message) => process.stderr.write(`bench: ${message}\n`)
const startedAt = new Date()
const t0 = performance.now()
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`

/** Runs `node [nodeArgs] file args` and parses the last line of its stdout as JSON. */
function node(file, args = [], nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, here(file), ...args.map(String)], {
      cwd: root,
      env: { ...process.env, ...quickEnv },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    // A safety net: no benchmark process may outlive this bound.
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS)
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      const last = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0) {
        return reject(new Error(`${file} ${args.join(' ')} exited with ${code ?? signal}`))
      }
      try {
        resolve(JSON.parse(last))
      } catch {
        reject(new Error(`${file} ${args.join(' ')} printed no JSON: ${last.slice(0, 200)}`))
      }
    })
  })
}

/** Runs the thunks with at most `limit` at a time, keeping their order in the result. */
async function pool(thunks, limit) {
  const results = new Array(thunks.length)
  let next = 0
  const worker = async () => {
    while (next < thunks.length) {
      const i = next++
      results[i] = await thunks[i]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, thunks.length) }, worker))
  return results
}

function version(name) {
  const file = new URL(`../node_modules/${name}/package.json`, import.meta.url)
  return JSON.parse(readFileSync(file, 'utf8')).version
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  ramBytes: os.totalmem(),
  node: process.version,
  os: `${os.type()} ${os.release()} (${os.arch()})`,
  loadBefore: os.loadavg(),
}
const self = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
const versions = {
  'auth-machine': self.version,
  commit: git(['rev-parse', '--short', 'HEAD']),
  dirty: git(['status', '--porcelain', '--', 'src', 'machines']) !== '',
  axios: version('axios'),
  xstate: version('xstate'),
  'axios-auth-refresh': version('axios-auth-refresh'),
  'axios-jwt': version('axios-jwt'),
  ky: version('ky'),
  redis: version('redis'),
  jose: version('jose'),
  oauth4webapi: version('oauth4webapi'),
}

log(`1/7 overhead per request: ${RUNS.overhead} runs`)
const overhead = []
for (let run = 0; run < RUNS.overhead; run += 1) {
  // One process per transport (see overhead.mjs); a run's figures are the two together.
  const axios = await node('overhead.mjs', ['axios'])
  const fetch = await node('overhead.mjs', ['fetch'])
  overhead.push({
    rps: { ...axios.rps, ...fetch.rps },
    requests: axios.requests,
    kyRequests: fetch.kyRequests,
    unauthorized: axios.unauthorized + fetch.unauthorized,
    refreshCalls: axios.refreshCalls + fetch.refreshCalls,
  })
  log(`  run ${run + 1}/${RUNS.overhead} done (${elapsed()})`)
}

log(`2/7 bursts: ${RUNS.burst} runs of each kind`)
const expiredSizes = quick ? [10, 100, 1000] : SIZES.expired
const bursts = { expired: [], rejected: [] }
for (let run = 0; run < RUNS.burst; run += 1) {
  // --expose-gc: a full collection before every burst, so none pays for the previous one's
  // garbage.
  const gc = ['--expose-gc']
  bursts.expired.push(await node('burst.mjs', ['expired', 'inprocess', expiredSizes, run], gc))
  bursts.rejected.push(await node('burst.mjs', ['rejected', 'loopback', SIZES.rejected, run], gc))
  log(`  run ${run + 1}/${RUNS.burst} done (${elapsed()})`)
}

log(`3/7 late 401: ${RUNS.late401} runs`)
const late401 = []
for (let run = 0; run < RUNS.late401; run += 1) late401.push(await node('late401.mjs', [run]))
log(`  done (${elapsed()})`)

log(`4/7 memory: ${RUNS.memory} fresh processes per library, 2 at a time`)
const memory = await pool(
  Array.from({ length: RUNS.memory }).flatMap(() =>
    LIBRARIES.map((lib) => () => node('memory.mjs', [lib], ['--expose-gc'])),
  ),
  Math.min(2, os.cpus().length),
)
log(`  done (${elapsed()})`)

log('5/7 size')
const size = await measureSizes()
const gz = (row) => `${row.gzipped} B min+gzip (${row.minified} B min)`
for (const row of size.rows) log(`  ${row.id ?? row.lib}: ${gz(row)}`)
log(`  axios adapter (main − fetch): ${gz(size.adapter)}`)
log(`  core + fetch, largest modules (minified bytes):`)
for (const m of size.topModules) log(`    ${String(m.bytes).padStart(6)}  ${m.path}`)

log('6/7 Redis coordination: one run (its own redis-server; fails if none is installed)')
const redis = await node('redis.mjs')
log(`  done (${elapsed()})`)

log(`7/7 DPoP cost per proof and per request: ${RUNS.dpop} runs`)
const dpop = []
for (let run = 0; run < RUNS.dpop; run += 1) dpop.push(await node('dpop.mjs'))
log(`  done (${elapsed()})`)

machine.loadAfter = os.loadavg()
const durationSeconds = (performance.now() - t0) / 1000
const markdown = renderReport({
  quick,
  startedAt,
  durationSeconds,
  machine,
  versions: { ...versions, esbuild: size.esbuild },
  runs: RUNS,
  overhead,
  bursts,
  late401,
  memory,
  size,
  redis,
  dpop,
})
writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), markdown)
log(`wrote BENCHMARKS.md in ${elapsed()}`)
