// Turns the raw results of bench/run.mjs into BENCHMARKS.md. Every verdict is computed from
// the figures of this run; the explanations attached to a missed goal describe the code as
// profiled when this benchmark was written and say so.

import { counts, fmt, median, range, summary } from './stats.mjs'
import { AAR_NO_DEDUP, LIBRARIES } from './subjects.mjs'

const PEERS = LIBRARIES.filter((lib) => lib !== 'auth-machine')
const OURS = 'auth-machine'
const LABEL = {
  bare: 'bare axios',
  'auth-machine': '**auth-machine**',
  'axios-auth-refresh': 'axios-auth-refresh',
  'axios-jwt': 'axios-jwt',
  naive: 'naive recipe',
  [AAR_NO_DEDUP]: 'axios-auth-refresh, `deduplicateRefresh: false` ¹',
}
const label = (lib) => LABEL[lib] ?? lib
const yes = (ok) => (ok ? '✅ met' : '❌ **missed**')
const kb = (bytes) => bytes / 1024
const ms = (value) => fmt(value, 3)
const int = (value) => fmt(value, 1)
const plural = (n, word, words = `${word}s`) => `${n} ${n === 1 ? word : words}`

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

// ---------------------------------------------------------------- 1. overhead

function overheadSection(overhead) {
  const subjects = ['bare', ...LIBRARIES]
  const rps = (lib) => overhead.map((run) => run.rps[lib])
  const ratios = (lib) => overhead.map((run) => run.rps[lib] / run.rps.bare)
  const added = (lib) => overhead.map((run) => 1e6 / run.rps[lib] - 1e6 / run.rps.bare)
  const rows = subjects.map((lib) => [
    label(lib),
    range(summary(rps(lib))),
    lib === 'bare' ? '1' : range(summary(ratios(lib)), 3),
    lib === 'bare' ? '–' : fmt(median(added(lib)), 2),
  ])
  const ours = summary(ratios(OURS))
  const ahead = PEERS.map((peer) => ({
    peer,
    wins: overhead.filter((run) => run.rps[OURS] > run.rps[peer]).length,
    ok: median(rps(OURS)) > median(rps(peer)),
  }))
  const unauthorized = overhead.reduce((sum, run) => sum + run.unauthorized, 0)
  const perRun = overhead[0]?.requests ?? 0
  const verdicts = {
    ratio: ours.median >= 0.9,
    ahead: ahead.every((a) => a.ok),
    text: `ratio ${fmt(ours.median, 3)} (${fmt(ours.min, 3)}–${fmt(ours.max, 3)})`,
    aheadText: ahead
      .map(
        (a) =>
          `${a.ok ? 'ahead of' : 'behind'} ${a.peer} (faster in ${a.wins}/${overhead.length} runs)`,
      )
      .join(', '),
  }
  const body = `## 1. Overhead per request, valid token (in-process)

Sequential requests (each awaited) through an axios instance whose custom \`adapter\` answers
from memory with an already-resolved promise after checking the \`Authorization\` header, so
only the interceptors differ. Bare axios gets the header by hand
(\`instance.defaults.headers.common.Authorization\`). Each run is a fresh process that warms
every subject up, then interleaves them in rotating order (${int(perRun)}
requests each per run); a subject's figure for a run is the median of its rounds, and
ratios are taken within a run. ${plural(overhead.length, 'run')}; median (min–max) across runs.
Requests answered 401 during the measurement: ${unauthorized} (must be 0).

${table(['', 'requests/s', 'ratio to bare axios', 'µs added per request'], rows)}

- Goal "at least 0.9 of bare axios": ${yes(verdicts.ratio)} — ${verdicts.text}.
- Goal "ahead of every peer": ${yes(verdicts.ahead)} — ${verdicts.aheadText}.
${verdicts.ratio && verdicts.ahead ? '' : OVERHEAD_ANALYSIS}`
  return { body, verdicts }
}

