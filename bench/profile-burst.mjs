// Where auth-machine spends a burst: profiles one expired-token burst (as in benchmark 2a:
// in-process backend, wall clock jumped 31 minutes, N requests fired at once, the refresh
// answered on the next macrotask) with the V8 CPU profiler, started right before the first
// request and stopped when the last one settled, and prints the library's hot spots.
// Not part of `npm run bench`; a tool for working on the burst path.
//
//   npm run build --silent && node --expose-gc bench/profile-burst.mjs [N ...] [--rejected]
//     [--inspect] [--out=dir]
//
//   N ...      burst sizes (default 1000 40000). With two or more, the per-request cost of
//              every function is compared between the smallest and the largest N: a cost
//              per request that grows with N is O(N) per request (O(N²) per burst).
//   --rejected the server rejects a token the client believes valid (N 401s, then replays:
//              the TOKEN_REJECTED path) instead of the expired token (TOKEN_NEEDED)
//   --inspect  pass a no-op `inspect` callback to createAuthClient (what the Stately
//              inspector or a devtools hook costs, minus the transport)
//   --out=dir  also write the .cpuprofile files there (open them in Chrome DevTools)
//
// Functions are attributed to src/ and machines/ through dist/ (dist/src/gate.js →
// src/gate.ts); everything else is grouped by package (xstate, axios, node internals,
// "(garbage collector)"). "self": samples in the function's own code; "total": samples with
// the function anywhere on the stack (its callees included, each sample counted once per
// function). The split "queue" / "release" is at the first refresh response.

import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { SourceMap } from 'node:module'
import path from 'node:path'
import { createAuthClient } from 'auth-machine'
import axios from 'axios'
import { createBackend } from './backend.mjs'
import { advance, installVirtualClock } from './clock.mjs'
import { fmt } from './stats.mjs'

const args = process.argv.slice(2)
const sizes = args.filter((a) => /^\d+$/.test(a)).map(Number)
if (sizes.length === 0) sizes.push(1000, 40_000)
const withInspect = args.includes('--inspect')
const rejected = args.includes('--rejected')
const outDir = args.find((a) => a.startsWith('--out='))?.slice('--out='.length)
const SAMPLING_US = 250

installVirtualClock()
const inspector = new Session()
inspector.connect()
await inspector.post('Profiler.enable')
await inspector.post('Profiler.setSamplingInterval', { interval: SAMPLING_US })

async function profiledBurst(n, { profiled = true } = {}) {
  const backend = createBackend()
  const http = axios.create({ baseURL: 'http://api.test', adapter: backend.adapter })
  const refreshHttp = axios.create({ adapter: backend.adapter })
  let answeredAt = 0n
  const auth = createAuthClient({
    http,
    refresh: async (session, { signal }) => {
      const { data } = await refreshHttp.post(
        'http://api.test/auth/refresh',
        { refreshToken: session.refreshToken },
        { signal },
      )
      answeredAt ||= process.hrtime.bigint()
      return data
    },
    ...(withInspect ? { inspect: () => undefined } : {}),
  })
  auth.login(backend.login())
  await auth.ready
  if (rejected) backend.expireAccessTokens()
  else advance(31 * 60_000)
  globalThis.gc?.()

  if (profiled) await inspector.post('Profiler.start')
  const started = performance.now()
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => http.get(`/api/resource?i=${i}`)),
  )
  const totalMs = performance.now() - started
  const { profile } = profiled ? await inspector.post('Profiler.stop') : {}
  const failed = results.filter((r) => r.status === 'rejected').length
  auth.dispose()
  // V8's profile timestamps and process.hrtime() read the same monotonic clock (µs vs ns).
  return {
    n,
    totalMs,
    failed,
    refreshCalls: backend.counters.refreshCalls,
    profile,
    splitUs: Number(answeredAt / 1000n),
  }
}

const root = path.resolve(new URL('..', import.meta.url).pathname)

/** "src/gate.ts" for the library's own code, else a package or engine bucket. */
function where(url) {
  if (!url) return ''
  const file = url.replace(/^file:\/\//, '')
  const dist = path.join(root, 'dist') + path.sep
  if (file.startsWith(dist)) return file.slice(dist.length).replace(/\.js$/, '.ts')
  const pkg = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)
  if (pkg) return pkg[1]
  if (file.startsWith('node:')) return 'node'
  if (file.startsWith(root)) return path.relative(root, file)
  return file
}
const ours = (file) => file.startsWith('src/') || file.startsWith('machines/')

/** The library's frames by their TypeScript line (source maps of dist/), with a hint for
 * anonymous functions: the start of the compiled line they begin on. */
const distFiles = new Map()
function ourFrame(url, functionName, line, column) {
  const file = url.replace(/^file:\/\//, '')
  let entry = distFiles.get(file)
  if (!entry) {
    const js = readFileSync(file, 'utf8').split('\n')
    let map
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')))
    } catch {
      map = undefined
    }
    entry = { js, map }
    distFiles.set(file, entry)
  }
  const found = entry.map?.findEntry(line, column)
  const tsLine = found && 'originalLine' in found ? found.originalLine + 1 : undefined
  const at = tsLine === undefined ? '' : `:${tsLine}`
  if (functionName) return `${functionName}${at}`
  const text = (entry.js[line] ?? '').trim().replace(/\s+/g, ' ')
  return `(anonymous${at} \`${text.length > 50 ? `${text.slice(0, 50)}…` : text}\`)`
}

