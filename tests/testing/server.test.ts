import { createHmac } from 'node:crypto'
import { Agent, request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { assign, createActor, createMachine } from 'xstate'
import {
  createManualClock,
  createTestAuthServer,
  decodeJwt,
  type RefreshFaultKind,
  type TestAuthServer,
  type TestAuthServerOptions,
} from '../../src/testing/index.js'

const open: TestAuthServer[] = []

afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()))
})

async function start(options?: TestAuthServerOptions): Promise<TestAuthServer> {
  const server = await createTestAuthServer(options)
  open.push(server)
  return server
}

interface Reply {
  status: number
  headers: Headers
  text: string
  json: unknown
}

async function call(
  server: TestAuthServer,
  method: string,
  path: string,
  init: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  let body: string | undefined
  if (init.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
  }
  const res = await fetch(`${server.url}${path}`, { method, headers, body })
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

const refresh = (server: TestAuthServer, refreshToken: string) =>
  call(server, 'POST', '/auth/refresh', { body: { refreshToken } })

const resource = (server: TestAuthServer, token?: string) =>
  call(server, 'GET', '/api/resource', token === undefined ? {} : { token })

function tokensOf(reply: Reply): { accessToken: string; refreshToken: string } {
  const body = reply.json as { accessToken: string; refreshToken: string }
  return { accessToken: body.accessToken, refreshToken: body.refreshToken }
}

describe('login', () => {
  it('issues tokens for any user with the password "secret"', async () => {
    const server = await start()
    const reply = await call(server, 'POST', '/auth/login', {
      body: { username: 'ada', password: 'secret' },
    })
    expect(reply.status).toBe(200)
    expect(reply.headers.get('cache-control')).toBe('no-store')
    expect(reply.json).toEqual({
      accessToken: expect.any(String),
      refreshToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      expiresIn: 1800,
      tokenType: 'Bearer',
    })
    expect(server.counters.logins).toBe(1)
  })

  it('rejects a wrong password or an empty user name, and bad bodies', async () => {
    const server = await start()
    for (const body of [
      { username: 'ada', password: 'nope' },
      { username: '', password: 'secret' },
    ]) {
      const reply = await call(server, 'POST', '/auth/login', { body })
      expect(reply.status).toBe(401)
      expect(reply.json).toEqual({ error: 'invalid_credentials' })
    }
    const bad = await call(server, 'POST', '/auth/login', { body: 'not json' })
    expect(bad.status).toBe(400)
    expect(bad.json).toEqual({ error: 'invalid_request' })
    expect((await call(server, 'GET', '/auth/login')).status).toBe(405)
    expect(server.counters.logins).toBe(0)
  })

  it('issues sessions programmatically, each in its own family', () =>
    start({ accessTokenTtl: 60 }).then((server) => {
      const a = server.login()
      const b = server.login('bob')
      expect(a.expiresIn).toBe(60)
      expect(server.verifyAccessToken(a.accessToken)?.sub).toBe('user')
      expect(server.verifyAccessToken(b.accessToken)?.sub).toBe('bob')
      expect(server.verifyAccessToken(a.accessToken)?.sid).not.toBe(
        server.verifyAccessToken(b.accessToken)?.sid,
      )
      expect(server.counters.logins).toBe(2)
    }))
})

describe('access tokens', () => {
  it('are HS256 JWTs with sub, iat, exp, jti and sid', async () => {
    const now = 1_700_000_000_500
    const server = await start({ now: () => now, accessTokenTtl: 600 })
    const { accessToken } = server.login('ada')
    const decoded = decodeJwt(accessToken)
    expect(decoded?.header).toEqual({ alg: 'HS256', typ: 'JWT' })
    expect(decoded?.payload).toEqual({
      sub: 'ada',
      iat: 1_700_000_000,
      exp: 1_700_000_600,
      jti: expect.any(String),
      sid: expect.any(String),
    })
    expect(server.verifyAccessToken(accessToken)).toEqual(decoded?.payload)
    expect(decodeJwt('not-a-jwt')).toBeNull()
  })

  it('are rejected when tampered with, forged, unsigned or malformed', async () => {
    const server = await start()
    const { accessToken } = server.login('ada')
    const [header, payload, signature] = accessToken.split('.') as [string, string, string]
    const claims = decodeJwt(accessToken)?.payload
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const otherSub = b64({ ...claims, sub: 'root' })
    const forgedSignature = createHmac('sha256', 'guessed-secret')
      .update(`${header}.${otherSub}`)
      .digest('base64url')
    const flipped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`
    const bad = [
      `${header}.${otherSub}.${signature}`,
      `${header}.${otherSub}.${forgedSignature}`,
      `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      `${header}.${payload}.${flipped}`,
      `${header}.${payload}`,
      'garbage',
    ]
    for (const token of bad) {
      expect(server.verifyAccessToken(token)).toBeNull()
      const reply = await resource(server, token)
      expect(reply.status).toBe(401)
    }
    expect((await resource(server, accessToken)).status).toBe(200)
  })

  it('expire on the server clock (exp <= now)', async () => {
    const clock = createManualClock(1_000_000)
    const server = await start({ now: clock.now, accessTokenTtl: 60 })
    const { accessToken } = server.login()
    clock.advance(59_000)
    expect((await resource(server, accessToken)).status).toBe(200)
    clock.advance(1_000)
    expect((await resource(server, accessToken)).status).toBe(401)
  })

  it('are from a per-server secret', async () => {
    const a = await start()
    const b = await start()
    expect(b.verifyAccessToken(a.login().accessToken)).toBeNull()
  })
})

