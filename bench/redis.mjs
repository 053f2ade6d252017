// Benchmark 6 (bench/run.mjs runs it once, in a fresh process): Redis coordination, on a
// redis-server of its own (scripts/redis-server.mjs) and the real token server, all on
// 127.0.0.1.
//
//   a. Latency: the time from an expired token to the first successful protected response,
//      for an auth.fetch client without a coordinator (the refresh runs in-process) and one
//      with `redisCoordinator`, in this process, against one token server in a process of
//      its own; the added milliseconds are the coordination's cost (lock, record, publish).
//   b. Throughput: 1–16 forked processes (bench/redisWorker.mjs) share one session and send
//      requests in loops for a fixed time while the server expires every access token a few
//      times: with `redisCoordinator` on one key, and with `coordinator: false` (each process
//      refreshes alone; the server rotates refresh tokens and detects reuse, as by default).
//
// Progress and figures go to stderr; the results are the last line of stdout, as JSON. Fails
// (never skips) when redis-server is not installed.
//
//   node bench/redis.mjs            BENCH_QUICK=1: 20 refreshes, 1 s per process count
//   BENCH_REDIS_REFRESHES=<n> BENCH_REDIS_SECONDS=<s> override either

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createTestAuthServer } from 'auth-machine/testing'
import { createRedisClient } from '../scripts/redis-client.mjs'
import { startRedisServer } from '../scripts/redis-server.mjs'
import { startServer } from './remote.mjs'
import { fmt, quantile } from './stats.mjs'

const quick = process.env.BENCH_QUICK === '1'
const REFRESHES = Number(process.env.BENCH_REDIS_REFRESHES ?? (quick ? 20 : 200))
/** Unmeasured refreshes first: JIT, connection pools and the Redis connection warm up. */
const WARMUP_REFRESHES = quick ? 5 : 20
const SECONDS = Number(process.env.BENCH_REDIS_SECONDS ?? (quick ? 1 : 3))
const PROCESSES = (process.env.BENCH_REDIS_PROCESSES ?? '1,2,4,8,16').split(',').map(Number)
const EXPIRIES = 3
/** Concurrent request loops per process: the process's own single flight is exercised too. */
const LOOPS = 4
const WARMUP_REQUESTS = 50
const MESSAGE_TIMEOUT_MS = 30_000
const WORKER = fileURLToPath(new URL('./redisWorker.mjs', import.meta.url))

