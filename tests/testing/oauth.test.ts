import { afterEach, describe, expect, it } from 'vitest'
import {
  createTestAuthServer,
  TEST_PASSWORD,
  type TestAuthServer,
  type TestAuthServerOptions,
} from '../../src/testing/index.js'

// The standard OAuth 2.0 token endpoint of the test server, spoken to with bare fetch so
// the wire format itself is what is checked (tests/client/oauth.test.ts uses real libraries).

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
  json: Record<string, unknown>
}

async function token(
  server: TestAuthServer,
  params: Record<string, string>,
  { contentType = 'application/x-www-form-urlencoded', query = '' } = {},
): Promise<Reply> {
  const res = await fetch(`${server.url}/oauth/token${query}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new URLSearchParams(params).toString(),
  })
  return { status: res.status, headers: res.headers, json: await res.json() }
}

const passwordGrant = (server: TestAuthServer, username = 'ada') =>
  token(server, { grant_type: 'password', username, password: TEST_PASSWORD, client_id: 'app' })

const refreshGrant = (server: TestAuthServer, refreshToken: string) =>
  token(server, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'app' })

describe('POST /oauth/token', () => {
  it('answers the password grant with a snake_case Bearer token response, counted as a login', async () => {
    const server = await start({ accessTokenTtl: 900 })
    const reply = await passwordGrant(server)

    expect(reply.status).toBe(200)
    expect(reply.headers.get('cache-control')).toBe('no-store')
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
    expect(Object.keys(reply.json).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'token_type',
    ])
    expect(reply.json).toMatchObject({ token_type: 'Bearer', expires_in: 900 })
    expect(server.verifyAccessToken(reply.json.access_token as string)?.sub).toBe('ada')
    expect(server.counters).toMatchObject({ logins: 1, refreshCalls: 0 })
  })

  it('refuses wrong credentials with 400 invalid_grant', async () => {
    const server = await start()
    const reply = await token(server, {
      grant_type: 'password',
      username: 'ada',
      password: 'wrong',
      client_id: 'app',
    })
    expect(reply).toMatchObject({ status: 400, json: { error: 'invalid_grant' } })
    expect(server.counters.logins).toBe(0)
  })

  it('rotates on the refresh grant and counts it exactly like /auth/refresh', async () => {
    const server = await start()
    const first = server.login()
    const reply = await refreshGrant(server, first.refreshToken)

    expect(reply.status).toBe(200)
    expect(reply.json.refresh_token).toEqual(expect.any(String))
    expect(reply.json.refresh_token).not.toBe(first.refreshToken)
    expect(server.verifyAccessToken(reply.json.access_token as string)).not.toBeNull()
    expect(server.counters).toMatchObject({
      refreshCalls: 1,
      refreshSuccesses: 1,
      refreshFailures: 0,
    })
    expect(server.maxConcurrentRefreshes).toBe(1)
  })

  it('detects reuse across both routes: a token spent on /oauth/token revokes the family on /auth/refresh', async () => {
    const server = await start()
    const first = server.login()
    const rotated = await refreshGrant(server, first.refreshToken)

    const replay = await refreshGrant(server, first.refreshToken)
    expect(replay).toMatchObject({
      status: 400,
      json: { error: 'invalid_grant', error_description: 'refresh token reuse detected' },
    })
    // The whole family is gone, including the token the first refresh handed out.
    const json = await fetch(`${server.url}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: rotated.json.refresh_token }),
    })
    expect(json.status).toBe(401)
    expect(server.counters).toMatchObject({
      refreshCalls: 3,
      refreshSuccesses: 1,
      refreshFailures: 2,
      reuseDetections: 1,
    })
  })

  it('omits refresh_token when rotation is off, and the old one keeps working', async () => {
    const server = await start({ rotateRefreshTokens: false })
    const { refreshToken } = server.login()
    const reply = await refreshGrant(server, refreshToken)
    expect(reply.status).toBe(200)
    expect(reply.json).not.toHaveProperty('refresh_token')
    expect((await refreshGrant(server, refreshToken)).status).toBe(200)
  })

  it('serves queued faults to refresh grants and leaves the token unspent', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    server.failNextRefresh(503)
    expect((await refreshGrant(server, refreshToken)).status).toBe(503)
    expect((await refreshGrant(server, refreshToken)).status).toBe(200)
    expect(server.counters).toMatchObject({ refreshCalls: 2, refreshFailures: 1 })
  })

  it('counts a held refresh grant as in flight', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    const hold = server.hold('/oauth/token')
    const pending = refreshGrant(server, refreshToken)
    await hold.untilWaiting(1)
    expect(server.refreshInFlight).toBe(1)
    hold.release()
    expect((await pending).status).toBe(200)
    await server.waitFor((s) => s.refreshInFlight === 0)
  })

  it('refuses a refresh token in the URL, counted as a failed refresh call', async () => {
    const server = await start()
    const { refreshToken } = server.login()
    const reply = await token(
      server,
      { grant_type: 'refresh_token', client_id: 'app' },
      { query: `?refresh_token=${refreshToken}` },
    )
    expect(reply.status).toBe(400)
    expect(reply.json.error).toBe('invalid_request')
    expect(server.counters).toMatchObject({ refreshCalls: 1, refreshFailures: 1 })
  })

  it.each([
    ['a JSON body', { contentType: 'application/json' }, {}, 400, 'invalid_request'],
    ['no client_id', {}, { client_id: '' }, 401, 'invalid_client'],
    ['an unknown grant', {}, { grant_type: 'client_credentials' }, 400, 'unsupported_grant_type'],
    ['no refresh_token', {}, { refresh_token: '' }, 400, 'invalid_request'],
  ])('refuses %s with the OAuth error', async (_, init, override, status, error) => {
    const server = await start()
    const { refreshToken } = server.login()
    const params = {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: 'app',
      ...override,
    }
    const reply = await token(server, params, init)
    expect(reply).toMatchObject({ status, json: { error } })
    // Nothing was spent: the token still refreshes.
    expect((await refreshGrant(server, refreshToken)).status).toBe(200)
  })

  it('is POST only', async () => {
    const server = await start()
    const res = await fetch(`${server.url}/oauth/token`)
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
  })
})

describe('authorization server metadata', () => {
  it.each(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'])(
    '%s names the issuer and the token endpoint',
    async (path) => {
      const server = await start()
      const res = await fetch(`${server.url}${path}`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({
        issuer: server.url,
        token_endpoint: `${server.url}/oauth/token`,
        grant_types_supported: ['password', 'refresh_token'],
      })
    },
  )
})
