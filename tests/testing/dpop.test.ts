import { createHash, createHmac, randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, type JWK, SignJWT } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createTestAuthServer,
  decodeJwt,
  jwkThumbprint,
  TEST_PASSWORD,
  type TestAuthServer,
  type TestAuthServerOptions,
} from '../../src/testing/index.js'

// DPoP (RFC 9449) on the test token server, spoken to with bare fetch and proofs made with
// jose, so the wire format is what is checked. The server's clock is fixed: proofs' iat is
// chosen relative to it, no test waits.

const NOW_MS = 1_800_000_000_000
const NOW = NOW_MS / 1000

const open: TestAuthServer[] = []

afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()))
})

async function start(options: TestAuthServerOptions = { dpop: {} }): Promise<TestAuthServer> {
  const server = await createTestAuthServer({ now: () => NOW_MS, ...options })
  open.push(server)
  return server
}

interface Key {
  privateKey: CryptoKey
  jwk: JWK
  jkt: string
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign', 'verify'],
  )
  const jwk = await exportJWK(publicKey)
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) }
}

interface ProofOptions {
  /** Seconds; default the server's now. */
  iat?: number
  /** The access token whose hash goes into `ath`. */
  token?: string
  nonce?: string
  /** Extra or overriding claims. */
  claims?: Record<string, unknown>
  /** Extra or overriding protected header members. */
  header?: Record<string, unknown>
}

async function proof(
  key: Key,
  htm: string,
  htu: string,
  { iat = NOW, token, nonce, claims = {}, header = {} }: ProofOptions = {},
): Promise<string> {
  const payload: Record<string, unknown> = { htm, htu, jti: randomUUID(), iat, ...claims }
  if (token !== undefined) payload.ath = ath(token)
  if (nonce !== undefined) payload.nonce = nonce
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(key.privateKey)
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url')

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

interface Reply {
  status: number
  headers: Headers
  json: Record<string, unknown>
}

async function send(
  server: TestAuthServer,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Reply> {
  const res = await fetch(`${server.url}${path}`, { method, headers, body })
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : {} }
}

/** `POST /auth/login` with a proof from `key` (or the given proof, or none for `null`). */
async function login(server: TestAuthServer, key: Key, dpop?: string | null) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const given = dpop === undefined ? await proof(key, 'POST', `${server.url}/auth/login`) : dpop
  if (given !== null) headers.dpop = given
  return send(
    server,
    'POST',
    '/auth/login',
    headers,
    JSON.stringify({ username: 'ada', password: TEST_PASSWORD }),
  )
}

/** `POST /auth/refresh` with a proof from `key` (or the given proof, or none for `null`). */
async function refresh(
  server: TestAuthServer,
  key: Key,
  refreshToken: string,
  dpop?: string | null,
) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const given = dpop === undefined ? await proof(key, 'POST', `${server.url}/auth/refresh`) : dpop
  if (given !== null) headers.dpop = given
  return send(server, 'POST', '/auth/refresh', headers, JSON.stringify({ refreshToken }))
}

/** `POST /oauth/token` with a proof from `key` (or the given proof, or none for `null`). */
async function oauthToken(
  server: TestAuthServer,
  key: Key,
  params: Record<string, string>,
  dpop?: string | null,
) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  const given = dpop === undefined ? await proof(key, 'POST', `${server.url}/oauth/token`) : dpop
  if (given !== null) headers.dpop = given
  return send(
    server,
    'POST',
    '/oauth/token',
    headers,
    new URLSearchParams({ client_id: 'app', ...params }).toString(),
  )
}

/** A protected request with `Authorization: DPoP <token>` and the given proof, if any. */
function resource(
  server: TestAuthServer,
  token: string,
  dpop: string | undefined,
  { path = '/api/resource', method = 'GET', scheme = 'DPoP' } = {},
) {
  const headers: Record<string, string> = { authorization: `${scheme} ${token}` }
  if (dpop !== undefined) headers.dpop = dpop
  return send(server, method, path, headers)
}

/** A protected GET with a good proof from `key` for `token`. */
async function goodResource(server: TestAuthServer, key: Key, token: string, nonce?: string) {
  const url = `${server.url}/api/resource`
  return resource(server, token, await proof(key, 'GET', url, { token, nonce }))
}

