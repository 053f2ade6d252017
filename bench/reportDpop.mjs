// Section 7 of BENCHMARKS.md: what DPoP costs, per proof and per request (bench/dpop.mjs).
// No target: the section reports the figures, against the peers measured in the same runs.

import { plural, table } from './reportFormat.mjs'
import { fmt, median, range, summary } from './stats.mjs'

/** The proof rows, in table order: the subject and its label. Ratios: against `auth-machine`. */
const PROOF_ROWS = [
  ['auth-machine', '**auth-machine** `signProof`, `ath` hashed beforehand (what a request pays)'],
  [
    'auth-machine:ath',
    '**auth-machine** `signProof` + `accessTokenHash` (`ath` hashed in the proof)',
  ],
  ['auth-machine:hash', '**auth-machine** `accessTokenHash` alone (what a token change adds)'],
  ['auth-machine:handle', '**auth-machine** `auth.dpop.proof(method, url, { accessToken })`'],
  ['jose', 'jose `new SignJWT(…).setProtectedHeader(…).sign(privateKey)`, `ath` hashed beforehand'],
  [
    'oauth4webapi',
    'oauth4webapi `DPoP(client, keyPair)`: `addProof(…)` (`ath` hashed in the proof) ¹',
  ],
  ['webcrypto-sign', '`crypto.subtle.sign` alone, ES256, same input length'],
  ['node-sign', '`node:crypto` `sign()`, synchronous, ES256, same input length ²'],
]
/** The request rows: the subject, its label, and the auth-machine row of the same scheme. */
const REQUEST_ROWS = [
  ['fetch', 'bare fetch, `Authorization: Bearer` by hand', 'auth-machine:bearer'],
  [
    'fetch:dpop',
    'bare fetch, `Authorization: DPoP` and a `signProof` proof by hand',
    'auth-machine:dpop',
  ],
  ['auth-machine:bearer', '**auth-machine** `auth.fetch`, Bearer', 'auth-machine:bearer'],
  ['auth-machine:dpop', '**auth-machine** `auth.fetch`, `dpop: { keyPair }`', 'auth-machine:dpop'],
  ['oauth4webapi:bearer', 'oauth4webapi `protectedResourceRequest`, Bearer', 'auth-machine:bearer'],
  ['oauth4webapi:dpop', 'oauth4webapi `protectedResourceRequest`, `{ DPoP }`', 'auth-machine:dpop'],
]

const us = (value) => fmt(value, 3)