describe('protected routes', () => {
  it('answer 200 with sub, path, method and a running count', async () => {
    const server = await start()
    const { accessToken } = server.login('ada')
    const first = await resource(server, accessToken)
    expect(first.status).toBe(200)
    expect(first.json).toEqual({ ok: true, sub: 'ada', path: '/api/resource', method: 'GET', n: 1 })
    const second = await call(server, 'DELETE', '/api/things/7', { token: accessToken })
    expect(second.json).toEqual({
      ok: true,
      sub: 'ada',
      path: '/api/things/7',
      method: 'DELETE',
      n: 2,
    })
    expect(server.counters.protectedOk).toBe(2)
  })

  it('answer 401 invalid_token with WWW-Authenticate without a valid bearer token', async () => {
    const server = await start()
    const headerSets: Record<string, string>[] = [{}, { authorization: 'Basic dXNlcjpzZWNyZXQ=' }]
    for (const headers of headerSets) {
      const reply = await call(server, 'GET', '/api/resource', { headers })
      expect(reply.status).toBe(401)
      expect(reply.json).toEqual({ error: 'invalid_token' })
      expect(reply.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
    }
    expect(server.counters.unauthorized).toBe(2)
    expect(server.counters.protectedOk).toBe(0)
  })

  it('has a soft-401 quirk route that answers 200 { code: 401 }', async () => {
    const server = await start()
    const bad = await call(server, 'GET', '/api/soft-401', { token: 'nope' })
    expect(bad.status).toBe(200)
    expect(bad.json).toEqual({ code: 401, message: 'token expired' })
    const good = await call(server, 'GET', '/api/soft-401', { token: server.login().accessToken })
    expect(good.json).toMatchObject({ ok: true, path: '/api/soft-401' })
    expect(server.counters.unauthorized).toBe(1)
  })

  it('serves /public without auth and 404 JSON for unknown routes', async () => {
    const server = await start()
    const pub = await call(server, 'GET', '/public')
    expect([pub.status, pub.json]).toEqual([200, { ok: true }])
    const missing = await call(server, 'GET', '/nope')
    expect(missing.status).toBe(404)
    expect(missing.json).toMatchObject({ error: 'not_found' })
  })

  it('evaluates the token when answering, after a hold, not on arrival', async () => {
    const server = await start()
    const { accessToken } = server.login()
    const hold = server.hold('/api/')
    const pending = resource(server, accessToken)
    await hold.untilWaiting(1)
    server.expireAccessTokens()
    hold.release()
    expect((await pending).status).toBe(401)
  })
})

describe('refresh', () => {
  it('rotates: spends the presented token and issues a new one in the same family', async () => {
    const server = await start()
    const first = server.login('ada')
    const reply = await refresh(server, first.refreshToken)
    expect(reply.status).toBe(200)
    expect(reply.json).toEqual({
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      expiresIn: 1800,
      tokenType: 'Bearer',
    })
    const next = tokensOf(reply)
    expect(next.refreshToken).not.toBe(first.refreshToken)
    expect(next.accessToken).not.toBe(first.accessToken)
    expect(server.verifyAccessToken(next.accessToken)?.sid).toBe(
      server.verifyAccessToken(first.accessToken)?.sid,
    )
    expect((await resource(server, next.accessToken)).status).toBe(200)
    const again = await refresh(server, next.refreshToken)
    expect(again.status).toBe(200)
    expect(server.counters).toMatchObject({
      refreshCalls: 2,
      refreshSuccesses: 2,
      refreshFailures: 0,
    })
  })

  it('detects reuse of a spent token and revokes the whole family', async () => {
    const server = await start()
    const first = server.login('ada')
    const bystander = server.login('bob')
    const second = tokensOf(await refresh(server, first.refreshToken))
    const reuse = await refresh(server, first.refreshToken)
    expect(reuse.status).toBe(401)
    expect(reuse.json).toEqual({
      error: 'invalid_grant',
      error_description: 'refresh token reuse detected',
    })
    expect(server.counters.reuseDetections).toBe(1)
    const afterRevoke = await refresh(server, second.refreshToken)
    expect([afterRevoke.status, afterRevoke.json]).toEqual([401, { error: 'invalid_grant' }])
    expect((await resource(server, first.accessToken)).status).toBe(401)
    expect((await resource(server, second.accessToken)).status).toBe(401)
    expect((await resource(server, bystander.accessToken)).status).toBe(200)
    expect((await refresh(server, bystander.refreshToken)).status).toBe(200)
    expect(server.counters.reuseDetections).toBe(1)
  })

  it('rejects unknown and expired refresh tokens with invalid_grant', async () => {
    const clock = createManualClock(0)
    const server = await start({ now: clock.now, refreshTokenTtl: 3600 })
    const unknown = await refresh(server, 'made-up')
    expect([unknown.status, unknown.json]).toEqual([401, { error: 'invalid_grant' }])
    const { refreshToken } = server.login()
    clock.advance(3_600_000)
    const expired = await refresh(server, refreshToken)
    expect([expired.status, expired.json]).toEqual([401, { error: 'invalid_grant' }])
    expect(server.counters.reuseDetections).toBe(0)
    expect(server.counters.refreshFailures).toBe(2)
  })

  it('accepts the refresh token only in a JSON body', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    for (const body of [
      undefined,
      'not json',
      '[]',
      { refreshToken: '' },
      { token: refreshToken },
    ]) {
      const reply = await call(server, 'POST', '/auth/refresh', body === undefined ? {} : { body })
      expect([reply.status, reply.json]).toEqual([400, { error: 'invalid_request' }])
    }
    const inUrl = await call(server, 'POST', `/auth/refresh?refresh_token=${refreshToken}`, {
      body: { refreshToken },
    })
    expect(inUrl.status).toBe(400)
    // None of the rejected calls spent the token.
    expect((await refresh(server, refreshToken)).status).toBe(200)
  })

  it('keeps the old refresh token and returns none when rotation is off', async () => {
    const server = await start({ rotateRefreshTokens: false })
    const { refreshToken } = server.login()
    const first = await refresh(server, refreshToken)
    expect(first.json).toEqual({
      accessToken: expect.any(String),
      expiresIn: 1800,
      tokenType: 'Bearer',
    })
    expect((await refresh(server, refreshToken)).status).toBe(200)
    expect(server.counters.reuseDetections).toBe(0)
  })
})

