// Section 6 of BENCHMARKS.md: Redis coordination (bench/redis.mjs), the added latency of a
// coordinated refresh and requests per second across processes, with the goal "one refresh
// per expiry, no reuse detection" checked against every process count.

import { ms, plural, table, yes } from './reportFormat.mjs'
import { fmt } from './stats.mjs'

const signed = (value) => `${value >= 0 ? '+' : '−'}${ms(Math.abs(value))}`

/** "1" when every expiry had the same count (and none came before the first), else the list. */
function perExpiry(row) {
  const counts = row.refreshesPerExpiry
  const uniform = counts.every((c) => c === counts[0]) && row.refreshesBefore === 0
  if (uniform) return String(counts[0])
  const before = row.refreshesBefore ? ` (+${row.refreshesBefore} before the first)` : ''
  return `${counts.join(' / ')}${before}`
}

const slowest = (rows) => rows.map((r) => `${r.processes} → ${ms(r.slowestMs)}`).join(', ')

/** Requests that did not end in a 2xx, by final status or error name; '' when none. */
function failures(row) {
  return Object.entries({ ...row.statuses, ...row.errors })
    .map(([name, count]) => `${count} × ${/^\d+$/.test(name) ? `HTTP ${name}` : name}`)
    .join(', ')
}

function latencyTable(latency) {
  const { inProcess, redis } = latency
  return table(
    ['client', 'p50 (ms)', 'p99 (ms)'],
    [
      ['`auth.fetch`, no coordinator (refresh in-process)', ms(inProcess.p50), ms(inProcess.p99)],
      ['`auth.fetch` + `redisCoordinator`', ms(redis.p50), ms(redis.p99)],
      [
        '**added by the coordination**',
        `**${signed(redis.p50 - inProcess.p50)}**`,
        `**${signed(redis.p99 - inProcess.p99)}**`,
      ],
    ],
  )
}

function throughputTable(rows) {
  const counts = [...new Set(rows.map((r) => r.processes))]
  const body = counts.map((n) => {
    const coordinated = rows.find((r) => r.processes === n && r.coordinated)
    const alone = rows.find((r) => r.processes === n && !r.coordinated)
    return [
      n,
      fmt(coordinated.rps),
      perExpiry(coordinated),
      coordinated.reuseDetections,
      fmt(alone.rps),
      perExpiry(alone),
      alone.reuseDetections,
      `${alone.signedIn} of ${n}`,
    ]
  })
  return table(
    [
      'processes',
      'req/s coordinated',
      'refreshes per expiry',
      'reuse',
      'req/s uncoordinated',
      'refreshes per expiry (uncoordinated)',
      'reuse',
      'still signed in (uncoordinated)',
    ],
    body,
  )
}

/** One line per run whose requests did not all succeed: the honest footnote to the rates. */
function failureNotes(rows) {
  const notes = rows
    .filter((r) => failures(r) !== '')
    .map(
      (r) =>
        `  - ${plural(r.processes, 'process', 'processes')}, ${r.coordinated ? 'coordinated' : 'uncoordinated'}: ${failures(r)}`,
    )
  if (notes.length === 0) return ''
  const replayed = rows.some((r) => r.coordinated && Object.keys(r.statuses).length > 0)
  const why = replayed
    ? ' (`auth.fetch` replays a rejected request once: an HTTP status in a coordinated run is a replay that met the next expiry before it was answered)'
    : ''
  return `- Requests that did not succeed${why}:\n${notes.join('\n')}`
}

export function redisSection(data) {
  const { latency, throughput, settings } = data
  const coordinated = throughput.filter((r) => r.coordinated)
  const verdicts = {
    oneRefresh: coordinated.every(
      (r) => r.refreshesBefore === 0 && r.refreshesPerExpiry.every((c) => c === 1),
    ),
    noReuse: coordinated.every((r) => r.reuseDetections === 0),
    signedIn: coordinated.every((r) => r.signedIn === r.processes),
    latencyCalls:
      latency.refreshCalls === latency.expectedRefreshCalls && latency.reuseDetections === 0,
  }
  const counts = coordinated.map((r) => r.processes).join(', ')
  const body = `## 6. Redis coordination (loopback, several processes)

\`redisCoordinator\` from \`auth-machine/redis\` on a redis-server ${data.redisVersion} that the benchmark
starts for itself (\`scripts/redis-server.mjs\`: its own process on 127.0.0.1, no persistence,
never a system service) and the real token server (\`createTestAuthServer\`, refresh tokens
rotate, a spent one that comes back revokes its session). Clients are \`auth.fetch\` from
\`auth-machine/fetch\` set up as in the README, each \`redisCoordinator({ url, key })\` with every
other option default. One run (\`node bench/redis.mjs\`, a fresh process).

**a. Added latency of a coordinated refresh.** One process holds two clients, each with its own
session: one without a coordinator (the refresh runs in-process) and one with
\`redisCoordinator\`; the token server runs in a process of its own. Each round the server
expires every access token, then one \`GET /api/resource\` is timed from the call to its
successful response: 401, refresh, replay. For the coordinated client the refresh also takes
the lock, re-reads and writes the shared record, publishes and releases the lock. ${settings.refreshes}
measured refreshes per client after ${plural(latency.warmup, 'unmeasured one')}, the two clients alternating;
the server counted ${latency.refreshCalls} refresh calls for ${latency.expectedRefreshCalls} expected and ${latency.reuseDetections} reuse detections.

${latencyTable(latency)}

**b. Requests per second across processes.** ${counts} forked processes (\`bench/redisWorker.mjs\`)
share one session; each runs ${settings.loops} concurrent request loops (\`GET /api/resource\`, one
after another per loop) for ${settings.seconds} s after ${settings.warmupRequests} unmeasured requests, while the token server
(in the parent process, so one single-threaded server serves every process) expires every
access token ${plural(settings.expiries, 'time')}, evenly spread over the run. Coordinated: \`redisCoordinator\`
on one key; the first process logs in, the others start afterwards and adopt the session on
\`await auth.ready\`. Uncoordinated (\`coordinator: false\`, the peer baseline): every process
logs in with the same tokens and refreshes alone. "Refreshes per expiry" counts the server's
refresh calls between one expiry and the next (a list when they differ); "reuse" counts
sessions the server revoked because a spent refresh token came back — the first process to
present one revokes the session for all of them, and every later refresh is refused. A
process whose session has ended stops sending (each further request would fail at once), so
"req/s" counts successful responses only, over the whole ${settings.seconds} s. The machine's cores are shared
by every process, the token server and redis-server: the rate measures contention, not
what more machines would give, and from one run on a loaded machine it moves by tens of
percent between runs (the refresh and reuse counts do not).

${throughputTable(throughput)}

- Goal "1 refresh per expiry across ${counts} processes": ${yes(verdicts.oneRefresh)}; "0 reuse
  detections": ${yes(verdicts.noReuse)}; every coordinated process still signed in at the end:
  ${yes(verdicts.signedIn)}.
- Slowest single request of a run (ms, by process count): coordinated ${slowest(coordinated)};
  uncoordinated ${slowest(throughput.filter((r) => !r.coordinated))}. Every process, the token
  server and redis-server share the machine's cores.
- Without coordination, a single process is fine; from 2 processes on, the first expiry sends
  one refresh per process with the same refresh token and the session is revoked for all.
${failureNotes(throughput)}
`
  return { body, verdicts }
}