/** A session bound to a fresh key, issued without HTTP. */
async function session(server: TestAuthServer) {
  const key = await newKey()
  return { key, ...server.login('ada', { jkt: key.jkt }) }
}

const cnf = (token: string) => decodeJwt(token)?.payload.cnf

describe('token routes bind tokens to the proof key', () => {
  it('POST /auth/login answers tokenType DPoP with cnf.jkt = the key thumbprint', async () => {
    const server = await start()
    const key = await newKey()
    const reply = await login(server, key)

    expect(reply.status).toBe(200)
    expect(reply.json).toMatchObject({ tokenType: 'DPoP', expiresIn: 1800 })
    const accessToken = reply.json.accessToken as string
    expect(cnf(accessToken)).toEqual({ jkt: key.jkt })
    expect(server.verifyAccessToken(accessToken)?.cnf).toEqual({ jkt: key.jkt })
    expect(server.counters).toMatchObject({ logins: 1, dpopProofsRefused: 0 })
  })

  it('POST /auth/refresh keeps the binding and says DPoP', async () => {
    const server = await start()
    const key = await newKey()
    const first = await login(server, key)
    const reply = await refresh(server, key, first.json.refreshToken as string)

    expect(reply.status).toBe(200)
    expect(reply.json.tokenType).toBe('DPoP')
    expect(cnf(reply.json.accessToken as string)).toEqual({ jkt: key.jkt })
    expect(server.counters).toMatchObject({ refreshCalls: 1, refreshSuccesses: 1 })
  })

  it('POST /oauth/token binds both grants and answers token_type DPoP', async () => {
    const server = await start()
    const key = await newKey()
    const password = await oauthToken(server, key, {
      grant_type: 'password',
      username: 'ada',
      password: TEST_PASSWORD,
    })
    expect(password.status).toBe(200)
    expect(password.json.token_type).toBe('DPoP')
    expect(cnf(password.json.access_token as string)).toEqual({ jkt: key.jkt })

    const refreshed = await oauthToken(server, key, {
      grant_type: 'refresh_token',
      refresh_token: password.json.refresh_token as string,
    })
    expect(refreshed.status).toBe(200)
    expect(refreshed.json.token_type).toBe('DPoP')
    expect(cnf(refreshed.json.access_token as string)).toEqual({ jkt: key.jkt })
    expect(refreshed.json.refresh_token).not.toBe(password.json.refresh_token)
  })

  it('computes the same RFC 7638 thumbprint as jose', async () => {
    const key = await newKey()
    expect(jwkThumbprint(key.jwk)).toBe(key.jkt)
    expect(() => jwkThumbprint({ kty: 'RSA' })).toThrow(TypeError)
  })

  it('advertises ES256 in the metadata', async () => {
    const server = await start()
    const reply = await send(server, 'GET', '/.well-known/oauth-authorization-server')
    expect(reply.json.dpop_signing_alg_values_supported).toEqual(['ES256'])
    const plain = await start({})
    const plainReply = await send(plain, 'GET', '/.well-known/oauth-authorization-server')
    expect(plainReply.json).not.toHaveProperty('dpop_signing_alg_values_supported')
  })

  it('refuses a login without a proof: 400 invalid_dpop_proof, no session', async () => {
    const server = await start()
    const reply = await login(server, await newKey(), null)
    expect(reply.status).toBe(400)
    expect(reply.json).toEqual({
      error: 'invalid_dpop_proof',
      error_description: expect.any(String),
    })
    expect(server.counters).toMatchObject({ logins: 0, dpopProofsRefused: 1, refreshFailures: 0 })
  })

  it.each([
    ['/auth/refresh', 'no proof', null],
    ['/auth/refresh', 'a proof for GET', 'GET'],
    ['/auth/refresh', 'a proof for another URL', '/oauth/token'],
    ['/oauth/token', 'no proof', null],
    ['/oauth/token', 'a proof for another URL', '/auth/refresh'],
  ] as const)(
    '%s refuses %s with 400 invalid_dpop_proof, nothing spent',
    async (path, _, variant) => {
      const server = await start()
      const { key, refreshToken } = await session(server)
      let dpop: string | null = null
      if (variant === 'GET') dpop = await proof(key, 'GET', `${server.url}${path}`)
      else if (variant !== null) dpop = await proof(key, 'POST', `${server.url}${variant}`)
      const reply =
        path === '/auth/refresh'
          ? await refresh(server, key, refreshToken, dpop)
          : await oauthToken(
              server,
              key,
              { grant_type: 'refresh_token', refresh_token: refreshToken },
              dpop,
            )

      expect(reply.status).toBe(400)
      expect(reply.json.error).toBe('invalid_dpop_proof')
      expect(server.counters).toMatchObject({
        refreshCalls: 1,
        refreshFailures: 1,
        refreshSuccesses: 0,
        dpopProofsRefused: 1,
      })
      // Not spent: the same token still refreshes, with a good proof.
      expect((await refresh(server, key, refreshToken)).status).toBe(200)
      expect(server.counters.reuseDetections).toBe(0)
    },
  )

  it('refuses a replayed proof at the token endpoint, counted as a replay', async () => {
    const server = await start()
    const key = await newKey()
    const once = await proof(key, 'POST', `${server.url}/auth/login`)
    expect((await login(server, key, once)).status).toBe(200)
    const again = await login(server, key, once)
    expect(again.status).toBe(400)
    expect(again.json.error).toBe('invalid_dpop_proof')
    expect(server.counters).toMatchObject({ logins: 1, dpopProofsRefused: 1, dpopReplays: 1 })
  })

  it('refuses a refresh proved by another key as invalid_grant, and spends nothing', async () => {
    const server = await start()
    const { key, refreshToken } = await session(server)
    const thief = await newKey()

    const json = await refresh(server, thief, refreshToken)
    expect(json.status).toBe(401)
    expect(json.json).toEqual({ error: 'invalid_grant', error_description: 'DPoP key mismatch' })
    const oauth = await oauthToken(server, thief, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    })
    expect(oauth.status).toBe(400)
    expect(oauth.json).toEqual({ error: 'invalid_grant', error_description: 'DPoP key mismatch' })
    expect(server.counters).toMatchObject({ refreshFailures: 2, dpopProofsRefused: 0 })

    const mine = await refresh(server, key, refreshToken)
    expect(mine.status).toBe(200)
    expect(server.counters).toMatchObject({ refreshSuccesses: 1, reuseDetections: 0 })
  })

  it('does not let a thief without the key burn the session with a spent refresh token', async () => {
    const server = await start()
    const { key, refreshToken: spent } = await session(server)
    const rotated = await refresh(server, key, spent)
    expect(rotated.status).toBe(200)

    const replay = await refresh(server, await newKey(), spent)
    expect(replay.json).toEqual({ error: 'invalid_grant', error_description: 'DPoP key mismatch' })
    expect(server.counters.reuseDetections).toBe(0)
    // The family survives: the victim's current refresh token still works.
    expect((await refresh(server, key, rotated.json.refreshToken as string)).status).toBe(200)
  })

  it('binds programmatic logins with { jkt } and insists on it', async () => {
    const server = await start()
    const key = await newKey()
    expect(cnf(server.login('ada', { jkt: key.jkt }).accessToken)).toEqual({ jkt: key.jkt })
    expect(() => server.login()).toThrow(/jkt/)
    expect(() => server.login('ada', { jkt: 'not a thumbprint' })).toThrow(/thumbprint/)
    const plain = await start({})
    expect(() => plain.login('ada', { jkt: key.jkt })).toThrow(/dpop option/)
    expect(cnf(plain.login().accessToken)).toBeUndefined()
    expect(server.counters.logins).toBe(1)
  })

  it('refuses bad dpop options before listening', async () => {
    await expect(
      createTestAuthServer({ dpop: { nonce: 'always' as unknown as 'both' } }),
    ).rejects.toThrow(RangeError)
    await expect(createTestAuthServer({ dpop: { iatWindow: -1 } })).rejects.toThrow(RangeError)
  })
})