describe('logout and server-side revocation', () => {
  it('logout revokes the family; unknown tokens still get 204', async () => {
    const server = await start()
    const session = server.login()
    const out = await call(server, 'POST', '/auth/logout', {
      body: { refreshToken: session.refreshToken },
    })
    expect(out.status).toBe(204)
    expect((await resource(server, session.accessToken)).status).toBe(401)
    expect((await refresh(server, session.refreshToken)).status).toBe(401)
    const unknown = await call(server, 'POST', '/auth/logout', { body: { refreshToken: 'x' } })
    expect(unknown.status).toBe(204)
  })

  it('expireAccessTokens invalidates issued access tokens only', async () => {
    const server = await start()
    const session = server.login()
    server.expireAccessTokens()
    expect((await resource(server, session.accessToken)).status).toBe(401)
    const next = tokensOf(await refresh(server, session.refreshToken))
    expect((await resource(server, next.accessToken)).status).toBe(200)
    expect((await resource(server, server.login().accessToken)).status).toBe(200)
  })

  it('revokeSessions revokes every refresh and access token', async () => {
    const server = await start()
    const a = server.login('a')
    const b = server.login('b')
    server.revokeSessions()
    for (const session of [a, b]) {
      expect((await resource(server, session.accessToken)).status).toBe(401)
      expect((await refresh(server, session.refreshToken)).status).toBe(401)
    }
    expect((await resource(server, server.login().accessToken)).status).toBe(200)
  })
})

