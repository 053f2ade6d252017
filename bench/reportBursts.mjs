// Sections 2a and 2b of BENCHMARKS.md: N concurrent requests meet a token that no longer
// works. The verdicts are about auth-machine on every transport the burst ran.

import {
  ALL_SUBJECTS,
  BASELINES,
  baselineOf,
  int,
  label,
  ms,
  nameOf,
  OURS,
  PEERS,
  table,
  yes,
} from './reportFormat.mjs'
import { counts, fmt, median, range, summary } from './stats.mjs'

export const LINEARITY_GOAL = 1.5

function burstRows(runs) {
  const all = runs.flatMap((run) => run.results)
  const capped = runs.flatMap((run) => run.capped ?? [])
  const sizes = [...new Set([...all, ...capped].map((r) => r.n))].sort((a, b) => a - b)
  const libs = ALL_SUBJECTS.filter((lib) => [...all, ...capped].some((r) => r.lib === lib))
  const pick = (lib, n) => all.filter((r) => r.lib === lib && r.n === n)
  // Per run, so that ratios are taken between figures of one process.
  const within = (run, lib, n) => run.results.find((r) => r.lib === lib && r.n === n)
  const ratios = (lib, other, n) =>
    runs
      .map((run) => [within(run, lib, n), within(run, other, n)])
      .filter(([a, b]) => a && b)
      .map(([a, b]) => a.totalMs / b.totalMs)
  const cappedAt = (lib, n) => capped.find((c) => c.lib === lib && c.n === n)
  return { sizes, libs, pick, ratios, capped, cappedAt }
}

/** The N the linearity figure compares the largest N with: the largest N ≤ a tenth of it. */
function linearityBase(sizes) {
  const large = sizes.at(-1)
  return [...sizes].reverse().find((n) => n <= large / 10) ?? sizes[0]
}

/**
 * @param {object[]} runs the raw results of bench/burst.mjs, one per run
 * @param {{ title: string, intro: string, analysis: string, held?: boolean, peerN?: number }}
 *   options `peerN`: the N of the "no slower than the fastest peer" goal (default: the largest)
 */