const OVERHEAD_ANALYSIS = `
**Where the time goes** (CPU profiles with \`node --cpu-prof\` of 60 000 sequential requests,
and variants of the interceptor measured side by side in one process, when this benchmark
was written). axios itself dominates every profile (\`mergeConfig\`, header normalisation);
any request plus response interceptor pair costs a few percent (a minimal async pair measured
0.92–0.93 of bare). On top of that, auth-machine's request path per request:

1. \`createOriginCheck\` builds a \`new URL()\` from the joined base URL and path on every request
   to decide whether the token may be attached: the largest single item (~5–8 µs in situ).
2. \`gate.acquire()\` is an \`async\` function awaited from an \`async\` interceptor that first
   awaits \`ready\`: three promise hops, plus \`actor.getSnapshot()\` and \`snapshot.matches()\`
   (XState state-value matching) on every request.
3. \`describe(config)\` (\`split\` + \`toUpperCase\`) runs on every request although it is only
   needed when a request is queued, and the generation is recorded in a \`WeakMap\` (ephemeron
   bookkeeping for every request config the GC sees).

**Proposed fix** (in \`src/\`, not applied here): a synchronous fast path.
- \`src/origin.ts\`: in \`createOriginCheck\`, when \`config.url\` is not absolute and
  \`config.baseURL\` is, the origin is the base URL's: memoise the decision per \`baseURL\` string
  (a small \`Map\`), and only parse a \`URL\` for absolute or unseen URLs.
- \`src/gate.ts\`: keep a plain \`current = { token, generation, expiresAt } | null\`, updated from
  \`actor.subscribe\` (\`authenticated\` with a session → set, anything else → \`null\`), and add a
  synchronous \`tryAcquire(): Grant | null\` that returns it when \`now() < expiresAt\`.
- \`src/interceptors.ts\`: make the request interceptor a plain function: if \`ready\` has settled
  (a flag set in \`ready.then\`) and \`gate.tryAcquire()\` grants, set the header and return the
  config itself; otherwise return the current async path (\`describe()\` moves there). Store the
  generation on the config (\`config[SENT_WITH] = generation\`, as \`REPLAYED\` already is) instead
  of the \`WeakMap\`.

A prototype of exactly this (same actor, same axios, same adapter, measured interleaved in one
process, in two sessions) went from 0.71 to 0.87–0.89 of bare axios, next to 0.92–0.93 for a
minimal async request + response interceptor pair; the origin memo and the synchronous token
cache account for nearly all of the gain. Reaching 0.9 reliably also needs the remaining
per-request work (\`skipAuth\` lookup, expiry check, generation bookkeeping) kept to a few
property reads.
`

// ---------------------------------------------------------------- 2. bursts

function burstRows(runs) {
  const all = runs.flatMap((run) => run.results)
  const sizes = [...new Set(all.map((r) => r.n))].sort((a, b) => a - b)
  const libs = [...LIBRARIES, AAR_NO_DEDUP]
  const pick = (lib, n) => all.filter((r) => r.lib === lib && r.n === n)
  return { sizes, libs, pick }
}