describe('protected routes with DPoP-bound tokens', () => {
  it('answer 200 to DPoP <token> with a good proof (scheme case-insensitive)', async () => {
    const server = await start()
    const { key, accessToken } = await session(server)

    const reply = await goodResource(server, key, accessToken)
    expect(reply.status).toBe(200)
    expect(reply.json).toMatchObject({ ok: true, sub: 'ada', path: '/api/resource' })

    const url = `${server.url}/api/things/7`
    const lower = await resource(
      server,
      accessToken,
      await proof(key, 'DELETE', url, { token: accessToken }),
      { scheme: 'dpop', method: 'DELETE', path: '/api/things/7' },
    )
    expect(lower.status).toBe(200)
    expect(server.counters).toMatchObject({ protectedOk: 2, unauthorized: 0, dpopProofsRefused: 0 })
    // The request log keeps the proof, for tests that look at what a client sent.
    expect(server.requests.at(-1)?.dpop).toEqual(expect.any(String))
  })

  it('ignore query and fragment and normalise scheme and host when comparing htu', async () => {
    const server = await start()
    const { key, accessToken } = await session(server)
    const host = server.url.replace('http://', 'HTTP://')
    const variants = [
      [`${server.url}/api/resource`, '/api/resource?page=2'],
      [`${server.url}/api/resource?page=2#top`, '/api/resource?page=2'],
      [`${server.url}/api/resource?other=1`, '/api/resource'],
      [`${host}/api/resource`, '/api/resource'],
    ]
    for (const [htu = '', path] of variants) {
      const reply = await resource(
        server,
        accessToken,
        await proof(key, 'GET', htu, { token: accessToken }),
        { path },
      )
      expect(reply.status, htu).toBe(200)
    }
  })

  it.each<[string, (s: TestAuthServer, key: Key, token: string) => Promise<string | undefined>]>([
    ['no proof', async () => undefined],
    [
      'a bad signature',
      async (s, key, token) => {
        const good = await proof(key, 'GET', `${s.url}/api/resource`, { token })
        const forged = await proof(await newKey(), 'GET', `${s.url}/api/resource`, { token })
        const [header, payload] = good.split('.')
        return `${header}.${payload}.${forged.split('.')[2]}`
      },
    ],
    [
      'a claim changed after signing',
      async (s, key, token) => {
        const [header, , signature] = (
          await proof(key, 'GET', `${s.url}/api/resource`, { token })
        ).split('.')
        const payload = b64({ htm: 'GET', htu: `${s.url}/api/other`, jti: 'x', iat: NOW })
        return `${header}.${payload}.${signature}`
      },
    ],
    ['the wrong htm', (s, key, token) => proof(key, 'POST', `${s.url}/api/resource`, { token })],
    ['the wrong htu path', (s, key, token) => proof(key, 'GET', `${s.url}/api/other`, { token })],
    [
      'the wrong htu origin',
      (s, key, token) =>
        proof(key, 'GET', `${s.url.replace('127.0.0.1', 'localhost')}/api/resource`, { token }),
    ],
    ['a relative htu', (_, key, token) => proof(key, 'GET', '/api/resource', { token })],
    [
      'an iat too old',
      (s, key, token) => proof(key, 'GET', `${s.url}/api/resource`, { token, iat: NOW - 61 }),
    ],
    [
      'an iat in the future',
      (s, key, token) => proof(key, 'GET', `${s.url}/api/resource`, { token, iat: NOW + 61 }),
    ],
    [
      'no iat',
      (s, key, token) =>
        proof(key, 'GET', `${s.url}/api/resource`, { token, claims: { iat: undefined } }),
    ],
    [
      'no jti',
      (s, key, token) =>
        proof(key, 'GET', `${s.url}/api/resource`, { token, claims: { jti: undefined } }),
    ],
    ['no ath', (s, key) => proof(key, 'GET', `${s.url}/api/resource`)],
    [
      'the ath of another token',
      (s, key) => proof(key, 'GET', `${s.url}/api/resource`, { token: 'another-token' }),
    ],
    [
      'typ JWT',
      (s, key, token) =>
        proof(key, 'GET', `${s.url}/api/resource`, { token, header: { typ: 'JWT' } }),
    ],
    [
      'alg none',
      async (s, key, token) =>
        `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })}.${b64({
          htm: 'GET',
          htu: `${s.url}/api/resource`,
          jti: randomUUID(),
          iat: NOW,
          ath: ath(token),
        })}.`,
    ],
    [
      'alg HS256',
      async (s, key, token) => {
        const input = `${b64({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.jwk })}.${b64({
          htm: 'GET',
          htu: `${s.url}/api/resource`,
          jti: randomUUID(),
          iat: NOW,
          ath: ath(token),
        })}`
        return `${input}.${createHmac('sha256', key.jkt).update(input).digest('base64url')}`
      },
    ],
    [
      'alg ES384, though signed as ES256',
      async (s, key, token) => {
        const input = `${b64({ alg: 'ES384', typ: 'dpop+jwt', jwk: key.jwk })}.${b64({
          htm: 'GET',
          htu: `${s.url}/api/resource`,
          jti: randomUUID(),
          iat: NOW,
          ath: ath(token),
        })}`
        const algorithm = { name: 'ECDSA', hash: 'SHA-256' }
        const signature = await crypto.subtle.sign(algorithm, key.privateKey, Buffer.from(input))
        return `${input}.${Buffer.from(signature).toString('base64url')}`
      },
    ],
    [
      "another key's proof (the token is bound to this one)",
      async (s, _, token) => proof(await newKey(), 'GET', `${s.url}/api/resource`, { token }),
    ],
    [
      'two proofs',
      async (s, key, token) => {
        const one = await proof(key, 'GET', `${s.url}/api/resource`, { token })
        const two = await proof(key, 'GET', `${s.url}/api/resource`, { token })
        return `${one}, ${two}`
      },
    ],
  ])('answer 401 invalid_dpop_proof to %s', async (_, makeProof) => {
    const server = await start()
    const { key, accessToken } = await session(server)

    const reply = await resource(server, accessToken, await makeProof(server, key, accessToken))
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('DPoP error="invalid_dpop_proof"')
    expect(reply.json).toEqual({
      error: 'invalid_dpop_proof',
      error_description: expect.any(String),
    })
    expect(JSON.stringify(reply.json)).not.toContain(accessToken)
    expect(server.counters).toMatchObject({
      dpopProofsRefused: 1,
      dpopReplays: 0,
      unauthorized: 0,
      protectedOk: 0,
    })
    // The same token with a good proof is fine: only the proof was wrong.
    expect((await goodResource(server, key, accessToken)).status).toBe(200)
  })

  it('refuse a proof whose jwk holds the private key, even from the bound key', async () => {
    const server = await start()
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])
    const jwk = await exportJWK(pair.privateKey)
    expect(jwk.d).toEqual(expect.any(String))
    // The thumbprint only covers crv, kty, x and y: the session is bound to this very key.
    const leaky = { privateKey: pair.privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) }
    const { accessToken: token } = server.login('ada', { jkt: leaky.jkt })

    const reply = await resource(
      server,
      token,
      await proof(leaky, 'GET', `${server.url}/api/resource`, { token }),
    )
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('DPoP error="invalid_dpop_proof"')
    const { d: _, ...publicJwk } = jwk
    const fixed = { ...leaky, jwk: publicJwk }
    const ok = await resource(
      server,
      token,
      await proof(fixed, 'GET', `${server.url}/api/resource`, { token }),
    )
    expect(ok.status).toBe(200)
  })

  it('accept an iat at the edge of the window, on the server clock, and honour iatWindow', async () => {
    const server = await start()
    const { key, accessToken: token } = await session(server)
    const url = `${server.url}/api/resource`
    for (const iat of [NOW - 60, NOW + 60]) {
      expect(
        (await resource(server, token, await proof(key, 'GET', url, { token, iat }))).status,
      ).toBe(200)
    }

    const wide = await start({ dpop: { iatWindow: 300 } })
    const other = await session(wide)
    const wideUrl = `${wide.url}/api/resource`
    const old = await proof(other.key, 'GET', wideUrl, { token: other.accessToken, iat: NOW - 299 })
    expect((await resource(wide, other.accessToken, old)).status).toBe(200)
    const older = await proof(other.key, 'GET', wideUrl, {
      token: other.accessToken,
      iat: NOW - 301,
    })
    expect((await resource(wide, other.accessToken, older)).status).toBe(401)
  })

  it('refuse a replayed proof (same jti), counted as a replay', async () => {
    const server = await start()
    const { key, accessToken: token } = await session(server)
    const once = await proof(key, 'GET', `${server.url}/api/resource`, { token })

    expect((await resource(server, token, once)).status).toBe(200)
    const again = await resource(server, token, once)
    expect(again.status).toBe(401)
    expect(again.headers.get('www-authenticate')).toBe('DPoP error="invalid_dpop_proof"')
    expect(server.counters).toMatchObject({ protectedOk: 1, dpopProofsRefused: 1, dpopReplays: 1 })
  })

  it('refuse a jti already used at the token endpoint', async () => {
    const server = await start()
    const key = await newKey()
    const jti = randomUUID()
    const loginProof = await proof(key, 'POST', `${server.url}/auth/login`, { claims: { jti } })
    const { json } = await login(server, key, loginProof)
    const token = json.accessToken as string
    const reused = await proof(key, 'GET', `${server.url}/api/resource`, { token, claims: { jti } })
    expect((await resource(server, token, reused)).status).toBe(401)
    expect(server.counters.dpopReplays).toBe(1)
  })

  it.each<[string, (s: TestAuthServer, token: string) => Record<string, string>]>([
    ['no Authorization', () => ({})],
    ['the Bearer scheme', (_, token) => ({ authorization: `Bearer ${token}` })],
    ['a garbage token', () => ({ authorization: 'DPoP garbage' })],
  ])('answer 401 invalid_token to %s, before looking at the proof', async (_, headers) => {
    const server = await start()
    const { key, accessToken: token } = await session(server)
    const dpop = await proof(key, 'GET', `${server.url}/api/resource`, { token })

    const reply = await send(server, 'GET', '/api/resource', { ...headers(server, token), dpop })
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('DPoP error="invalid_token"')
    expect(reply.json).toEqual({ error: 'invalid_token' })
    expect(server.counters).toMatchObject({ unauthorized: 1, dpopProofsRefused: 0 })
  })

  it('answer invalid_token for an expired token even with no proof, and keep the soft-401 quirk', async () => {
    const server = await start()
    const { accessToken } = await session(server)
    server.expireAccessTokens()

    const reply = await resource(server, accessToken, undefined)
    expect(reply.status).toBe(401)
    expect(reply.headers.get('www-authenticate')).toBe('DPoP error="invalid_token"')
    const soft = await resource(server, accessToken, undefined, { path: '/api/soft-401' })
    expect(soft.status).toBe(200)
    expect(soft.json).toEqual({ code: 401, message: 'token expired' })
    expect(server.counters).toMatchObject({ unauthorized: 2, dpopProofsRefused: 0 })
  })

  it('a Bearer server ignores DPoP: Bearer tokens, Bearer challenges, no DPoP counters', async () => {
    const server = await start({})
    const { accessToken } = server.login()
    const ok = await send(server, 'GET', '/api/resource', {
      authorization: `Bearer ${accessToken}`,
    })
    expect(ok.status).toBe(200)
    const dpop = await send(server, 'GET', '/api/resource', {
      authorization: `DPoP ${accessToken}`,
    })
    expect(dpop.status).toBe(401)
    expect(dpop.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
    expect(dpop.headers.get('dpop-nonce')).toBeNull()
    expect(Object.keys(server.counters).filter((name) => name.startsWith('dpop'))).toEqual([])
  })
})