describe('refresh faults', () => {
  const answered: [RefreshFaultKind, number, unknown][] = [
    [500, 500, { error: 'server_error' }],
    [503, 503, { error: 'temporarily_unavailable' }],
    [429, 429, { error: 'rate_limited' }],
    [400, 400, { error: 'invalid_grant' }],
    [401, 401, { error: 'invalid_grant' }],
    [403, 403, { error: 'invalid_grant' }],
    ['malformed-json', 200, { access: 42 }],
  ]

  it.each(answered)('%s answers %i without spending the token', async (kind, status, body) => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh(kind)
    const failed = await refresh(server, refreshToken)
    expect([failed.status, failed.json]).toEqual([status, body])
    if (kind === 429) expect(failed.headers.get('retry-after')).toBe('1')
    expect((await refresh(server, refreshToken)).status).toBe(200)
    expect(server.counters).toMatchObject({ refreshFailures: 1, refreshSuccesses: 1 })
  })

  it("'malformed' answers 200 with HTML", async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh('malformed')
    const reply = await refresh(server, refreshToken)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toMatch(/^text\/html/)
    expect(reply.text).toBe('<html>oops</html>')
  })

  it('queues faults in order, honours times, Infinity and clearFaults', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh(503, { times: 2 })
    server.failNextRefresh(401)
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await refresh(server, refreshToken)).status)
    expect(statuses).toEqual([503, 503, 401, 200])
    const { refreshToken: next } = tokensOf(
      await call(server, 'POST', '/auth/login', {
        body: { username: 'u', password: 'secret' },
      }),
    )
    server.failNextRefresh(500, { times: Number.POSITIVE_INFINITY })
    for (let i = 0; i < 5; i++) expect((await refresh(server, next)).status).toBe(500)
    server.clearFaults()
    expect((await refresh(server, next)).status).toBe(200)
    expect(() => server.failNextRefresh(500, { times: 1.5 })).toThrow(RangeError)
  })

  it('afterRefresh: the refresh is processed and spent, then its answer is replaced', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh(503, { afterRefresh: true })
    const status = await call(server, 'GET', '/__control/status')
    expect((status.json as { faults: unknown }).faults).toEqual([
      { kind: 503, remaining: 1, afterRefresh: true },
    ])
    const failed = await refresh(server, refreshToken)
    expect([failed.status, failed.json]).toEqual([503, { error: 'temporarily_unavailable' }])
    expect(server.counters).toMatchObject({ refreshSuccesses: 1, refreshFailures: 0 })
    // The client never saw the new tokens: presenting the spent one again is reuse.
    const again = await refresh(server, refreshToken)
    expect(again.status).toBe(401)
    expect(server.counters).toMatchObject({ reuseDetections: 1, refreshFailures: 1 })
  })

  it("afterRefresh 'reset': the answer is lost on its way back, after rotation", async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh('reset', { afterRefresh: true })
    await expect(refresh(server, refreshToken)).rejects.toThrow()
    expect(server.counters).toMatchObject({ refreshCalls: 1, refreshSuccesses: 1 })
    expect((await refresh(server, refreshToken)).status).toBe(401)
    expect(server.counters.reuseDetections).toBe(1)
  })

  it("'hang' holds the call until releaseHung, then answers 503", async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh('hang')
    const pending = refresh(server, refreshToken)
    await server.waitFor((s) => s.counters.refreshFailures === 1)
    expect(server.refreshInFlight).toBe(1)
    server.releaseHung()
    const reply = await pending
    expect([reply.status, reply.json]).toEqual([503, { error: 'temporarily_unavailable' }])
    expect(server.refreshInFlight).toBe(0)
    expect((await refresh(server, refreshToken)).status).toBe(200)
  })

  it("'hang' is cut off by close(), which does not wait for it", async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh('hang')
    const pending = refresh(server, refreshToken).then(
      () => 'answered',
      () => 'failed',
    )
    await server.waitFor((s) => s.refreshInFlight === 1 && s.counters.refreshFailures === 1)
    await server.close()
    expect(await pending).toBe('failed')
  })

  it("'reset' destroys the socket without a response", async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh('reset')
    await expect(refresh(server, refreshToken)).rejects.toThrow(TypeError)
    await server.waitFor((s) => s.refreshInFlight === 0)
    expect((await refresh(server, refreshToken)).status).toBe(200)
  })

  it('can be driven over the control routes', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    const set = await call(server, 'POST', '/__control/fail-next-refresh', {
      body: { kind: '503', times: null },
    })
    expect(set.status).toBe(204)
    expect((await refresh(server, refreshToken)).status).toBe(503)
    const status = await call(server, 'GET', '/__control/status')
    expect(status.json).toMatchObject({ faults: [{ kind: 503, remaining: null }] })
    expect((await call(server, 'POST', '/__control/clear-faults')).status).toBe(204)
    expect((await refresh(server, refreshToken)).status).toBe(200)
    const bad = await call(server, 'POST', '/__control/fail-next-refresh', { body: { kind: 418 } })
    expect(bad.status).toBe(400)
  })
})