/** Self and total time (µs) per function and per file, split at the refresh response. */
function analyse({ profile, splitUs }) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map()
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id)
  const keyOf = (node) => {
    const { functionName, url, lineNumber, columnNumber } = node.callFrame
    const file = where(url)
    if (ours(file)) return `${file}:${ourFrame(url, functionName, lineNumber, columnNumber)}`
    const name = functionName || (file ? `(anonymous:${lineNumber + 1})` : '')
    return file ? `${file}:${name}` : name
  }
  const stats = new Map()
  const bump = (key, field, phase, us) => {
    let s = stats.get(key)
    if (!s) {
      s = { self: [0, 0], total: [0, 0] }
      stats.set(key, s)
    }
    s[field][phase] += us
  }
  let t = profile.startTime
  const sum = [0, 0]
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i]
    const us = profile.timeDeltas[i + 1] ?? 0
    const phase = splitUs && t >= splitUs ? 1 : 0
    sum[phase] += us
    let id = profile.samples[i]
    const leaf = byId.get(id)
    bump(keyOf(leaf), 'self', phase, us)
    bump(`[${where(leaf.callFrame.url) || leaf.callFrame.functionName}]`, 'self', phase, us)
    const seen = new Set()
    while (id !== undefined) {
      const node = byId.get(id)
      const key = keyOf(node)
      const file = `[${where(node.callFrame.url) || node.callFrame.functionName}]`
      for (const k of [key, file]) {
        if (!seen.has(k)) {
          seen.add(k)
          bump(k, 'total', phase, us)
        }
      }
      id = parent.get(id)
    }
  }
  return { stats, sum }
}

// Unprofiled first, so that the smallest N does not measure compilation.
await profiledBurst(1000, { profiled: false })
const runs = []
for (const n of sizes) {
  const run = await profiledBurst(n)
  runs.push({ ...run, ...analyse(run) })
  if (outDir) {
    const file = path.join(
      outDir,
      `burst-${n}${rejected ? '-rejected' : ''}${withInspect ? '-inspect' : ''}.cpuprofile`,
    )
    writeFileSync(file, JSON.stringify(run.profile))
  }
}

const pct = (part, whole) => `${fmt((100 * part) / whole, 2)} %`
for (const run of runs) {
  const whole = run.sum[0] + run.sum[1]
  if (run.refreshCalls !== 1 || run.failed) {
    console.log(
      `\n!! N = ${run.n}: ${run.refreshCalls} refresh calls, ${run.failed} failed requests: the` +
        ' burst did not take the normal path (e.g. the event loop was blocked past the 10 s' +
        ' refreshTimeout); the profile below is of that path.',
    )
  }
  console.log(
    `\nN = ${run.n}${rejected ? ', 401 burst' : ', expired token'}${withInspect ? ', with inspect' : ''}: whole burst ${fmt(run.totalMs)} ms` +
      ` (${fmt((1000 * run.totalMs) / run.n)} µs/request), ${run.refreshCalls} refresh call(s),` +
      ` ${run.failed} failed; sampled ${fmt(whole / 1000)} ms: queue phase ${pct(run.sum[0], whole)},` +
      ` release phase ${pct(run.sum[1], whole)}`,
  )
  const rows = [...run.stats].map(([key, s]) => ({
    key,
    self: s.self[0] + s.self[1],
    total: s.total[0] + s.total[1],
    s,
  }))
  const show = (title, list, field, limit) => {
    console.log(`  ${title}`)
    for (const r of list.sort((a, b) => b[field] - a[field]).slice(0, limit)) {
      console.log(
        `    ${pct(r[field], whole).padStart(8)}  ${r.key}` +
          `  (queue ${pct(r.s[field][0], whole)}, release ${pct(r.s[field][1], whole)})`,
      )
    }
  }
  show(
    'by file or package, self:',
    rows.filter((r) => r.key.startsWith('[')),
    'self',
    12,
  )
  show(
    'hottest functions anywhere, self:',
    rows.filter((r) => !r.key.startsWith('[')),
    'self',
    15,
  )
  show(
    'src/ and machines/, total (callees included):',
    rows.filter((r) => !r.key.startsWith('[') && ours(r.key)),
    'total',
    25,
  )
}

if (runs.length >= 2) {
  const [a, b] = [runs[0], runs.at(-1)]
  const perRequest = (run, key) => {
    const s = run.stats.get(key)
    return s ? (s.total[0] + s.total[1]) / run.n : 0
  }
  const keys = [...b.stats.keys()].filter((k) => !k.startsWith('['))
  const growing = keys
    .map((key) => ({ key, small: perRequest(a, key), large: perRequest(b, key) }))
    .filter((r) => r.large >= 0.5) // µs per request at the large N
    .map((r) => ({ ...r, growth: r.small > 0 ? r.large / r.small : Number.POSITIVE_INFINITY }))
    .sort((x, y) => y.large - y.small - (x.large - x.small))
  console.log(
    `\nCost per request, total µs, N = ${a.n} → N = ${b.n} (×${fmt(b.n / a.n)} requests;` +
      ' a growth near 1 is O(1) per request, near the N ratio O(N) per request):',
  )
  for (const r of growing.slice(0, 30)) {
    console.log(
      `  ${fmt(r.small).padStart(8)} → ${fmt(r.large).padStart(8)} µs  ×${fmt(r.growth, 2).padEnd(6)} ${r.key}`,
    )
  }
}
await inspector.post('Profiler.disable')
inspector.disconnect()