function burstSection(runs, { title, intro, analysis }) {
  const { sizes, libs, pick } = burstRows(runs)
  const rows = []
  for (const n of sizes) {
    for (const lib of libs) {
      const results = pick(lib, n)
      if (results.length === 0) continue
      const after = results.map((r) => r.afterRefreshMs ?? Number.NaN)
      const errors = [...new Set(results.flatMap((r) => r.errors))]
      rows.push([
        int(n),
        label(lib),
        counts(results.map((r) => r.refreshCalls)),
        counts(results.map((r) => r.reuseDetections)),
        counts(results.map((r) => r.unauthorized)),
        counts(results.map((r) => r.rejected)) + (errors.length ? ` (${errors.join(', ')})` : ''),
        counts(results.map((r) => r.hung)),
        range(summary(after)),
        range(summary(results.map((r) => r.totalMs))),
      ])
    }
  }
  const complete = (lib, n) => pick(lib, n).every((r) => r.rejected === 0 && r.hung === 0)
  const afterMedian = (lib, n) => median(pick(lib, n).map((r) => r.afterRefreshMs ?? Number.NaN))
  const small = sizes.find((n) => n >= 100) ?? sizes[0]
  const large = sizes.at(-1)
  const slope = (lib) =>
    Math.log(afterMedian(lib, large) / afterMedian(lib, small)) / Math.log(large / small)
  const growth = libs.map((lib) => [
    label(lib),
    ...sizes.map((n) =>
      pick(lib, n).length === 0
        ? 'not run'
        : `${ms(afterMedian(lib, n))}${complete(lib, n) ? '' : ' ✗'}`,
    ),
    fmt(slope(lib), 2),
  ])

  const oursAll = sizes.flatMap((n) => pick(OURS, n))
  const fastest = (n) => {
    const candidates = PEERS.filter((peer) => complete(peer, n) && pick(peer, n).length > 0)
    if (candidates.length === 0) return undefined
    return candidates.reduce((best, peer) =>
      afterMedian(peer, n) < afterMedian(best, n) ? peer : best,
    )
  }
  const best = fastest(large)
  const verdicts = {
    oneRefresh: oursAll.every((r) => r.refreshCalls === 1),
    noFailures: oursAll.every((r) => r.rejected === 0 && r.hung === 0),
    linear: slope(OURS) <= 1.2,
    slope: slope(OURS),
    vsFastest: best === undefined || afterMedian(OURS, large) <= afterMedian(best, large),
    fastest: best,
    large,
    oursLarge: afterMedian(OURS, large),
    bestLarge: best === undefined ? Number.NaN : afterMedian(best, large),
    bestMax:
      best === undefined ? Number.NaN : Math.max(...pick(best, large).map((r) => r.afterRefreshMs)),
  }
  const body = `${title}

${intro}

${table(
  [
    'N',
    'library',
    'refresh calls',
    'reuse detections',
    '401s sent back',
    'failed',
    'hung',
    'refresh response → last response (ms)',
    'burst start → last response (ms)',
  ],
  rows,
)}

How the time after the refresh response grows with N (median ms; ✗: some requests failed or
hung at that N, so the figure is not comparable; slope: log–log slope from N = ${int(small)} to
${int(large)}, 1 = linear, 2 = quadratic):

${table(['library', ...sizes.map((n) => `N = ${int(n)}`), 'slope'], growth)}

- Goal "exactly 1 refresh call for every N": ${yes(verdicts.oneRefresh)}.
- Goal "0 failed or hung": ${yes(verdicts.noFailures)}.
- Goal "linear growth": ${yes(verdicts.linear)} — slope ${fmt(verdicts.slope, 2)}.
- Goal "no slower than the fastest peer" (at N = ${int(large)}, among peers that
  completed every request): ${
    best === undefined
      ? 'no peer completed every request: ✅ met by default'
      : `${yes(verdicts.vsFastest)} — auth-machine ${ms(verdicts.oursLarge)} ms, ${best} ${ms(verdicts.bestLarge)} ms`
  }.
${verdicts.vsFastest && verdicts.linear ? '' : spreadNote(verdicts) + analysis}`
  return { body, verdicts }
}

function spreadNote(v) {
  if (v.vsFastest) return ''
  const ratio = v.oursLarge / v.bestLarge
  const within = v.oursLarge <= v.bestMax
  return `
At N = ${int(v.large)} auth-machine takes ${fmt(ratio, 3)}× the time of ${v.fastest} after the
refresh response${
    within
      ? `; its median is within ${v.fastest}'s spread across runs (max ${ms(v.bestMax)} ms), so this run cannot tell them apart reliably`
      : `, outside ${v.fastest}'s spread across runs (max ${ms(v.bestMax)} ms)`
  }.