describe('holds, concurrency and delays', () => {
  it('holds matching requests until release, and counts refreshes in flight', async () => {
    const server = await start()
    const sessions = [server.login('a'), server.login('b'), server.login('c')]
    const hold = server.hold('/auth/refresh')
    const pending = sessions.map((s) => refresh(server, s.refreshToken))
    await hold.untilWaiting(3)
    expect(hold.waiting()).toBe(3)
    expect(server.refreshInFlight).toBe(3)
    expect(server.maxConcurrentRefreshes).toBe(3)
    expect(server.counters.refreshSuccesses).toBe(0)
    // Other paths are not held.
    expect((await call(server, 'GET', '/public')).status).toBe(200)
    hold.release()
    const replies = await Promise.all(pending)
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200])
    expect(hold.waiting()).toBe(0)
    expect(server.refreshInFlight).toBe(0)
    // Released holds do not hold later requests.
    const later = tokensOf(replies[0] as Reply)
    expect((await refresh(server, later.refreshToken)).status).toBe(200)
    expect(server.maxConcurrentRefreshes).toBe(3)
  })

  it('a refresh abandoned by its client is still processed, like on a real server', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    const hold = server.hold('/auth/refresh')
    const controller = new AbortController()
    const abandoned = fetch(`${server.url}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken }),
      signal: controller.signal,
    })
    await hold.untilWaiting(1)
    expect(server.refreshInFlight).toBe(1)
    controller.abort()
    await expect(abandoned).rejects.toThrow()
    // No longer outstanding for the client...
    await server.waitFor((s) => s.refreshInFlight === 0)
    hold.release()
    // ...but the server still gets to it, and the token is spent.
    await server.waitFor((s) => s.counters.refreshSuccesses === 1)
    const retried = await refresh(server, refreshToken)
    expect(retried.json).toMatchObject({ error_description: 'refresh token reuse detected' })
  })

  it('a fault queued while a refresh is held applies to it', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    const hold = server.hold('/auth/')
    const pending = refresh(server, refreshToken)
    await hold.untilWaiting(1)
    server.failNextRefresh(401)
    hold.release()
    expect((await pending).status).toBe(401)
  })

  it('holds can be placed and released over the control routes', async () => {
    const server = await start()
    const placed = await call(server, 'POST', '/__control/hold', { body: { path: '/public' } })
    const { id } = placed.json as { id: number }
    const pending = call(server, 'GET', '/public')
    await server.waitFor((s) => s.counters.requests === 1)
    const status = await call(server, 'GET', '/__control/status')
    expect(status.json).toMatchObject({ holds: [{ id, pathPrefix: '/public', waiting: 1 }] })
    expect((await call(server, 'POST', '/__control/release', { body: { id } })).status).toBe(204)
    expect((await pending).status).toBe(200)
  })

  it('close() drops held requests and rejects pending waits', async () => {
    const server = await start()
    const hold = server.hold('/')
    const pending = call(server, 'GET', '/public').then(
      () => 'answered',
      () => 'failed',
    )
    await hold.untilWaiting(1)
    const never = expect(server.waitFor(() => false)).rejects.toThrow(/closed/)
    const neverWaiting = expect(hold.untilWaiting(5)).rejects.toThrow(/closed/)
    await server.close()
    expect(await pending).toBe('failed')
    await never
    await neverWaiting
    await expect(server.waitFor(() => true)).rejects.toThrow(/closed/)
  })

  it('delays matching requests by real time, and close() cuts delays short', async () => {
    const server = await start()
    server.delay('/public', 40)
    const started = performance.now()
    expect((await call(server, 'GET', '/public')).status).toBe(200)
    expect(performance.now() - started).toBeGreaterThanOrEqual(35)
    server.clearDelays()
    server.delay('/public', 60_000)
    const pending = call(server, 'GET', '/public').then(
      () => 'answered',
      () => 'failed',
    )
    await server.waitFor((s) => s.counters.requests === 2)
    await server.close()
    expect(await pending).toBe('failed')
  })
})

describe('observability', () => {
  it('logs every request with method, path, query, authorization, body and time', async () => {
    let now = 5_000
    const server = await start({ now: () => now })
    const session = server.login()
    now = 6_000
    await resource(server, session.accessToken)
    await call(server, 'GET', '/public?x=1&y=2')
    await refresh(server, session.refreshToken)
    await call(server, 'GET', '/__control/counters')
    expect(server.requests).toEqual([
      {
        method: 'GET',
        path: '/api/resource',
        query: '',
        authorization: `Bearer ${session.accessToken}`,
        at: 6_000,
      },
      { method: 'GET', path: '/public', query: 'x=1&y=2', at: 6_000 },
      {
        method: 'POST',
        path: '/auth/refresh',
        query: '',
        body: JSON.stringify({ refreshToken: session.refreshToken }),
        at: 6_000,
      },
    ])
    for (const entry of server.requests) {
      expect(`${entry.path}?${entry.query}`).not.toContain(session.refreshToken)
    }
  })

  it('counts, resets and serves counters over HTTP', async () => {
    const server = await start()
    const session = server.login()
    await resource(server, session.accessToken)
    await resource(server, 'bad')
    await refresh(server, session.refreshToken)
    const expected = {
      logins: 1,
      refreshCalls: 1,
      refreshSuccesses: 1,
      refreshFailures: 0,
      reuseDetections: 0,
      unauthorized: 1,
      protectedOk: 1,
      requests: 3,
    }
    expect(server.counters).toEqual(expected)
    expect((await call(server, 'GET', '/__control/counters')).json).toEqual(expected)
    server.resetCounters()
    expect(Object.values(server.counters).every((v) => v === 0)).toBe(true)
    expect(server.maxConcurrentRefreshes).toBe(0)
    // The counters are a snapshot: mutating one does not touch the server.
    const snapshot = server.counters as { logins: number }
    snapshot.logins = 99
    expect(server.counters.logins).toBe(0)
    expect((await call(server, 'POST', '/__control/reset-counters')).status).toBe(204)
  })

  it('waitFor resolves on the event that makes the predicate true', async () => {
    const server = await start()
    await server.waitFor(() => true)
    const seen = server.waitFor((s) => s.counters.logins === 1)
    server.login()
    await seen
    await expect(
      server.waitFor(() => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
  })

  it('answers CORS preflights and labels every response', async () => {
    const server = await start()
    const origin = 'http://localhost:5173'
    const pre = await call(server, 'OPTIONS', '/auth/refresh', {
      headers: { origin, 'access-control-request-method': 'POST' },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin)
    expect(pre.headers.get('access-control-allow-headers')).toBe('authorization, content-type')
    expect(pre.headers.get('access-control-allow-methods')).toBe(
      'GET,POST,PUT,PATCH,DELETE,OPTIONS',
    )
    const denied = await call(server, 'GET', '/api/resource', { headers: { origin } })
    expect(denied.headers.get('access-control-allow-origin')).toBe(origin)
    const anonymous = await call(server, 'GET', '/public')
    expect(anonymous.headers.get('access-control-allow-origin')).toBe('*')
    expect(server.counters.refreshCalls).toBe(0)
  })
})

describe('lifecycle', () => {
  it('closes despite idle keep-alive sockets, and is idempotent', async () => {
    const server = await start()
    const agent = new Agent({ keepAlive: true })
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${server.url}/public`, { agent }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(200)
    await Promise.all([server.close(), server.close()])
    await expect(fetch(`${server.url}/public`)).rejects.toThrow()
    agent.destroy()
  })

  it('listens on 127.0.0.1 and supports Symbol.asyncDispose', async () => {
    const server = await createTestAuthServer()
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
    expect(server.port).toBeGreaterThan(0)
    await server[Symbol.asyncDispose]()
    await expect(fetch(`${server.url}/public`)).rejects.toThrow()
  })
})