describe('DPoP nonces', () => {
  it('resource nonces: challenge with use_dpop_nonce and the nonce, then accept it', async () => {
    const server = await start({ dpop: { nonce: 'resource' } })
    const { key, accessToken } = await session(server)
    const nonce = server.dpopNonce
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{16,}$/)

    const challenged = await goodResource(server, key, accessToken)
    expect(challenged.status).toBe(401)
    expect(challenged.headers.get('www-authenticate')).toBe('DPoP error="use_dpop_nonce"')
    expect(challenged.headers.get('dpop-nonce')).toBe(nonce)
    expect(challenged.json.error).toBe('use_dpop_nonce')

    const wrong = await goodResource(server, key, accessToken, 'made-up')
    expect(wrong.status).toBe(401)
    expect(wrong.headers.get('www-authenticate')).toBe('DPoP error="use_dpop_nonce"')

    const retried = await goodResource(server, key, accessToken, nonce)
    expect(retried.status).toBe(200)
    expect(server.counters).toMatchObject({
      dpopNonceChallenges: 2,
      dpopProofsRefused: 0,
      unauthorized: 0,
      protectedOk: 1,
    })
  })

  it('resource nonces: an invalid token or proof is told so, not challenged for a nonce', async () => {
    const server = await start({ dpop: { nonce: 'resource' } })
    const { key, accessToken } = await session(server)
    const badProof = await proof(key, 'GET', `${server.url}/api/other`, { token: accessToken })
    const refused = await resource(server, accessToken, badProof)
    expect(refused.headers.get('www-authenticate')).toBe('DPoP error="invalid_dpop_proof"')

    server.expireAccessTokens()
    const expired = await goodResource(server, key, accessToken)
    expect(expired.headers.get('www-authenticate')).toBe('DPoP error="invalid_token"')
    expect(server.counters).toMatchObject({
      dpopNonceChallenges: 0,
      dpopProofsRefused: 1,
      unauthorized: 1,
    })
  })

  it('resource nonces: token routes need none', async () => {
    const server = await start({ dpop: { nonce: 'resource' } })
    const key = await newKey()
    const reply = await login(server, key)
    expect(reply.status).toBe(200)
    expect((await refresh(server, key, reply.json.refreshToken as string)).status).toBe(200)
  })

  it('rotateDpopNonce makes the old nonce stale: a new challenge, with the new nonce', async () => {
    const server = await start({ dpop: { nonce: 'both' } })
    const { key, accessToken } = await session(server)
    const old = server.dpopNonce as string
    expect((await goodResource(server, key, accessToken, old)).status).toBe(200)

    const fresh = server.rotateDpopNonce()
    expect(fresh).not.toBe(old)
    expect(server.dpopNonce).toBe(fresh)
    const stale = await goodResource(server, key, accessToken, old)
    expect(stale.status).toBe(401)
    expect(stale.headers.get('www-authenticate')).toBe('DPoP error="use_dpop_nonce"')
    expect(stale.headers.get('dpop-nonce')).toBe(fresh)
    expect((await goodResource(server, key, accessToken, fresh)).status).toBe(200)
  })

  it('token nonces: login is challenged with 400 use_dpop_nonce, then accepted', async () => {
    const server = await start({ dpop: { nonce: 'token' } })
    const key = await newKey()
    const challenged = await login(server, key)
    expect(challenged.status).toBe(400)
    expect(challenged.json).toEqual({
      error: 'use_dpop_nonce',
      error_description: expect.any(String),
    })
    const nonce = challenged.headers.get('dpop-nonce') as string
    expect(nonce).toBe(server.dpopNonce)

    const url = `${server.url}/auth/login`
    const accepted = await login(server, key, await proof(key, 'POST', url, { nonce }))
    expect(accepted.status).toBe(200)
    expect(server.counters).toMatchObject({ logins: 1, dpopNonceChallenges: 1 })
    // Resources need no nonce in this mode.
    expect((await goodResource(server, key, accepted.json.accessToken as string)).status).toBe(200)
  })

  it.each(['/auth/refresh', '/oauth/token'])(
    'token nonces: a challenged %s spends nothing, takes no fault, is no refresh failure',
    async (path) => {
      const server = await start({ dpop: { nonce: 'token' } })
      const { key, refreshToken } = await session(server)
      server.failNextRefresh(503)
      const call = (nonce?: string) =>
        proof(key, 'POST', `${server.url}${path}`, { nonce }).then((dpop) =>
          path === '/auth/refresh'
            ? refresh(server, key, refreshToken, dpop)
            : oauthToken(
                server,
                key,
                { grant_type: 'refresh_token', refresh_token: refreshToken },
                dpop,
              ),
        )

      const challenged = await call()
      expect(challenged.status).toBe(400)
      expect(challenged.json.error).toBe('use_dpop_nonce')
      expect(challenged.headers.get('dpop-nonce')).toBe(server.dpopNonce)
      expect(server.counters).toMatchObject({
        refreshCalls: 1,
        refreshFailures: 0,
        refreshSuccesses: 0,
        dpopNonceChallenges: 1,
      })

      // The queued fault is still there for the next well-formed call...
      expect((await call(server.dpopNonce)).status).toBe(503)
      // ...and the token was never spent.
      const done = await call(server.dpopNonce)
      expect(done.status).toBe(200)
      expect(server.counters).toMatchObject({
        refreshCalls: 3,
        refreshFailures: 1,
        refreshSuccesses: 1,
        reuseDetections: 0,
      })
    },
  )

  it('label every application response with DPoP-Nonce, and expose it to browsers', async () => {
    const server = await start({ dpop: { nonce: 'both' } })
    const nonce = server.dpopNonce
    const origin = 'http://localhost:5173'
    const replies = [
      await send(server, 'GET', '/public', { origin }),
      await send(server, 'GET', '/nowhere'),
      await send(server, 'GET', '/api/resource'),
      await send(server, 'GET', '/.well-known/openid-configuration'),
      await login(server, await newKey(), null),
      await send(server, 'POST', '/auth/logout', {}, '{}'),
    ]
    for (const reply of replies) expect(reply.headers.get('dpop-nonce')).toBe(nonce)
    expect(replies[0]?.headers.get('access-control-expose-headers')).toBe(
      'www-authenticate, retry-after, dpop-nonce',
    )

    const preflight = await send(server, 'OPTIONS', '/api/resource', {
      origin,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization, dpop',
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-headers')).toBe(
      'authorization, content-type, dpop',
    )

    const control = await send(server, 'GET', '/__control/status')
    expect(control.headers.get('dpop-nonce')).toBeNull()
  })

  it('without nonces: no DPoP-Nonce header, dpopNonce undefined, rotation refused', async () => {
    const server = await start()
    const reply = await send(server, 'GET', '/public')
    expect(reply.headers.get('dpop-nonce')).toBeNull()
    expect(server.dpopNonce).toBeUndefined()
    expect(() => server.rotateDpopNonce()).toThrow(/nonces are off/)
    const plain = await start({})
    expect(() => plain.rotateDpopNonce()).toThrow(/DPoP is off/)
  })
})