`
}

const EXPIRED_ANALYSIS = `
**Where the time goes** (profiled at N = 10 000 when this benchmark was written, with the
profiler started at the refresh response). After the refresh response axios' own dispatch
dominates for every library. auth-machine's share on top: each released request resumes
through its waiter promise, \`wait()\`, \`acquire()\` (which reads the snapshot again and calls
XState's \`matches()\`) and the async request interceptor, several promise hops more than
axios-jwt, whose waiting requests all await one shared promise and then set a plain header
property; gate, interceptor, waiter bookkeeping and state matching were ~10 % of that phase.
The rest varies with garbage collection left over from the phase before the refresh
response, which is where auth-machine is clearly slower (compare "burst start → last
response"): every request that meets the expired token is one XState event, and
\`enqueueRequest\` copies the whole queue (\`[...context.queue, request]\`): one macrostep per
request and O(N²) element copies per burst (about 50 million at N = 10 000). With the copy
replaced by an in-place append (a throwaway experiment on a copy of \`dist/\`, three runs
each), that phase at N = 10 000 went from 1.2–1.8 s to 0.9–1.0 s.

**Proposed fix**: (1) the synchronous fast path proposed in section 1, and resolve each waiter
with the grant itself (\`waiters.resolve(ids, grant)\`) so a released request sets its header
without another trip through \`acquire()\`; (2) batch queueing: the gate collects the requests
that need a token within one microtask and sends a single \`TOKEN_NEEDED\` carrying all of
them (\`machines/\`: \`enqueueRequest\` appends an array), so a burst costs one event and one
copy per tick instead of one per request, and the queue stays plain data in the context.
`

const REJECTED_ANALYSIS = `
On loopback every library does about 2 N HTTP exchanges (N 401s, N replays) and the client
process is busy for most of the burst, so the per-request costs described in sections 1
and 2a (the interceptor path, one XState event per 401 that copies the queue while the
refresh runs) add up here too; the fixes proposed there apply unchanged.
`

// ---------------------------------------------------------------- 3. late 401

function late401Section(runs) {
  const libs = [...LIBRARIES, AAR_NO_DEDUP]
  const all = runs.flatMap((run) => run.results)
  const rows = libs.map((lib) => {
    const results = all.filter((r) => r.lib === lib)
    const lates = [...new Set(results.map((r) => r.late))]
    return [
      label(lib),
      counts(results.map((r) => r.refreshCalls)),
      counts(results.map((r) => r.refreshesFromLate401)),
      counts(results.map((r) => r.reuseDetections)),
      counts(results.map((r) => r.failed)),
      lates.join(' / '),
      `${results.filter((r) => r.sessionAlive).length}/${results.length} runs`,
    ]
  })
  const ours = all.filter((r) => r.lib === OURS)
  const verdicts = {
    oneRefresh: ours.every((r) => r.refreshCalls === 1),
    noReuse: ours.every((r) => r.reuseDetections === 0),
    noFailures: ours.every((r) => r.failed === 0),
  }
  const body = `## 3. The late 401, with refresh-token rotation (loopback)

The real token server (\`createTestAuthServer\`, access tokens live 12 s, refresh tokens rotate,
a reused refresh token revokes its family and counts in \`counters.reuseDetections\`) runs in a
process of its own. Per library and run: sign in; \`GET /api/slow\` goes out with token A and
the server holds it (\`hold('/api/slow')\`); the server expires every access token issued so
far; 5 concurrent \`GET /api/resource\` get 401, refresh, and are replayed; then the held
request is released and answered 401 for token A — after the refresh finished; finally one
more request checks that the session is still alive. axios-jwt never looks at a 401: it
refreshes once the token's \`exp\` is within its 10 s leeway, so for it the 5 requests wait
until that holds for token A (≤ 2 s). ${plural(runs.length, 'run')}; counts are "value" when every run
agrees, else median (min–max).

${table(
  [
    'library',
    'refresh calls',
    'started by the late 401',
    'reuse detections',
    'failed requests (of 6)',
    'late request',
    'session alive after',
  ],
  rows,
)}

- Goal "1 refresh call": ${yes(verdicts.oneRefresh)}; "0 reuse detections": ${yes(verdicts.noReuse)};
  every request answered: ${yes(verdicts.noFailures)}.
`
  return { body, verdicts }
}

// ---------------------------------------------------------------- 4. memory