describe('createManualClock', () => {
  it('runs timers in due order as time advances, ties in scheduling order', () => {
    const clock = createManualClock(100)
    const ran: string[] = []
    clock.setTimeout(() => ran.push(`b@${clock.now()}`), 20)
    clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10)
    clock.setTimeout(() => ran.push(`c@${clock.now()}`), 20)
    expect(clock.pending()).toBe(3)
    clock.advance(15)
    expect(ran).toEqual(['a@110'])
    expect(clock.now()).toBe(115)
    clock.advance(5)
    expect(ran).toEqual(['a@110', 'b@120', 'c@120'])
    expect(clock.pending()).toBe(0)
  })

  it('runs timers scheduled during advance if they fall inside the window', () => {
    const clock = createManualClock()
    const ran: number[] = []
    clock.setTimeout(() => {
      ran.push(clock.now())
      clock.setTimeout(() => ran.push(clock.now()), 5)
      clock.setTimeout(() => ran.push(clock.now()), 50)
    }, 10)
    clock.advance(20)
    expect(ran).toEqual([10, 15])
    expect(clock.pending()).toBe(1)
    expect(clock.now()).toBe(20)
  })

  it('clears timers, runs everything, guards against runaway timers', () => {
    const clock = createManualClock()
    const ran: number[] = []
    const handle = clock.setTimeout(() => ran.push(1), 10)
    clock.setTimeout(() => ran.push(2), 30)
    clock.clearTimeout(handle)
    clock.clearTimeout('unknown')
    expect(clock.runAll()).toBe(1)
    expect(ran).toEqual([2])
    expect(clock.now()).toBe(30)
    const loop = (): void => {
      clock.setTimeout(loop, 1)
    }
    loop()
    expect(() => clock.runAll(50)).toThrow(/more than 50/)
    expect(() => clock.advance(-1)).toThrow(RangeError)
  })

  it('records the largest delay armed', () => {
    const clock = createManualClock()
    expect(clock.maxDelayArmed).toBe(0)
    clock.setTimeout(() => {}, 2 ** 31 - 1)
    clock.setTimeout(() => {}, 5)
    clock.setTimeout(() => {}, -5)
    expect(clock.maxDelayArmed).toBe(2 ** 31 - 1)
  })

  it("drives XState v5 delayed transitions through createActor's clock option", () => {
    const clock = createManualClock()
    const machine = createMachine({
      initial: 'waiting',
      context: { ticks: 0 },
      states: {
        waiting: {
          after: { 1000: { target: 'done', actions: assign({ ticks: 1 }) } },
        },
        done: {},
      },
    })
    const actor = createActor(machine, { clock }).start()
    clock.advance(999)
    expect(actor.getSnapshot().value).toBe('waiting')
    clock.advance(1)
    expect(actor.getSnapshot().value).toBe('done')
    expect(actor.getSnapshot().context.ticks).toBe(1)
    actor.stop()
  })
})