describe('counters and control routes', () => {
  it('count challenges, refusals and replays; resetCounters zeroes them', async () => {
    const server = await start({ dpop: { nonce: 'resource' } })
    const { key, accessToken: token } = await session(server)
    const url = `${server.url}/api/resource`
    const nonce = server.dpopNonce
    await resource(server, token, await proof(key, 'GET', url, { token }))
    const once = await proof(key, 'GET', url, { token, nonce })
    await resource(server, token, once)
    await resource(server, token, once)
    await resource(server, token, undefined)

    expect(server.counters).toMatchObject({
      dpopNonceChallenges: 1,
      dpopProofsRefused: 2,
      dpopReplays: 1,
      protectedOk: 1,
      unauthorized: 0,
    })
    expect((await send(server, 'GET', '/__control/counters')).json).toMatchObject({
      dpopNonceChallenges: 1,
      dpopProofsRefused: 2,
      dpopReplays: 1,
    })
    server.resetCounters()
    expect(server.counters).toMatchObject({
      dpopNonceChallenges: 0,
      dpopProofsRefused: 0,
      dpopReplays: 0,
    })
  })

  it('read and rotate the nonce over /__control', async () => {
    const server = await start({ dpop: { nonce: 'resource' } })
    const { key, accessToken } = await session(server)
    const old = server.dpopNonce

    const read = await send(server, 'GET', '/__control/dpop-nonce')
    expect(read.json).toEqual({ nonce: old })
    expect((await send(server, 'GET', '/__control/status')).json.dpopNonce).toBe(old)

    const rotated = await send(server, 'POST', '/__control/rotate-dpop-nonce')
    expect(rotated.status).toBe(200)
    expect(rotated.json.nonce).toBe(server.dpopNonce)
    expect(rotated.json.nonce).not.toBe(old)
    const stale = await goodResource(server, key, accessToken, old)
    expect(stale.status).toBe(401)
    expect(stale.headers.get('dpop-nonce')).toBe(rotated.json.nonce)

    const plain = await start({ dpop: {} })
    expect((await send(plain, 'POST', '/__control/rotate-dpop-nonce')).status).toBe(400)
    expect((await send(plain, 'GET', '/__control/dpop-nonce')).json).toEqual({ nonce: null })
    expect((await send(plain, 'GET', '/__control/status')).json).not.toHaveProperty('dpopNonce')
  })

  it('log in bound sessions over /__control/login {jkt}', async () => {
    const server = await start()
    const key = await newKey()
    const post = (body: unknown) =>
      send(
        server,
        'POST',
        '/__control/login',
        { 'content-type': 'application/json' },
        JSON.stringify(body),
      )

    const bound = await post({ username: 'ada', jkt: key.jkt })
    expect(bound.status).toBe(200)
    expect(bound.json.tokenType).toBe('DPoP')
    expect(cnf(bound.json.accessToken as string)).toEqual({ jkt: key.jkt })
    expect((await goodResource(server, key, bound.json.accessToken as string)).status).toBe(200)

    const unbound = await post({ username: 'ada' })
    expect(unbound.status).toBe(400)
    expect(unbound.json.error).toBe('invalid_request')
    expect(server.counters.logins).toBe(1)
  })
})