function memorySection(memory) {
  const rows = LIBRARIES.map((lib) => {
    const results = memory.filter((r) => r.lib === lib)
    const pair = (key) => {
      const values = [...new Set(results.map((r) => JSON.stringify(r[key])))]
      return values
        .map((v) => JSON.parse(v))
        .map((p) => (p[0] === null ? '–' : `${p[0]} → ${p[1]}`))
    }
    return [
      label(lib),
      range(summary(results.map((r) => kb(r.growthBytes)))),
      fmt(median(results.map((r) => kb(r.growthRequestsBytes))), 3),
      fmt(median(results.map((r) => kb(r.growthCyclesBytes))), 3),
      `${counts(results.map((r) => r.requests))} (${counts(results.map((r) => r.failed))} failed)`,
      counts(results.map((r) => r.refreshCalls)),
      counts(results.map((r) => r.pending ?? Number.NaN)).replace('NaN', '–'),
      pair('interceptors').join(', '),
      pair('timers').join(', '),
      pair('listeners').join(', '),
      fmt(median(results.map((r) => r.seconds)), 3),
    ]
  })
  const ours = memory.filter((r) => r.lib === OURS)
  const same = (key) => ours.every((r) => r[key][0] === r[key][1])
  const verdicts = {
    growth: ours.every((r) => r.growthBytes < 1_000_000),
    growthText: range(summary(ours.map((r) => kb(r.growthBytes)))),
    queue: ours.every((r) => r.pending === 0),
    listeners: same('listeners') && same('interceptors') && same('timers'),
  }
  const body = `## 4. Memory: 100 000 requests and 1 000 refresh cycles (in-process)

Each library in ${plural(memory.length / LIBRARIES.length, 'fresh process', 'fresh processes')} (\`node --expose-gc bench/memory.mjs <library>\`). Warm-up
(10 000 requests, 200 cycles, so that code compiled late is not counted as a leak), then
\`heapUsed\` after forced full collections (\`gc()\` ×6): before, after 100 000 requests
(batches of 100 concurrent), and after 1 000 refresh cycles of 10 concurrent requests each.
Even cycles jump the wall clock 31 minutes (a virtual \`Date.now()\`: the token is past its
\`exp\` for client and server); odd cycles have the server reject the token (401s) — except
for axios-jwt, which does not handle 401s and gets a clock jump every cycle. Interceptors:
live axios interceptors; timers: active \`Timeout\` handles; listeners: the XState actor's
subscribers and \`on()\` handlers (auth-machine only); queue: requests still waiting
(auth-machine's statechart queue, the naive recipe's \`failedQueue\`).

${table(
  [
    'library',
    'retained heap growth (KB)',
    'of which requests',
    'of which cycles',
    'requests',
    'refresh calls',
    'queue after',
    'interceptors',
    'timers',
    'listeners',
    's',
  ],
  rows,
)}

- Goal "under 1 MB growth": ${yes(verdicts.growth)} — ${verdicts.growthText} KB (median, min–max;
  the goal is checked against every run).
- Goal "queue empty": ${yes(verdicts.queue)}; "no listener growth" (listeners, interceptors,
  timers unchanged): ${yes(verdicts.listeners)}.
`
  return { body, verdicts }
}

// ---------------------------------------------------------------- 5. size