export function burstSection(runs, { title, intro, analysis, held = false, peerN }) {
  const { sizes, libs, pick, ratios, capped, cappedAt } = burstRows(runs)
  const ours = OURS.filter((lib) => libs.includes(lib))
  const complete = (lib, n) =>
    pick(lib, n).length > 0 && pick(lib, n).every((r) => r.rejected === 0 && r.hung === 0)
  const totalMedian = (lib, n) => median(pick(lib, n).map((r) => r.totalMs))
  const perRequestUs = (lib, n) => (1000 * totalMedian(lib, n)) / n
  const notRun = (lib, n) => (cappedAt(lib, n) ? 'capped ²' : 'not run')
  const isBase = (lib) => BASELINES.includes(lib)

  const rows = []
  for (const n of sizes) {
    for (const lib of libs) {
      const results = pick(lib, n)
      if (results.length === 0) continue
      const errors = [...new Set(results.flatMap((r) => r.errors))]
      rows.push([
        int(n),
        label(lib),
        counts(results.map((r) => r.refreshCalls)),
        counts(results.map((r) => r.reuseDetections)),
        counts(results.map((r) => r.unauthorized)),
        counts(results.map((r) => r.rejected)) + (errors.length ? ` (${errors.join(', ')})` : ''),
        counts(results.map((r) => r.hung)),
        `**${range(summary(results.map((r) => r.totalMs)))}**`,
        isBase(lib) ? '1' : range(summary(ratios(lib, baselineOf(lib), n))),
        isBase(lib) ? '–' : range(summary(results.map((r) => r.beforeRefreshMs ?? Number.NaN))),
        isBase(lib) ? '–' : range(summary(results.map((r) => r.afterRefreshMs ?? Number.NaN))),
      ])
    }
  }

  const small = linearityBase(sizes)
  const large = sizes.at(-1)
  const linearity = (lib) => perRequestUs(lib, large) / perRequestUs(lib, small)
  const slope = (lib) =>
    Math.log(totalMedian(lib, large) / totalMedian(lib, small)) / Math.log(large / small)
  const cell = (lib, n, value) =>
    pick(lib, n).length === 0 ? notRun(lib, n) : `${value}${complete(lib, n) ? '' : ' ✗'}`
  const growth = libs.map((lib) => [
    label(lib),
    ...sizes.map((n) => cell(lib, n, ms(totalMedian(lib, n)))),
    cell(lib, small, fmt(perRequestUs(lib, small), 3)),
    cell(lib, large, fmt(perRequestUs(lib, large), 3)),
    fmt(linearity(lib), 3),
    fmt(slope(lib), 2),
  ])

  // auth-machine on each transport ÷ each other subject, whole burst, within each run.
  const others = libs.filter((lib) => !OURS.includes(lib))
  const versus = sizes.flatMap((n) =>
    ours.map((lib) => [
      int(n),
      label(lib),
      ...others.map((other) => {
        if (pick(other, n).length === 0) return notRun(other, n)
        const r = ratios(lib, other, n)
        return r.length === 0 ? '–' : `${range(summary(r))}${complete(other, n) ? '' : ' ✗'}`
      }),
    ]),
  )

  // "No slower than the fastest peer": at `peerN`, among the peers (either transport) that
  // completed every request, against the faster of auth-machine's transports.
  const at = sizes.includes(peerN) ? peerN : large
  const fastestOf = (candidates) =>
    candidates
      .filter((lib) => complete(lib, at))
      .reduce(
        (best, lib) =>
          best === undefined || totalMedian(lib, at) < totalMedian(best, at) ? lib : best,
        undefined,
      )
  const best = fastestOf(PEERS.filter((lib) => libs.includes(lib)))
  const oursBest = fastestOf(ours)
  const perTransport = ours.map((lib) => {
    const results = sizes.flatMap((n) => pick(lib, n))
    return {
      lib,
      oneRefresh: results.every((r) => r.refreshCalls === 1),
      refreshCalls: counts(results.map((r) => r.refreshCalls)),
      noFailures: results.every((r) => r.rejected === 0 && r.hung === 0),
      failures: results.reduce((sum, r) => sum + r.rejected + r.hung, 0),
      linear: linearity(lib) <= LINEARITY_GOAL,
      linearity: linearity(lib),
      slope: slope(lib),
      atN: totalMedian(lib, at),
      vsBase: median(ratios(lib, baselineOf(lib), at)),
      queued: results.filter((r) => r.queuedAtAnswer !== null && r.queuedAtAnswer !== undefined),
    }
  })
  const verdicts = {
    perTransport,
    oneRefresh: perTransport.every((t) => t.oneRefresh),
    noFailures: perTransport.every((t) => t.noFailures),
    linear: perTransport.every((t) => t.linear),
    small,
    large,
    at,
    fastest: best,
    oursBest,
    vsFastest:
      best === undefined ||
      (oursBest !== undefined && totalMedian(oursBest, at) <= totalMedian(best, at)),
    bestAt: best === undefined ? Number.NaN : totalMedian(best, at),
    bestMax: best === undefined ? Number.NaN : Math.max(...pick(best, at).map((r) => r.totalMs)),
    oursAt: oursBest === undefined ? Number.NaN : totalMedian(oursBest, at),
    baseAt: Object.fromEntries(
      BASELINES.filter((b) => libs.includes(b)).map((b) => [b, totalMedian(b, at)]),
    ),
  }

  const heldNote = held
    ? perTransport
        .filter((t) => t.queued.length > 0)
        .map(
          (t) =>
            `When the refresh response arrived, ${nameOf(t.lib)}'s queue held all N requests in ${t.queued.filter((r) => r.queuedAtAnswer === r.n).length} of ${t.queued.length} bursts.`,
        )
        .join('\n')
    : ''
  const cappedNote = capped.length
    ? `
² Not run at that N (peers only: auth-machine and the bare clients always run at every N; a
peer whose figure at the previous N, scaled linearly, would exceed the time budget of one
burst is capped so that \`npm run bench\` stays within minutes):
${[...new Map(capped.map((c) => [`${c.lib} ${c.n}`, c])).values()]
  .map((c) => `- ${nameOf(c.lib)} at N = ${int(c.n)}: ${c.reason}.`)
  .join('\n')}
`
    : ''
  const each = (text) => perTransport.map((t) => `${nameOf(t.lib)} ${text(t)}`).join('; ')
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
    'whole burst (ms)',
    '× bare axios / bare fetch',
    'burst start → refresh response (ms)',
    'refresh response → last response (ms)',
  ],
  rows,
)}
${heldNote ? `\n${heldNote}\n` : ''}${cappedNote}
How the whole burst grows with N (median ms; ✗: some requests failed or hung at that N, so
the figure is not comparable). Per request: whole burst ÷ N, in µs. Linearity: time per
request at N = ${int(large)} ÷ time per request at N = ${int(small)} (1 = linear; a cost that
grows with the queue makes it grow with N: for an O(N²) burst it approaches
${int(large / small)}). Slope: log–log slope between the same two N (1 = linear, 2 = quadratic).

${table(
  [
    'library',
    ...sizes.map((n) => `N = ${int(n)}`),
    `µs/request at ${int(small)}`,
    `µs/request at ${int(large)}`,
    'linearity',
    'slope',
  ],
  growth,
)}

