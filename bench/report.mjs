// Turns the raw results of bench/run.mjs into BENCHMARKS.md: the page, the goals table and
// sections 3 and 4 (the other sections have a module each). Every verdict is computed from
// the figures of this run; the explanations attached to a missed goal (bench/analysis.mjs)
// describe the code as profiled when they were written and say so.

import { EXPIRED_ANALYSIS, OVERHEAD_ANALYSIS, REJECTED_ANALYSIS } from './analysis.mjs'
import { burstGoals, burstSection } from './reportBursts.mjs'
import { dpopSection } from './reportDpop.mjs'
import { int, kb, label, plural, table, yes } from './reportFormat.mjs'
import { OVERHEAD_GOAL, overheadSection } from './reportOverhead.mjs'
import { redisSection } from './reportRedis.mjs'
import { sizeSection } from './reportSize.mjs'
import { counts, fmt, median, range, summary } from './stats.mjs'
import { AAR_NO_DEDUP, LIBRARIES } from './subjects.mjs'

const OURS = 'auth-machine'
/** The N of the burst goal "no slower than the fastest peer" (issue 10). */
const PEER_GOAL_N = 10_000

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

// ---------------------------------------------------------------- the page

export function renderReport(data) {
  const { machine, versions, runs } = data
  const overhead = overheadSection(data.overhead, OVERHEAD_ANALYSIS)
  const expired = burstSection(data.bursts.expired, {
    title: '## 2a. Burst on an expired token (in-process)',
    intro: `Each library signs in normally (\`expiresIn\` 1800 s), then the wall clock jumps
31 minutes (a virtual \`Date.now()\`, the same for every library and the backend: a laptop
that slept). N requests are then fired at once. auth-machine (on both transports) and
axios-jwt see the expiry on their own clock and hold the requests before sending;
axios-auth-refresh, the naive recipe and ky send them, get N 401s, then replay. The axios
subjects run on the backend's axios adapter, the fetch subjects (bare fetch, \`auth.fetch\`,
ky) on its in-process \`fetch\` (section 1). The backend answers protected requests from
memory and the refresh on the next macrotask, like a network answer: the refresh is held
until every request of the burst has been fired and queued (or sent and answered 401), so
all the per-request work a library does while a refresh is outstanding is inside the
measurement. "Whole burst": from firing the first request to the last of the N settling, the
figure every ratio and goal below uses; it splits into "burst start → refresh response"
(queueing the burst) and "refresh response → last response" (releasing it). Bare axios and
bare fetch run the same N requests with a valid token set by hand and no refresh at all: the
floors; "× bare axios / bare fetch" is the whole burst divided by that of the bare client of
the same transport in the same run. ky refreshes once per 401 (no single flight: with a
rotating refresh token every refresh after the first presents a spent token, which the
server counts as reuse and answers 401), and its README's forced retry waits ky's default
retry delay (300 ms) before replaying: that wait is in its figures. "401s sent back":
protected requests the backend rejected (0 means the library held them). A request is
"hung" when not settled 30 s after the burst started. ${plural(runs.burst, 'run')}, each a fresh
process (\`--expose-gc\`) that first runs one unmeasured burst of 100 per subject, then every
N in rotating library order with a full garbage collection before each burst.`,
    analysis: EXPIRED_ANALYSIS,
    held: true,
    peerN: PEER_GOAL_N,
  })
  const rejected = burstSection(data.bursts.rejected, {
    title: '## 2b. Burst of 401s: the server rejects a token the client believes valid (loopback)',
    intro: `The real token server in a process of its own; the client signs in, then the server expires
every access token issued so far (\`expireAccessTokens()\`: what revocation, key rotation or a
client clock running late look like) and N requests are fired at once: N 401s. The token's
\`exp\` is still in the future, so axios-jwt, which only checks \`exp\` and never handles a
401, cannot recover (shown for N ≤ 100 only: it fails the same way at any N). Requests
arrive and are answered over real sockets, so 401s keep arriving after the refresh finished:
the late-401 race at scale. axios subjects only (the fetch subjects run in 2a). Columns as
in 2a ("whole burst": first request fired → last settled; bare axios: the same N
requests over the same sockets with a valid token). At N = 1 000 the burst opens ~1 000
connections at once, more than the token server's listen backlog (Node's default, 511)
accepts: dropped connection attempts are retried by the kernel after ~1 s, for every subject
bare axios included, so figures near or above 1 s at that N mostly measure that retry
(\`TcpExtListenOverflows\` in \`nstat\` counts them). "Hung": not settled within 30 s.
${plural(runs.burst, 'run')}, each a fresh process with one unmeasured burst of 100 per subject first.`,
    analysis: REJECTED_ANALYSIS,
  })
  const late = late401Section(data.late401)
  const memory = memorySection(data.memory)
  const size = sizeSection(data.size, versions.esbuild)
  const redis = redisSection(data.redis)
  const dpop = dpopSection(data.dpop)

  const goals = [
    ...overhead.verdicts.worlds.map((w) => [
      `1. overhead, ${w.name}: ≥ ${OVERHEAD_GOAL} of bare ${w.name} (in-process)`,
      w.ok,
      w.text,
    ]),
    ['1. ahead of every peer', overhead.verdicts.ahead, overhead.verdicts.aheadText],
    ...burstGoals('2a. expired token', expired.verdicts),
    ...burstGoals('2b. 401 burst', rejected.verdicts),
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
      '5. size: core + fetch under 5 KB (min + gzip, xstate external)',
      size.verdicts.core.ok,
      `${int(size.verdicts.core.bytes)} bytes${size.verdicts.axiosFree ? ', no axios code' : ', **holds axios code**'}`,
    ],
    [
      '5. size: axios adapter under 1.5 KB',
      size.verdicts.adapter.ok,
      `${int(size.verdicts.adapter.bytes)} bytes (main entry − fetch entry)`,
    ],
    [
      '5. size: each framework binding under 1 KB',
      size.verdicts.binding.ok,
      size.verdicts.binding.text,
    ],
    [
      '6. Redis: 1 refresh per expiry, 0 reuse detections, 1–16 processes',
      redis.verdicts.oneRefresh && redis.verdicts.noReuse && redis.verdicts.signedIn,
      '',
    ],
    // No target: the figure is reported (null renders as such).
    ['7. DPoP: cost per proof and per request, reported', null, dpop.verdicts.text],
  ]

  const load = (l) => l.map((v) => v.toFixed(2)).join(' / ')
  return `# Benchmarks

Generated by \`npm run bench\` (\`bench/run.mjs\`) on ${data.startedAt.toISOString()} in
${Math.round(data.durationSeconds)} s. **Do not edit by hand**: run \`npm run bench\` again.
${data.quick ? '\n> **Quick run (`BENCH_QUICK=1`)**: fewer runs and smaller workloads. Not for publishing.\n' : ''}
auth-machine, on axios and on fetch (\`auth.fetch\`), against the peers users choose between:
[axios-auth-refresh](https://www.npmjs.com/package/axios-auth-refresh) (the most used),
[axios-jwt](https://www.npmjs.com/package/axios-jwt), the hand-written "refreshing flag plus
queue" recipe most blog posts show (\`bench/naive.mjs\`), and in the fetch world
[ky](https://www.npmjs.com/package/ky) with the refresh recipe of its README. Same work, same
run, same adapter, \`fetch\` or server, same token lifetimes. Figures are the median of several runs
with (min–max); ratios are computed within one run.

## Goals for auth-machine

${table(
  ['goal', 'result', 'figures'],
  goals.map(([goal, ok, text]) => [goal, ok === null ? 'no target' : yes(ok), text]),
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
| ky | ${versions.ky} |
| esbuild (size) | ${versions.esbuild} |
| redis (node-redis, for \`auth-machine/redis\`) | ${versions.redis} |
| redis-server | ${data.redis.redisVersion} |
| jose (section 7) | ${versions.jose} |
| oauth4webapi (section 7) | ${versions.oauth4webapi} |

The load average is there because the machine may be shared: timings from a loaded machine
are noisier (see the min–max), which is why every timed figure is a median over fresh
processes and every comparison is made within one run.

## Setups

Each axios contender protects its own \`axios.create({ baseURL })\` instance and refreshes
through a separate bare axios instance (as every README insists); each fetch contender calls
one \`fetch\` and refreshes with a bare call on it. All post \`{ refreshToken }\` and store the
rotated refresh token they get back.

| library | setup |
|---|---|
| auth-machine (axios) | README quick start: \`createAuthClient({ http, refresh })\` with every default (\`memorySession()\`, \`refreshMargin\` 60 s, \`retry\`, \`attachTo\` = origin of \`baseURL\`); \`refresh\` posts with the given \`signal\`; \`auth.login(tokens)\` after sign-in. |
| axios-auth-refresh | README: \`createAuthRefresh(http, refreshAuthLogic)\` with default options (\`statusCodes: [401]\`, \`deduplicateRefresh: true\`), plus the README's request interceptor setting \`Authorization: Bearer \${localStorage token}\` on every request. \`refreshAuthLogic\` stores both tokens and sets the header on \`failedRequest.response.config\`. \`localStorage\` is a tiny Map-backed stand-in (Node has none). |
| axios-jwt | README: \`applyAuthTokenInterceptor(http, { requestRefresh, getStorage })\`, default header, \`Bearer \` prefix and 10 s \`tokenExpireFudge\`; \`requestRefresh\` returns \`{ accessToken, refreshToken }\` (the server rotates). Its \`getBrowserLocalStorage()\` is \`undefined\` in Node, so \`getStorage\` returns the same async get/set/remove wrapper it builds over \`localStorage\`, over a Map-backed stand-in. \`setAuthTokens()\` after sign-in. |
| naive recipe | \`bench/naive.mjs\`: the common blog version — request interceptor reading the token from (Map-backed) \`localStorage\`; response interceptor with an \`isRefreshing\` flag, a \`failedQueue\` of waiting promises, \`_retry\` on the original request, replay through the same instance. |
| auth-machine (\`auth.fetch\`) | README quick start: \`createAuthClient({ refresh })\` from \`auth-machine/fetch\`, \`refresh\` a bare \`fetch\` POST of the refresh token with the given \`signal\` that throws with the status when not ok; plus \`fetch\` (the one under test) and \`attachTo: [origin]\` (Node has no page origin to default to), every other option default. Requests are \`auth.fetch(url)\`. |
| ky | README (ky ${versions.ky}): \`ky.create({ fetch, hooks })\` with the \`beforeRequest\` example (the header from (Map-backed) \`localStorage\` on the first attempt only) and the \`afterResponse\` recipe "retry with a fresh token on a 401 error" copied as written: on a 401 with \`retryCount === 0\`, refresh with the bare \`ky.post(…).json()\`, then \`return ky.retry({ request: new Request(request, { headers }), code: 'TOKEN_REFRESHED' })\`. No single flight: every 401 refreshes. |

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
${redis.body}
${dpop.body}
## Running it

\`npm run bench\` rebuilds \`dist/\` and runs everything (a few minutes on 2 cores); it is not
part of \`npm test\`. \`BENCH_RUNS=<n>\` changes the number of runs, \`BENCH_QUICK=1\` makes a
smoke run. Network traffic is loopback only (127.0.0.1). Sources: \`bench/run.mjs\` (driver
and this page's data), \`overhead.mjs\`, \`burst.mjs\`, \`late401.mjs\`, \`memory.mjs\`, \`size.mjs\`,
\`subjects.mjs\` and \`fetchSubjects.mjs\` (the setups above), \`redis.mjs\` with \`redisWorker.mjs\`
and \`redisClient.mjs\` (section 6), \`dpop.mjs\` (section 7), \`backend.mjs\` (the
in-process adapter and \`fetch\`), \`server.mjs\` + \`remote.mjs\` (the token server in its own
process), \`naive.mjs\`, \`report.mjs\` with \`reportOverhead.mjs\`, \`reportBursts.mjs\`,
\`reportSize.mjs\`, \`reportRedis.mjs\`, \`reportDpop.mjs\` and \`analysis.mjs\` (the page).
Section 6 needs redis-server installed (\`apt-get install -y redis-server\`); without it the
run fails rather than skip the section.
\`node --expose-gc bench/profile-burst.mjs [N ...]\` (after \`npm run build\`; not part of the
run) profiles one auth-machine burst and lists the library's hot spots, with each function's
cost per request at the smallest and largest N.
`
}