/** @param {Array<ReturnType<typeof JSON.parse>>} runs the JSON lines of bench/dpop.mjs */
export function dpopSection(runs) {
  const of = (kind, name, stat) => runs.map((run) => run[kind][name]?.[stat])
  const row = (kind, name, text, reference) => {
    const ratios = runs.map((run) => run[kind][name]?.median / run[kind][reference]?.median)
    return [
      text,
      range(summary(of(kind, name, 'median'))),
      us(median(of(kind, name, 'p95'))),
      name === reference ? '1' : range(summary(ratios), 3),
    ]
  }
  const proofRows = PROOF_ROWS.map(([name, text]) => row('proofs', name, text, 'auth-machine'))
  const requestRows = REQUEST_ROWS.map(([name, text, reference]) =>
    row('requests', name, text, reference),
  )

  const m = (kind, name) => median(of(kind, name, 'median'))
  /** Per run: `a`'s median minus `b`'s, and `a`'s over `b`'s; then the median of each. */
  const versus = (kind, a, b) => ({
    added: median(runs.map((run) => run[kind][a]?.median - run[kind][b]?.median)),
    ratio: median(runs.map((run) => run[kind][a]?.median / run[kind][b]?.median)),
  })
  const ours = versus('requests', 'auth-machine:dpop', 'auth-machine:bearer')
  const theirs = versus('requests', 'oauth4webapi:dpop', 'oauth4webapi:bearer')
  const bare = versus('requests', 'fetch:dpop', 'fetch')
  const clientBearer = versus('requests', 'auth-machine:bearer', 'fetch')
  const clientDpop = versus('requests', 'auth-machine:dpop', 'fetch:dpop')
  const oauthVsOurs = versus('proofs', 'oauth4webapi', 'auth-machine:ath')
  const ratioOf = (name) => versus('proofs', name, 'auth-machine').ratio
  const proof = m('proofs', 'auth-machine')
  const sign = m('proofs', 'webcrypto-sign')
  const arithmetic = m('proofs', 'node-sign')
  const hash = m('proofs', 'auth-machine:hash')
  const unauthorized = runs.reduce((sum, run) => sum + run.unauthorized, 0)
  const verified = runs.length > 0 && runs.every((run) => run.verified === true)
  const first = runs[0] ?? {}
  const versions = first.versions ?? {}
  const perRun = (first.rounds ?? 0) * (first.perRound ?? 0)

  const text = `auth.fetch: ${us(ours.added)} µs added per request by DPoP (×${fmt(ours.ratio, 3)} of Bearer); one proof ${us(proof)} µs, of which \`crypto.subtle.sign\` ${us(sign)} µs`
  const verdicts = { text, verified, unauthorized, added: ours.added, ratio: ours.ratio }

  const body = `## 7. DPoP: cost per proof and per request (in-process)

With the \`dpop\` option every protected request carries \`Authorization: DPoP <token>\` and a
\`DPoP\` proof: a compact JWS (ES256) over htm, htu, iat, a random jti and \`ath\`, the SHA-256
of the access token. Here: proofs for \`GET https://api.test/api/resource\` with an access
token of ${fmt(first.tokenLength, 1)} characters, signed with a non-extractable WebCrypto P-256 key
(\`crypto.subtle.generateKey(…, false, ['sign', 'verify'])\`) made once per process and shared
by every subject. The peers make the same proof: jose ${versions.jose ?? '?'} with \`SignJWT\` and the public
JWK in its protected header, oauth4webapi ${versions.oauth4webapi ?? '?'} with its DPoP handle. Before
measuring, one proof of each is verified with jose against the public key (header \`typ\`,
\`alg\`, \`jwk\`; claims htm, htu, iat, jti, ath): ${verified ? 'all equivalent' : '**a proof failed the check**'}.
Requests go one at a time, each awaited, through an in-process \`fetch\` installed as the
global one (fetch without the network, as in section 1: it builds the \`Request\`, checks the
scheme, the token and, for DPoP, that a proof is there, and answers an already-resolved
\`Response\`), so that only the clients' own work differs. \`auth.fetch\` signs in with
\`auth.login({ accessToken, refreshToken, expiresIn: 3600, token_type })\`, \`attachTo\` the
API's origin; oauth4webapi gets the same \`fetch\` as its \`customFetch\`. Every subject warms
up (1 000 operations), then rounds interleave them in a rotating order; each operation is
timed on its own (${fmt(perRun, 1)} per subject and run). Median and p95 are over a run's
operations; the tables give the median across ${plural(runs.length, 'run')}, each a fresh process
(min–max for the median). Ratios are taken within a run, against the auth-machine row named.
Requests answered 401 during the measurement: ${unauthorized} (must be 0).

Per proof (ratio against auth-machine's \`signProof\` with \`ath\` hashed beforehand):

${table(['operation', 'median µs', 'p95 µs', 'ratio vs auth-machine'], proofRows)}

¹ \`addProof\` is what oauth4webapi's own requests call (\`protectedResourceRequest\` with
\`{ DPoP }\`, below), but it is not in its typings: its public DPoP API is the request. It
hashes the access token in every proof: against auth-machine doing the same (second row) its
ratio is ${fmt(oauthVsOurs.ratio, 3)}.
² Not a DPoP option for the client (no browser has \`node:crypto\`, and it takes no
\`CryptoKey\`): its own key, shown only to split the WebCrypto figure above it.

Per request (ratio against \`auth.fetch\` with the same scheme):

${table(['operation', 'median µs', 'p95 µs', 'ratio vs auth-machine'], requestRows)}

- DPoP over Bearer, \`auth.fetch\`: **${us(ours.added)} µs added per request**, ×${fmt(ours.ratio, 3)} the
  Bearer request. oauth4webapi: ${us(theirs.added)} µs added (×${fmt(theirs.ratio, 3)}); bare fetch with the proof
  made by hand: ${us(bare.added)} µs (×${fmt(bare.ratio, 3)}). Medians of the per-run differences and ratios.
- What \`auth.fetch\` adds to bare fetch: ${us(clientBearer.added)} µs with Bearer, ${us(clientDpop.added)} µs with DPoP
  (against the proof made by hand).

What the figures mean: DPoP adds a proof to every request, and a proof is one ECDSA P-256
signature plus a few hundred bytes of JSON and base64url. The WebCrypto signature dominates:
\`crypto.subtle.sign\` alone takes ${us(sign)} µs, ${fmt((100 * sign) / proof, 2)} % of auth-machine's ${us(proof)} µs
proof. Of that, the ECDSA arithmetic is about ${us(arithmetic)} µs (\`node:crypto\`'s synchronous
\`sign\`); the rest is WebCrypto's asynchronous job, which Node hands to a thread of libuv's
pool and answers with a promise. The hash shows that overhead nearly alone: SHA-256 of
${fmt(first.tokenLength, 1)} characters is a few µs of work, yet \`accessTokenHash\` takes ${us(hash)} µs — which
is why the client hashes \`ath\` once per token rather than in every proof. jose and
oauth4webapi sign through the same WebCrypto call (×${fmt(ratioOf('jose'), 3)} and ×${fmt(ratioOf('oauth4webapi'), 3)} here). Per request the
added cost is larger than one proof on its own (${us(ours.added)} against ${us(proof)} µs), and bare fetch with
a proof made by hand pays about as much (${us(bare.added)} µs): the surplus comes with signing and
building the request in the same loop, not from the client, whose own share is the
${us(clientDpop.added)} µs between \`auth.fetch\` and that bare fetch. In-process, DPoP makes a request
many times what the Bearer client costs; against a network round trip (about 0.5 ms over
loopback, tens of ms across the internet) it is small, but a service making many requests per
second pays it on each. The figures are from this machine's CPU: the load average above says
how busy it was.
`
  return { body, verdicts }
}