function sizeSection(rows, esbuild) {
  const body = `## 5. Size (minified + gzipped)

Each entry bundled with esbuild ${esbuild} (\`bundle\`, \`minify\`, ESM, browser platform,
es2020), peer dependencies \`external\`, then gzip level 9 (\`node:zlib\`). Deterministic:
measured once.

${table(
  ['library', 'entry', 'minified (bytes)', 'min + gzip (bytes)', 'what is included'],
  rows.map((r) => [
    label(r.lib),
    `\`${r.entry}\``,
    int(r.minified),
    `**${int(r.gzipped)}**`,
    r.note,
  ]),
)}
`
  // The core entry with its peer dependencies external: the figure the goal is about.
  const ours = rows.find((r) => r.lib === OURS)?.gzipped ?? Number.NaN
  return { body, ours }
}

// ---------------------------------------------------------------- the page

/** The four goal rows of a burst section, the same for both kinds of burst. */
function burstGoals(prefix, verdicts, noPeer) {
  return [
    [`${prefix}: 1 refresh for every N`, verdicts.oneRefresh, ''],
    [`${prefix}: 0 failed or hung`, verdicts.noFailures, ''],
    [`${prefix}: linear in N`, verdicts.linear, `slope ${fmt(verdicts.slope, 2)}`],
    [
      `${prefix}: no slower than the fastest peer`,
      verdicts.vsFastest,
      verdicts.fastest
        ? `N = ${int(verdicts.large)}: ${ms(verdicts.oursLarge)} ms vs ${verdicts.fastest} ${ms(verdicts.bestLarge)} ms`
        : noPeer,
    ],
  ]
}

export function renderReport(data) {
  const { machine, versions, runs } = data
  const overhead = overheadSection(data.overhead)
  const expired = burstSection(data.bursts.expired, {
    title: '## 2a. Burst on an expired token (in-process)',
    intro: `Each library signs in normally (\`expiresIn\` 1800 s), then the wall clock jumps 31 minutes
(a virtual \`Date.now()\`, the same for every library and the backend: a laptop that slept).
N requests are then fired at once. auth-machine and axios-jwt see the expiry on their own
clock and hold the requests before sending; axios-auth-refresh and the naive recipe send
them, get N 401s, then replay. The backend answers protected requests from memory and the
refresh on the next macrotask, like a network answer. "Refresh response → last response":
from the first refresh response reaching the client to the last request settling. "401s sent
back": protected requests the backend rejected (0 means the library held them). A request
is "hung" when not settled 30 s after the burst started. ${plural(runs.burst, 'run')}, each a fresh process.`,
    analysis: EXPIRED_ANALYSIS,
  })
  const rejected = burstSection(data.bursts.rejected, {
    title: '## 2b. Burst of 401s: the server rejects a token the client believes valid (loopback)',
    intro: `The real token server in a process of its own; the client signs in, then the server expires
every access token issued so far (\`expireAccessTokens()\`: what revocation, key rotation or a
client clock running late look like) and N requests are fired at once: N 401s. The token's
\`exp\` is still in the future, so axios-jwt, which only checks \`exp\` and never handles a
401, cannot recover (shown for N ≤ 100 only: it fails the same way at any N). Requests arrive and are answered over real
sockets, so 401s keep arriving after the refresh finished: the late-401 race at scale.
"Hung": not settled within 30 s. ${plural(runs.burst, 'run')}, each a fresh process.`,
    analysis: REJECTED_ANALYSIS,
  })
  const late = late401Section(data.late401)
  const memory = memorySection(data.memory)
  const size = sizeSection(data.size, versions.esbuild)

  const goals = [
    [
      '1. overhead ≥ 0.9 of bare axios (in-process)',
      overhead.verdicts.ratio,
      overhead.verdicts.text,
    ],
    ['1. ahead of every peer', overhead.verdicts.ahead, overhead.verdicts.aheadText],
    ...burstGoals('2a. expired token', expired.verdicts, ''),
    ...burstGoals('2b. 401 burst', rejected.verdicts, 'no peer completed every request'),
    [
      '3. late 401: 1 refresh, 0 reuse detections',
      late.verdicts.oneRefresh && late.verdicts.noReuse,
      '',
    ],
    ['4. memory: < 1 MB growth', memory.verdicts.growth, `${memory.verdicts.growthText} KB`],
    [
      '4. memory: queue empty, no listener growth',
      memory.verdicts.queue && memory.verdicts.listeners,
      '',
    ],
    [
      '5. size: core entry under 5 KB (min + gzip)',
      size.ours < 5 * 1024,
      `${int(size.ours)} bytes`,
    ],
  ]

  const load = (l) => l.map((v) => v.toFixed(2)).join(' / ')
  return `# Benchmarks

Generated by \`npm run bench\` (\`bench/run.mjs\`) on ${data.startedAt.toISOString()} in
${Math.round(data.durationSeconds)} s. **Do not edit by hand**: run \`npm run bench\` again.
${data.quick ? '\n> **Quick run (`BENCH_QUICK=1`)**: fewer runs and smaller workloads. Not for publishing.\n' : ''}
auth-machine against the peers users choose between: [axios-auth-refresh](https://www.npmjs.com/package/axios-auth-refresh)
(the most used), [axios-jwt](https://www.npmjs.com/package/axios-jwt), and the hand-written
"refreshing flag plus queue" recipe most blog posts show (\`bench/naive.mjs\`). Same work, same
run, same adapter or server, same token lifetimes. Figures are the median of several runs
with (min–max); ratios are computed within one run.

## Goals for auth-machine

${table(
  ['goal', 'result', 'figures'],
  goals.map(([goal, ok, text]) => [goal, yes(ok), text]),
)}

## Machine and versions

| | |
|---|---|
| CPU | ${machine.cpu}, ${machine.cores} cores |
| RAM | ${fmt(machine.ramBytes / 1024 ** 3, 3)} GiB |
| Node.js | ${machine.node} |
| OS | ${machine.os} |
| load average (1/5/15 min) | before ${load(machine.loadBefore)}, after ${load(machine.loadAfter)} |
| auth-machine | ${versions['auth-machine']} (commit ${versions.commit}${versions.dirty ? ', with uncommitted changes in src/ or machines/' : ''}) |
| axios | ${versions.axios} |
| xstate | ${versions.xstate} |
| axios-auth-refresh | ${versions['axios-auth-refresh']} |
| axios-jwt | ${versions['axios-jwt']} |
| esbuild (size) | ${versions.esbuild} |

The load average is there because the machine may be shared: timings from a loaded machine
are noisier (see the min–max), which is why every timed figure is a median over fresh
processes and every comparison is made within one run.

## Setups

Each contender protects its own \`axios.create({ baseURL })\` instance and refreshes through
a separate bare axios instance (as every README insists), posting \`{ refreshToken }\` and
storing the rotated refresh token it gets back.

| library | setup |
|---|---|
| auth-machine | README quick start: \`createAuthClient({ http, refresh })\` with every default (\`memorySession()\`, \`refreshMargin\` 60 s, \`retry\`, \`attachTo\` = origin of \`baseURL\`); \`refresh\` posts with the given \`signal\`; \`auth.login(tokens)\` after sign-in. |
| axios-auth-refresh | README: \`createAuthRefresh(http, refreshAuthLogic)\` with default options (\`statusCodes: [401]\`, \`deduplicateRefresh: true\`), plus the README's request interceptor setting \`Authorization: Bearer \${localStorage token}\` on every request. \`refreshAuthLogic\` stores both tokens and sets the header on \`failedRequest.response.config\`. \`localStorage\` is a tiny Map-backed stand-in (Node has none). |
| axios-jwt | README: \`applyAuthTokenInterceptor(http, { requestRefresh, getStorage })\`, default header, \`Bearer \` prefix and 10 s \`tokenExpireFudge\`; \`requestRefresh\` returns \`{ accessToken, refreshToken }\` (the server rotates). Its \`getBrowserLocalStorage()\` is \`undefined\` in Node, so \`getStorage\` returns the same async get/set/remove wrapper it builds over \`localStorage\`, over a Map-backed stand-in. \`setAuthTokens()\` after sign-in. |
| naive recipe | \`bench/naive.mjs\`: the common blog version — request interceptor reading the token from (Map-backed) \`localStorage\`; response interceptor with an \`isRefreshing\` flag, a \`failedQueue\` of waiting promises, \`_retry\` on the original request, replay through the same instance. |

¹ axios-auth-refresh with \`deduplicateRefresh: false\` is not what its README recommends; it is
the workaround for its open issue [#307](https://github.com/Flyrell/axios-auth-refresh/issues/307):
with the default, a 401 that arrives while a refresh runs is rejected to the caller instead
of waiting for that refresh. Shown as an extra row where the outcome depends on it.

${overhead.body}
${expired.body}
${rejected.body}
${late.body}
${memory.body}
${size.body}
## Running it

\`npm run bench\` rebuilds \`dist/\` and runs everything (a few minutes on 2 cores); it is not
part of \`npm test\`. \`BENCH_RUNS=<n>\` changes the number of runs, \`BENCH_QUICK=1\` makes a
smoke run. Network traffic is loopback only (127.0.0.1). Sources: \`bench/run.mjs\` (driver
and this page's data), \`overhead.mjs\`, \`burst.mjs\`, \`late401.mjs\`, \`memory.mjs\`, \`size.mjs\`,
\`subjects.mjs\` (the setups above), \`backend.mjs\` (the in-process adapter), \`server.mjs\` +
\`remote.mjs\` (the token server in its own process), \`naive.mjs\`, \`report.mjs\`.
`
}
