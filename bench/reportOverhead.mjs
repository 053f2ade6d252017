// Section 1 of BENCHMARKS.md: the cost per request on a valid token, for each transport.

import { AUTH_FETCH, BARE_FETCH, KY } from './fetchSubjects.mjs'
import { baselineOf, label, nameOf, plural, table, yes } from './reportFormat.mjs'
import { fmt, median, range, summary } from './stats.mjs'
import { LIBRARIES } from './subjects.mjs'

export const OVERHEAD_GOAL = 0.95

/** Each transport: its baseline, auth-machine on it, and the peers on it. */
const WORLDS = [
  {
    name: 'axios',
    base: 'bare',
    ours: 'auth-machine',
    peers: LIBRARIES.filter((l) => l !== 'auth-machine'),
  },
  { name: 'fetch', base: BARE_FETCH, ours: AUTH_FETCH, peers: [KY] },
]

export function overheadSection(overhead, analysis) {
  const rps = (lib) => overhead.map((run) => run.rps[lib])
  const ratios = (lib) => overhead.map((run) => run.rps[lib] / run.rps[baselineOf(lib)])
  const added = (lib) => overhead.map((run) => 1e6 / run.rps[lib] - 1e6 / run.rps[baselineOf(lib)])
  const rows = WORLDS.flatMap(({ base, ours, peers }) =>
    [base, ours, ...peers].map((lib) => [
      label(lib),
      range(summary(rps(lib))),
      lib === base ? '1' : range(summary(ratios(lib)), 3),
      lib === base ? '–' : fmt(median(added(lib)), 2),
    ]),
  )
  const worlds = WORLDS.map((world) => {
    const ratio = summary(ratios(world.ours))
    const ahead = world.peers.map((peer) => ({
      peer,
      wins: overhead.filter((run) => run.rps[world.ours] > run.rps[peer]).length,
      ok: median(rps(world.ours)) > median(rps(peer)),
    }))
    return {
      ...world,
      ok: ratio.median >= OVERHEAD_GOAL,
      text: `${nameOf(world.ours)}: ratio ${fmt(ratio.median, 3)} (${fmt(ratio.min, 3)}–${fmt(ratio.max, 3)}), ${fmt(median(added(world.ours)), 2)} µs added per request`,
      ahead,
    }
  })
  const aheadAll = worlds.flatMap((w) => w.ahead)
  const verdicts = {
    worlds,
    ahead: aheadAll.every((a) => a.ok),
    aheadText: worlds
      .map(
        (w) =>
          `${nameOf(w.ours)}: ${w.ahead
            .map(
              (a) =>
                `${a.ok ? 'ahead of' : 'behind'} ${nameOf(a.peer)} (faster in ${a.wins}/${overhead.length} runs)`,
            )
            .join(', ')}`,
      )
      .join('; '),
  }
  const unauthorized = overhead.reduce((sum, run) => sum + run.unauthorized, 0)
  const perRun = overhead[0]?.requests ?? 0
  const kyPerRun = overhead[0]?.kyRequests ?? perRun
  const body = `## 1. Overhead per request, valid token (in-process)

Sequential requests (each awaited), in-process on both transports, so that only the client's
own work differs:
- **axios**: every subject has its own axios instance whose custom \`adapter\` answers from
  memory with an already-resolved promise after checking the \`Authorization\` header. Bare
  axios gets the header by hand (\`instance.defaults.headers.common.Authorization\`). A custom
  adapter is app code between auth-machine's token and the network, so its requests carry
  the session's abort signal (a request still in the adapter when the session ends is
  aborted): about 4 µs per request that apps on axios' own adapters do not pay (side by side on
  2026-12-01, with that signal turned off: 0.88 of bare axios instead of 0.74).
- **fetch**: every subject calls the backend's in-process \`fetch\`, installed as the global
  one (what \`auth.fetch\` calls without a \`fetch\` option; \`ky.create({ fetch })\`). It is fetch without the
  network: it builds the \`Request\` from \`(input, init)\` as the platform's \`fetch\` does first,
  checks the header and answers a \`Response\` (already resolved). Bare fetch passes
  \`{ headers: { Authorization } }\` by hand. Chosen over loopback because it measures the
  clients the way the axios rows do: over loopback to the token server, a request takes
  ~0.5 ms, and the client's few µs drown in its noise (bare fetch vs \`auth.fetch\`, side by
  side, three runs on 2026-12-01: 0.93, 0.96, 0.98).

Each run is two fresh processes, one per transport (the fetch subjects leave far more garbage
than the axios ones; in one process, whichever subject ran after ky paid for it: bare axios
measured ~25 % slower that way). Each process warms its subjects up, then interleaves them in
rounds, rotating the order and reversing it every other round (${fmt(perRun, 1)} requests each
per run; ky ${fmt(kyPerRun, 1)}, as it runs several times slower than bare fetch: its figure is a
rate either way). A subject's figure for a run is the median of its rounds, and ratios are
taken within a process, each against the bare client of its own transport.
${plural(overhead.length, 'run')}; median (min–max) across runs. Requests answered 401 during the
measurement: ${unauthorized} (must be 0).

${table(['', 'requests/s', 'ratio to bare axios / bare fetch', 'µs added per request'], rows)}

${worlds
  .map((w) => `- Goal "at least ${OVERHEAD_GOAL} of bare ${w.name}": ${yes(w.ok)} — ${w.text}.`)
  .join('\n')}
- Goal "ahead of every peer": ${yes(verdicts.ahead)} — ${verdicts.aheadText}.
${worlds.every((w) => w.ok) && verdicts.ahead ? '' : analysis}`
  return { body, verdicts }
}
