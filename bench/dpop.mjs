// Benchmark 7, one run (bench/run.mjs starts several, each in a fresh process): what DPoP
// (RFC 9449) costs, per proof and per request. Prints one JSON line.
//
// Proofs: one `DPoP` header value for `GET https://api.test/api/resource` with the claims
// htm, htu, iat, jti and ath (the hash of an ~800-character access token), ES256 with a
// non-extractable WebCrypto P-256 key made once per process:
//   auth-machine           `signProof` with a prepared key (`proofKeyOf`) and the `ath`
//                          computed beforehand: what the client does per request (it hashes
//                          once per token, not per request)
//   auth-machine:ath       the same, hashing the token in every proof (`accessTokenHash`)
//   auth-machine:hash      `accessTokenHash` alone: what a token change adds
//   auth-machine:handle    the public handle, `auth.dpop.proof(method, url, { accessToken })`
//   jose                   `new SignJWT(payload).setProtectedHeader({ alg, typ, jwk })
//                          .sign(privateKey)`, `ath` computed beforehand
//   oauth4webapi           its `DPoP(client, keyPair)` handle's `addProof(url, headers, htm,
//                          accessToken)`, as its `protectedResourceRequest` calls it (not in its
//                          typings: the public way is the request itself, below); it hashes
//                          the token in every proof
//   webcrypto-sign         `crypto.subtle.sign` alone over a signing input of the same
//                          length: the floor every proof pays
//   node-sign              `node:crypto`'s synchronous `sign` (ES256, same input length, a
//                          key of its own): the ECDSA arithmetic without WebCrypto's async
//                          job; no browser has it, shown only to split the figure above
// Requests, sequential and each awaited, through an in-process `fetch` installed as the
// global one (fetch without the network, as in benchmark 1: it builds the `Request` from
// `(input, init)`, checks `Authorization` — `Bearer <token>` without a `DPoP` header, or
// `DPoP <token>` with one — and answers an already-resolved `Response`):
//   fetch                  bare fetch, `Authorization: Bearer` by hand: the floor
//   fetch:dpop             bare fetch, `Authorization: DPoP` and a `signProof` proof (`ath`
//                          hashed beforehand) by hand: the DPoP floor
//   auth-machine:bearer    `auth.fetch` without the `dpop` option
//   auth-machine:dpop      `auth.fetch` with `dpop: { keyPair }`
//   oauth4webapi:bearer    `protectedResourceRequest(token, 'GET', url)` with its
//                          `customFetch` set to the same in-process fetch
//   oauth4webapi:dpop      the same with `{ DPoP }`
//
// Every subject warms up, then rounds interleave them in a rotating order (reversed every
// other round). Each operation is timed on its own; a subject's median and p95 are over all
// its operations of the run. Before measuring, one proof of each proof subject is verified
// with jose against the public key and its claims checked.
//
// Environment: BENCH_DPOP_ROUNDS (default 20), BENCH_DPOP_OPS (operations per subject per
// round, default 500).
//
//   node bench/dpop.mjs

import { generateKeyPairSync, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createAuthClient } from 'auth-machine/fetch'
import { compactVerify, decodeProtectedHeader, exportJWK, SignJWT } from 'jose'
import * as oauth from 'oauth4webapi'
import { accessTokenHash, proofKeyOf, signProof } from '../dist/src/dpop/proof.js'
import { installFetch } from './fetchSubjects.mjs'
import { median, quantile } from './stats.mjs'

const ROUNDS = Number(process.env.BENCH_DPOP_ROUNDS ?? 20)
const PER_ROUND = Number(process.env.BENCH_DPOP_OPS ?? 500)
const WARMUP = 1000
const ORIGIN = 'https://api.test'
const URL_STRING = `${ORIGIN}/api/resource`
const RESOURCE = new URL(URL_STRING)
const TOKEN_LENGTH = 800

const PROOF_SUBJECTS = [
  'auth-machine',
  'auth-machine:ath',
  'auth-machine:hash',
  'auth-machine:handle',
  'jose',
  'oauth4webapi',
  'webcrypto-sign',
  'node-sign',
]
const REQUEST_SUBJECTS = [
  'fetch',
  'fetch:dpop',
  'auth-machine:bearer',
  'auth-machine:dpop',
  'oauth4webapi:bearer',
  'oauth4webapi:dpop',
]

const version = (name) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8'))
    .version