auth-machine's whole burst divided by each other subject's, within each run (median
(min–max) over runs; below 1: auth-machine is faster; ✗: that subject failed requests there):

${table(['N', 'auth-machine', ...others.map((lib) => `÷ ${label(lib)}`)], versus)}

- Goal "exactly 1 refresh call for every N": ${yes(verdicts.oneRefresh)} — ${each((t) => `${t.refreshCalls}`)}.
- Goal "0 failed or hung": ${yes(verdicts.noFailures)} — ${each((t) => `${t.failures}`)}.
- Goal "linear growth" (linearity ≤ ${LINEARITY_GOAL}): ${yes(verdicts.linear)} — time per
  request at N = ${int(large)} ÷ at N = ${int(small)}: ${each((t) => `${fmt(t.linearity, 3)} (slope ${fmt(t.slope, 2)})`)}; ${BASELINES.filter(
    (b) => libs.includes(b),
  )
    .map((b) => `${nameOf(b)} ${fmt(linearity(b), 3)}`)
    .join(', ')}.
- Goal "no slower than the fastest peer" (whole burst at N = ${int(at)}${ours.length > 1 ? ', auth-machine on either transport' : ''}, among peers that completed every request): ${fastestText(verdicts, totalMedian)}.
${verdicts.vsFastest && verdicts.linear && slowerNote(verdicts) === '' ? '' : spreadNote(verdicts) + slowerNote(verdicts) + analysis}`
  return { body, verdicts }
}

function fastestText(v, totalMedian) {
  const ours = v.perTransport
    .map(
      (t) => `${nameOf(t.lib)} ${ms(t.atN)} ms (${fmt(t.vsBase, 3)}× ${nameOf(baselineOf(t.lib))})`,
    )
    .join(', ')
  const bases = Object.entries(v.baseAt)
    .map(([b, value]) => `${nameOf(b)} ${ms(value)} ms`)
    .join(', ')
  if (v.fastest === undefined) {
    return `no peer completed every request: ✅ met by default — ${ours}`
  }
  return `${yes(v.vsFastest)} — ${ours}; fastest peer ${nameOf(v.fastest)} ${ms(totalMedian(v.fastest, v.at))} ms; ${bases}`
}

function spreadNote(v) {
  if (v.vsFastest || v.fastest === undefined || v.oursBest === undefined) return ''
  const ratio = v.oursAt / v.bestAt
  const within = v.oursAt <= v.bestMax
  return `
At N = ${int(v.at)} auth-machine's faster transport (${nameOf(v.oursBest)}) takes ${fmt(ratio, 3)}× the
time of ${nameOf(v.fastest)}'s whole burst${
    within
      ? `; its median is within ${nameOf(v.fastest)}'s spread across runs (max ${ms(v.bestMax)} ms), so this run cannot tell them apart reliably`
      : `, outside ${nameOf(v.fastest)}'s spread across runs (max ${ms(v.bestMax)} ms)`
  }.
`
}

/** The goal is met by the faster transport; the other one may still be behind the peer. */
function slowerNote(v) {
  if (!v.vsFastest || v.fastest === undefined) return ''
  const slower = v.perTransport.filter((t) => t.atN > v.bestAt)
  if (slower.length === 0) return ''
  return `
On its own, ${slower
    .map(
      (t) => `${nameOf(t.lib)} takes ${fmt(t.atN / v.bestAt, 3)}× the time of ${nameOf(v.fastest)}`,
    )
    .join(' and ')} at N = ${int(v.at)}.
`
}

/** The goal rows of a burst section for the summary table. */
export function burstGoals(prefix, verdicts) {
  const each = (text) => verdicts.perTransport.map((t) => `${nameOf(t.lib)} ${text(t)}`).join('; ')
  return [
    [`${prefix}: 1 refresh for every N`, verdicts.oneRefresh, each((t) => t.refreshCalls)],
    [`${prefix}: 0 failed or hung`, verdicts.noFailures, each((t) => `${t.failures}`)],
    [
      `${prefix}: linear in N (whole burst)`,
      verdicts.linear,
      `time per request at N = ${int(verdicts.large)} ÷ at N = ${int(verdicts.small)}: ${each((t) => `${fmt(t.linearity, 3)} (slope ${fmt(t.slope, 2)})`)}`,
    ],
    [
      `${prefix}: whole burst at N = ${int(verdicts.at)} no slower than the fastest peer that completes every request${verdicts.perTransport.length > 1 ? ' (either transport)' : ''}`,
      verdicts.vsFastest,
      `${each((t) => `${ms(t.atN)} ms`)}; ${
        verdicts.fastest === undefined
          ? 'no peer completed every request'
          : `${nameOf(verdicts.fastest)} ${ms(verdicts.bestAt)} ms`
      }`,
    ],
  ]
}