const log = (message) => process.stderr.write(`redis: ${message}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- a. latency

/** Expires every token, then times one request through 401, refresh and replay. */
async function timeRefresh(server, auth) {
  await server.expireAccessTokens()
  const started = performance.now()
  const res = await auth.fetch(`${server.url}/api/resource`)
  await res.arrayBuffer()
  const ms = performance.now() - started
  if (!res.ok) throw new Error(`protected request after a refresh: HTTP ${res.status}`)
  return ms
}

async function measureLatency(redis) {
  const server = await startServer()
  const subjects = {
    inProcess: createRedisClient({ serverUrl: server.url }),
    redis: createRedisClient({
      serverUrl: server.url,
      redis: { url: redis.url, key: 'bench:latency' },
    }),
  }
  const names = Object.keys(subjects)
  const samples = { inProcess: [], redis: [] }
  try {
    for (const name of names) subjects[name].login(await server.login())
    for (let i = 0; i < WARMUP_REFRESHES + REFRESHES; i += 1) {
      // Alternating order: drift and background load hit both alike.
      for (const name of i % 2 ? [...names].reverse() : names) {
        const ms = await timeRefresh(server, subjects[name])
        if (i >= WARMUP_REFRESHES) samples[name].push(ms)
      }
    }
    const { refreshCalls, reuseDetections } = await server.counters()
    const percentiles = (values) => ({ p50: quantile(values, 0.5), p99: quantile(values, 0.99) })
    return {
      refreshes: REFRESHES,
      warmup: WARMUP_REFRESHES,
      inProcess: percentiles(samples.inProcess),
      redis: percentiles(samples.redis),
      refreshCalls,
      expectedRefreshCalls: names.length * (WARMUP_REFRESHES + REFRESHES),
      reuseDetections,
    }
  } finally {
    for (const auth of Object.values(subjects)) auth.dispose()
    await server.close()
  }
}

// ---------------------------------------------------------------- b. throughput

/** Every forked process, so that none outlives this one however it ends. */
const live = new Set()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

function forkWorker(serverUrl, redisUrl, key) {
  const child = fork(WORKER, [serverUrl, redisUrl, key], {
    // stdout is this process's result channel: a worker's output goes to stderr.
    stdio: ['ignore', 2, 2, 'ipc'],
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

/** The next message of `type` from `child`; rejects when it exits first or after `ms`. */
function nextMessage(child, type, ms = MESSAGE_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message?.type === type) finish(undefined, message)
    }
    const onExit = (code, signal) => {
      finish(new Error(`worker ${child.pid} exited (${code ?? signal}) before '${type}'`))
    }
    const timer = setTimeout(() => {
      finish(new Error(`worker ${child.pid}: no '${type}' within ${ms} ms`))
    }, ms)
    const finish = (error, message) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error) reject(error)
      else resolve(message)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Forks `n` workers and resolves with them once each has its `auth.ready`. */
async function startWorkers(n, ...args) {
  const workers = Array.from({ length: n }, () => forkWorker(...args))
  const ready = await Promise.all(workers.map((w) => nextMessage(w, 'ready')))
  return { workers, states: ready.map((m) => m.state) }
}

async function login(worker, tokens) {
  const loggedIn = nextMessage(worker, 'loggedIn')
  worker.send({ type: 'login', tokens })
  await loggedIn
}

/** `<key>:record` is the shared record (see `redisCoordinator`'s `key`). */
async function untilRecorded(redis, key) {
  const deadline = performance.now() + 5_000
  while (Number(await redis.command(['EXISTS', `${key}:record`])) !== 1) {
    if (performance.now() > deadline) throw new Error(`no shared record under ${key} after 5 s`)
    await sleep(10)
  }
}

/**
 * Coordinated: the first process logs in; the others start once the shared record is written
 * and must hold the session as soon as `auth.ready` resolves. Uncoordinated: every process
 * logs in with the same tokens (one session, spread over processes that do not coordinate).
 */
async function signIn({ server, redis, n, key, coordinated }) {
  if (!coordinated) {
    const { workers } = await startWorkers(n, server.url, '-', key)
    const tokens = server.login()
    await Promise.all(workers.map((w) => login(w, tokens)))
    return workers
  }
  const { workers: first } = await startWorkers(1, server.url, redis.url, key)
  await login(first[0], server.login())
  await untilRecorded(redis, key)
  const { workers: rest, states } = await startWorkers(n - 1, server.url, redis.url, key)
  const missed = states.filter((state) => state !== 'authenticated')
  if (missed.length > 0) {
    throw new Error(`${missed.length} process(es) did not adopt the session on ready: ${missed}`)
  }
  return [...first, ...rest]
}

/** Expires every access token at evenly spaced points of the run; counters before each. */
async function expireOnSchedule(server, ms) {
  const started = performance.now()
  const marks = []
  for (let k = 0; k < EXPIRIES; k += 1) {
    await sleep(started + ((k + 0.5) * ms) / EXPIRIES - performance.now())
    marks.push({ ...server.counters })
    server.expireAccessTokens()
  }
  return marks
}

const sum = (values) => values.reduce((a, b) => a + b, 0)

function merge(buckets) {
  const merged = {}
  for (const bucket of buckets) {
    for (const [name, count] of Object.entries(bucket)) merged[name] = (merged[name] ?? 0) + count
  }
  return merged
}

async function drive(server, workers) {
  const ms = SECONDS * 1000
  await Promise.all(
    workers.map((w) => {
      const warmed = nextMessage(w, 'warmed')
      w.send({ type: 'warm', requests: WARMUP_REQUESTS })
      return warmed
    }),
  )
  server.resetCounters()
  const done = workers.map((w) => nextMessage(w, 'done', ms + MESSAGE_TIMEOUT_MS))
  for (const w of workers) w.send({ type: 'run', ms, loops: LOOPS })
  const marks = await expireOnSchedule(server, ms)
  const results = await Promise.all(done)
  marks.push({ ...server.counters })
  const between = (field) => marks.slice(1).map((mark, k) => mark[field] - marks[k][field])
  const ok = sum(results.map((r) => r.ok))
  return {
    requests: ok,
    rps: ok / SECONDS,
    expiries: EXPIRIES,
    refreshesBefore: marks[0].refreshCalls,
    refreshesPerExpiry: between('refreshCalls'),
    reusePerExpiry: between('reuseDetections'),
    refreshCalls: marks.at(-1).refreshCalls,
    reuseDetections: marks.at(-1).reuseDetections,
    slowestMs: Math.max(...results.map((r) => r.slowestMs)),
    statuses: merge(results.map((r) => r.statuses)),
    errors: merge(results.map((r) => r.errors)),
    signedIn: results.filter((r) => !r.ended).length,
    warnings: sum(results.map((r) => r.warnings)),
  }
}

async function scenario(redis, n, coordinated) {
  const server = await createTestAuthServer()
  const key = `bench:throughput:${n}:${coordinated ? 'redis' : 'alone'}`
  let workers = []
  try {
    workers = await signIn({ server, redis, n, key, coordinated })
    return { processes: n, coordinated, ...(await drive(server, workers)) }
  } finally {
    await Promise.all(workers.map(stopWorker))
    await server.close()
  }
}

async function stopWorker(worker) {
  if (worker.exitCode !== null || worker.signalCode !== null) return
  const exited = new Promise((resolve) => worker.once('exit', resolve))
  worker.send({ type: 'exit' })
  await exited
}

// ---------------------------------------------------------------- the run

function describe(row) {
  const perExpiry = row.refreshesPerExpiry.join('/')
  const failures = Object.entries({ ...row.statuses, ...row.errors })
    .map(([name, count]) => `${count} ${name}`)
    .join(', ')
  return (
    `${String(row.processes).padStart(2)} processes, ${row.coordinated ? 'redisCoordinator ' : 'coordinator: false'}: ` +
    `${fmt(row.rps)} req/s, refresh calls per expiry ${perExpiry} (before the first: ${row.refreshesBefore}), ` +
    `reuse ${row.reuseDetections}, signed in at the end ${row.signedIn}/${row.processes}, ` +
    `slowest request ${fmt(row.slowestMs)} ms` +
    (failures ? `, failed: ${failures}` : '')
  )
}

async function redisVersion(redis) {
  const info = String(await redis.command(['INFO', 'server']))
  return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown'
}

const redis = await startRedisServer()
try {
  const version = await redisVersion(redis)
  log(`redis-server ${version} on ${redis.url}`)
  log(`a. latency: ${REFRESHES} refreshes per client (+${WARMUP_REFRESHES} warm-up)`)
  const latency = await measureLatency(redis)
  for (const name of ['inProcess', 'redis']) {
    const { p50, p99 } = latency[name]
    log(`  ${name.padEnd(9)}: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms`)
  }
  log(
    `  added by redisCoordinator: p50 ${fmt(latency.redis.p50 - latency.inProcess.p50)} ms, p99 ${fmt(latency.redis.p99 - latency.inProcess.p99)} ms` +
      ` (refresh calls ${latency.refreshCalls} of ${latency.expectedRefreshCalls}, reuse ${latency.reuseDetections})`,
  )

  log(`b. throughput: ${SECONDS} s per run, ${EXPIRIES} expiries, ${LOOPS} loops per process`)
  const throughput = []
  for (const n of PROCESSES) {
    for (const coordinated of [true, false]) {
      const row = await scenario(redis, n, coordinated)
      log(`  ${describe(row)}`)
      throughput.push(row)
    }
  }
  const settings = {
    refreshes: REFRESHES,
    seconds: SECONDS,
    expiries: EXPIRIES,
    loops: LOOPS,
    warmupRequests: WARMUP_REQUESTS,
  }
  console.log(JSON.stringify({ redisVersion: version, settings, latency, throughput }))
} finally {
  await redis.stop()
}