// ---------------------------------------------------------------- the key and the token

// Non-extractable, as auth-machine makes its own (the public half is always extractable).
const keyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
  'sign',
  'verify',
])
const proofKey = await proofKeyOf(keyPair)
const jwk = await exportJWK(keyPair.publicKey)
const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSeconds = () => Math.floor(Date.now() / 1000)
const randomJti = () =>
  Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url')

/** A JWT-shaped DPoP-bound access token (`cnf.jkt`), padded to TOKEN_LENGTH characters. */
function accessToken() {
  const iat = nowSeconds()
  const claims = {
    iss: 'https://auth.test',
    sub: 'ada',
    aud: ORIGIN,
    client_id: 'bench',
    iat,
    exp: iat + 3600,
    jti: randomJti(),
    cnf: { jkt: proofKey.jkt },
    scope: '',
  }
  const signature = Buffer.alloc(64, 7).toString('base64url')
  const make = () => `${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64(claims)}.${signature}`
  while (make().length < TOKEN_LENGTH) claims.scope += 'x'
  return make()
}
const TOKEN = accessToken()
const ATH = await accessTokenHash(TOKEN)

// ---------------------------------------------------------------- the in-process fetch

const JSON_HEADERS = { 'content-type': 'application/json' }
const counters = { ok: 0, unauthorized: 0 }

/** fetch without the network: checks the scheme, the token and the proof's presence. */
function inProcessFetch(input, init) {
  const request = new Request(input, init)
  const header = request.headers.get('Authorization') ?? ''
  const space = header.indexOf(' ')
  const scheme = header.slice(0, space)
  const proof = request.headers.get('DPoP')
  const ok =
    header.slice(space + 1) === TOKEN &&
    (scheme === 'DPoP' ? proof?.split('.').length === 3 : scheme === 'Bearer' && proof === null)
  counters[ok ? 'ok' : 'unauthorized'] += 1
  return Promise.resolve(
    ok
      ? new Response('{"ok":true}', { status: 200, headers: JSON_HEADERS })
      : new Response('{"error":"invalid_token"}', { status: 401, headers: JSON_HEADERS }),
  )
}
installFetch(inProcessFetch)

// ---------------------------------------------------------------- the subjects

const refresh = async () => {
  throw new Error('no refresh in this benchmark: the token lives an hour')
}
const bearerClient = createAuthClient({ attachTo: [ORIGIN], refresh })
const dpopClient = createAuthClient({ attachTo: [ORIGIN], refresh, dpop: { keyPair } })
const tokens = { accessToken: TOKEN, refreshToken: 'r1', expiresIn: 3600 }
bearerClient.login({ ...tokens, token_type: 'Bearer' })
dpopClient.login({ ...tokens, token_type: 'DPoP' })

const oauthClient = { client_id: 'bench' }
const oauthDpop = oauth.DPoP(oauthClient, keyPair)
const oauthOptions = { [oauth.customFetch]: inProcessFetch }
const oauthDpopOptions = { ...oauthOptions, DPoP: oauthDpop }

const signingInput = new TextEncoder().encode(
  (await signProof(proofKey, { htm: 'GET', htu: URL_STRING, iat: nowSeconds(), ath: ATH }))
    .split('.')
    .slice(0, 2)
    .join('.'),
)

const nodeKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey

/** Each subject: one operation, resolving with what it made (a proof, a hash, a Response). */
const OPERATIONS = {
  'auth-machine': () =>
    signProof(proofKey, { htm: 'GET', htu: URL_STRING, iat: nowSeconds(), ath: ATH }),
  'auth-machine:ath': async () =>
    signProof(proofKey, {
      htm: 'GET',
      htu: URL_STRING,
      iat: nowSeconds(),
      ath: await accessTokenHash(TOKEN),
    }),
  'auth-machine:hash': () => accessTokenHash(TOKEN),
  'auth-machine:handle': () => dpopClient.dpop.proof('GET', URL_STRING, { accessToken: TOKEN }),
  jose: () =>
    new SignJWT({ htm: 'GET', htu: URL_STRING, iat: nowSeconds(), jti: randomJti(), ath: ATH })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
      .sign(keyPair.privateKey),
  oauth4webapi: async () => {
    const headers = new Headers()
    await oauthDpop.addProof(RESOURCE, headers, 'GET', TOKEN)
    return headers.get('dpop')
  },
  'webcrypto-sign': () =>
    crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keyPair.privateKey, signingInput),
  // Synchronous: wrapped in a promise like the others, so that every operation is awaited.
  'node-sign': async () =>
    sign('sha256', signingInput, { key: nodeKey, dsaEncoding: 'ieee-p1363' }),
  fetch: () => fetch(URL_STRING, { headers: { Authorization: `Bearer ${TOKEN}` } }),
  'fetch:dpop': async () => {
    const proof = await signProof(proofKey, {
      htm: 'GET',
      htu: URL_STRING,
      iat: nowSeconds(),
      ath: ATH,
    })
    return fetch(URL_STRING, { headers: { Authorization: `DPoP ${TOKEN}`, DPoP: proof } })
  },
  'auth-machine:bearer': () => bearerClient.fetch(URL_STRING),
  'auth-machine:dpop': () => dpopClient.fetch(URL_STRING),
  'oauth4webapi:bearer': () =>
    oauth.protectedResourceRequest(TOKEN, 'GET', RESOURCE, undefined, undefined, oauthOptions),
  'oauth4webapi:dpop': () =>
    oauth.protectedResourceRequest(TOKEN, 'GET', RESOURCE, undefined, undefined, oauthDpopOptions),
}

// ---------------------------------------------------------------- equivalence check

/** Verifies one proof of each proof subject: signature, header and the five claims. */
async function checkProofs() {
  const notProofs = ['auth-machine:hash', 'webcrypto-sign', 'node-sign']
  for (const name of PROOF_SUBJECTS.filter((n) => !notProofs.includes(n))) {
    const proof = await OPERATIONS[name]()
    const header = decodeProtectedHeader(proof)
    const { payload } = await compactVerify(proof, keyPair.publicKey)
    const claims = JSON.parse(new TextDecoder().decode(payload))
    const problems = [
      header.typ === 'dpop+jwt' || 'typ',
      header.alg === 'ES256' || 'alg',
      (header.jwk?.x === publicJwk.x && header.jwk?.y === publicJwk.y) || 'jwk',
      header.jwk?.d === undefined || 'jwk has d',
      claims.htm === 'GET' || 'htm',
      claims.htu === URL_STRING || 'htu',
      Math.abs(claims.iat - nowSeconds()) <= 1 || 'iat',
      (typeof claims.jti === 'string' && claims.jti.length >= 16) || 'jti',
      claims.ath === ATH || 'ath',
    ].filter((p) => p !== true)
    if (problems.length) throw new Error(`${name}: proof not equivalent (${problems.join(', ')})`)
  }
  for (const name of REQUEST_SUBJECTS) {
    const response = await OPERATIONS[name]()
    if (response.status !== 200) throw new Error(`${name}: answered ${response.status}`)
  }
}
await checkProofs()

// ---------------------------------------------------------------- measurement

/** Runs `count` operations one after the other, each awaited and timed: µs each. */
async function measure(name, count, into) {
  const operation = OPERATIONS[name]
  for (let i = 0; i < count; i += 1) {
    const started = performance.now()
    await operation()
    into?.push((performance.now() - started) * 1000)
  }
}

const NAMES = [...PROOF_SUBJECTS, ...REQUEST_SUBJECTS]
for (const name of NAMES) await measure(name, WARMUP)
counters.ok = 0
counters.unauthorized = 0

const samples = Object.fromEntries(NAMES.map((name) => [name, []]))
for (let round = 0; round < ROUNDS; round += 1) {
  for (let k = 0; k < NAMES.length; k += 1) {
    const step = round % 2 === 0 ? k : NAMES.length - 1 - k
    const name = NAMES[(round + step) % NAMES.length]
    await measure(name, PER_ROUND, samples[name])
  }
}

const stats = (names) =>
  Object.fromEntries(
    names.map((name) => [
      name,
      { median: median(samples[name]), p95: quantile(samples[name], 0.95) },
    ]),
  )
await bearerClient.dispose()
await dpopClient.dispose()
console.log(
  JSON.stringify({
    proofs: stats(PROOF_SUBJECTS),
    requests: stats(REQUEST_SUBJECTS),
    rounds: ROUNDS,
    perRound: PER_ROUND,
    tokenLength: TOKEN.length,
    verified: true,
    unauthorized: counters.unauthorized,
    answered: counters.ok,
    versions: { jose: version('jose'), oauth4webapi: version('oauth4webapi') },
  }),
)
