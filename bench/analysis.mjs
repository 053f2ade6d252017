// Where the time goes: the explanation attached to a missed goal in BENCHMARKS.md. Written
// from profiles of the code of the day named in each text, so they say when they were made;
// the figures of the page around them are always those of the run.

export const OVERHEAD_ANALYSIS = `
**Where the time goes** (\`node --cpu-prof\`, 60 000 sequential requests per subject, the bare
and the protected client timed side by side in one process; profiled on 2026-12-01, commit
0ace6f5 and the working tree of that day, load average ~2). In that process bare axios took
22.6 µs per request and auth-machine 27.2 µs (0.83); bare fetch 15.2 µs and \`auth.fetch\`
16.6 µs (0.92; 0.82–0.92 over repeated runs). On these fast in-process paths the goal leaves
~1.2 µs per request over bare axios and ~0.8 µs over bare fetch.

- **axios, ~4.6 µs added.** The request interceptor's own code is ~2.2 µs: \`attach()\` ~1.0 µs
  (a new \`Bearer …\` string per request, hashed for the \`written\` map lookup; \`redact\`, the
  epoch and the two decided-URL symbols written onto axios' config; the \`sentWith\` \`WeakMap\`
  entry), the origin decision ~0.8 µs (\`fullPaths\` ~0.4 µs: \`isMalformedHttp\` on the base URL,
  a \`slice\` + \`replace\` + regex test, and \`combine\` rebuilding the joined URL with two regex
  replaces; then \`decide\` ~0.3 µs, a cache key concatenated per request). The other ~2.4 µs
  are outside those frames: the promise hops of the two interceptors in axios' chain (the
  peers pay those too: ~0.3–0.5 µs, from their own ratios), the response interceptor's
  closures per response, and collecting what each request leaves behind (the \`WeakMap\`
  entry is an ephemeron; a symbol property on the config instead measured 0.4–2 µs faster
  side by side, within the noise).
- **fetch, ~1.4 µs added.** \`withToken\` ~1.1 µs (a \`Headers\` built and \`set\` per request,
  then the init spread into a new object; a plain \`{ Authorization }\` record instead was no
  faster side by side: undici converts a record more slowly than a \`Headers\`), the origin
  decision ~0.3 µs (the same key concatenation, and a \`pageBases()\` array per request), and
  the request description (\`toUpperCase\`, \`split('?')\`) built for every request although
  only a queued one needs it.

**Proposed fix** (in \`src/\`, not applied here): decide the origin without building a key
string per request (a map per base, keyed by the URL string); in the axios adapter, skip
\`fullPaths\`' regexes when \`url\` is relative and the \`baseURL\` is the one already checked,
keep the last \`Bearer\` string and its epoch instead of a map lookup per request, and carry the
grant on the config (a symbol property) instead of a \`WeakMap\`; in \`authFetch\`, build the
description only when the request waits.
`

export const EXPIRED_ANALYSIS = `
**Where the time goes** (\`node --expose-gc bench/profile-burst.mjs 1000 10000\`: a V8 CPU
profile of one auth-machine burst on axios, from the first request fired to the last
settled, split at the refresh response; profiled on 2026-12-01, commit adeafb5 and the
working tree of that day, under load: read the shares, not the ms). The burst is linear (the client appends to the queue in place;
copying it per request made it O(N²) before). At N = 10 000, ~80 % of the burst is the phase
before the refresh response, where every request that meets the expired token is one XState
event (\`TOKEN_NEEDED\`):

1. One macrostep and one new snapshot per request, and the queue's subscriber (\`update\` in
   \`src/queue.ts\`) calling \`snapshot.matches()\` twice on each: XState ~25 % of the samples
   (\`microstep\`, \`toStatePath\`, \`createMachineSnapshot\`, \`computeExitSet\`).
2. Garbage collection ~29 %: per request a snapshot, a \`QueuedRequest\`, a promise, a \`Map\`
   entry, an abort source and the description strings, all alive until the refresh answers.
3. \`src/queue.ts\` \`wait\` ~6 % and the origin decision ~4 %; axios' own request setup
   (\`mergeConfig\`) the rest. axios-jwt, the fastest peer, parks every request on one shared
   promise: a few promise reactions each.
4. With an \`inspect\` option (devtools, the visualizer) a burst is O(N²) whatever the queue
   does: every inspection event projects the whole context, queue included
   (\`src/inspection.ts\` maps \`context.queue\` on each), so each queued request costs O(N).

\`auth.fetch\` waits in the same queue, so points 1, 2 and 4 apply to it too (a \`--cpu-prof\` of
one \`auth.fetch\` burst of 10 000, process start included: XState ~14 % of the samples, garbage
collection ~20 %, undici building requests and responses ~12 %).

**Proposed fix**: batch: collect the requests that need a token within one microtask and
send one \`TOKEN_NEEDED\` carrying all of them, so a burst costs one event, one macrostep and one
snapshot per tick instead of one per request; in \`update\`, read \`snapshot.value\` once instead
of two \`matches()\`; in the inspection projection, summarise the queue (its length and the last
few entries) instead of mapping every entry on every event.
`

export const REJECTED_ANALYSIS = `
On loopback every library does about 2 N HTTP exchanges (N 401s, N replays) and the client
process is busy for most of the burst, so the per-request costs described in sections 1
and 2a (the interceptor path, one XState event per 401 queued while the refresh runs) add
up here too; the fixes proposed there apply unchanged.
`
