import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidSessionError, type RefreshFunction, SessionExpiredError } from '../../src/index.js'
import { sessionFromTokens } from '../../src/session.js'
import { TEST_PASSWORD, type TestAuthServer } from '../../src/testing/index.js'
import { createHarness, type Harness } from '../helpers.js'

// Token objects of real OAuth libraries, from the real test server's standard token
// endpoint, handed to the client as they are. openid-client 6 adds a non-enumerable
// `expiresIn()` method next to `expires_in`: the client must read the number, not the method.

const CLIENT_ID = 'auth-machine-tests'

let h: Harness
afterEach(async () => {
  await h?.close()
})

/** openid-client configured by discovery; plain HTTP is allowed for the loopback server. */
function discoverOpenIdClient(server: TestAuthServer): Promise<client.Configuration> {
  return client.discovery(new URL(server.url), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  })
}

/** oauth4webapi's view of the server, discovered through RFC 8414 metadata. */
async function discoverOauth4webapi(server: TestAuthServer) {
  const issuer = new URL(server.url)
  const response = await oauth.discoveryRequest(issuer, {
    algorithm: 'oauth2',
    [oauth.allowInsecureRequests]: true,
  })
  return oauth.processDiscoveryResponse(issuer, response)
}

const oauthClient: oauth.Client = { client_id: CLIENT_ID }

async function oauth4webapiRefresh(
  as: oauth.AuthorizationServer,
  refreshToken: string,
  signal?: AbortSignal,
) {
  const response = await oauth.refreshTokenGrantRequest(
    as,
    oauthClient,
    oauth.None(),
    refreshToken,
    {
      [oauth.allowInsecureRequests]: true,
      ...(signal ? { signal } : {}),
    },
  )
  return oauth.processRefreshTokenResponse(as, oauthClient, response)
}

function sessionOf(harness: Harness) {
  return harness.auth.actor.getSnapshot().context.session
}

function spent(refreshToken: string | undefined): string {
  if (refreshToken === undefined) throw new Error('the session has no refresh token')
  return refreshToken
}

describe('login() with token objects of OAuth libraries, as they are', () => {
  it('takes openid-client 6 password grant results (expiresIn() method and all)', async () => {
    h = await createHarness({}, { accessTokenTtl: 900 })
    const config = await discoverOpenIdClient(h.server)
    const tokens = await client.genericGrantRequest(config, 'password', {
      username: 'ada',
      password: TEST_PASSWORD,
    })
    // The shape this test is about: a method under the camelCase name of the lifetime.
    expect(typeof tokens.expiresIn).toBe('function')
    expect(Object.keys(tokens)).not.toContain('expiresIn')

    h.auth.login(tokens)

    expect(h.auth.actor.getSnapshot().matches('authenticated')).toBe(true)
    const session = sessionOf(h)
    expect(session?.accessToken).toBe(tokens.access_token)
    expect(session?.refreshToken).toBe(tokens.refresh_token)
    expect((session?.expiresAt ?? 0) - h.clock.now()).toBe(900_000)
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
  })

  it('takes openid-client 6 refresh grant results', async () => {
    h = await createHarness({}, { accessTokenTtl: 600 })
    const config = await discoverOpenIdClient(h.server)
    const tokens = await client.refreshTokenGrant(config, h.server.login().refreshToken)

    h.auth.login(tokens)

    expect((sessionOf(h)?.expiresAt ?? 0) - h.clock.now()).toBe(600_000)
    expect(sessionOf(h)?.refreshToken).toBe(tokens.refresh_token)
  })

  it('takes oauth4webapi refresh grant results', async () => {
    h = await createHarness({}, { accessTokenTtl: 1200 })
    const as = await discoverOauth4webapi(h.server)
    const tokens = await oauth4webapiRefresh(as, h.server.login().refreshToken)
    expect(tokens.token_type).toBe('bearer')

    h.auth.login(tokens)

    expect((sessionOf(h)?.expiresAt ?? 0) - h.clock.now()).toBe(1_200_000)
    expect(sessionOf(h)?.refreshToken).toBe(tokens.refresh_token)
    await expect(h.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
  })
})

describe('a refresh function that returns an OAuth library result as it is', () => {
  async function twoExpiries(harness: Harness) {
    for (let round = 1; round <= 2; round += 1) {
      harness.server.expireAccessTokens()
      await expect(harness.http.get('/api/resource')).resolves.toMatchObject({ status: 200 })
      expect(harness.server.counters).toMatchObject({
        refreshCalls: round,
        refreshSuccesses: round,
        reuseDetections: 0,
      })
    }
    // The rotated refresh token from each answer was adopted; none travelled in a URL.
    const calls = harness.server.requests.filter(
      (r) => r.path === '/oauth/token' && r.body?.includes('grant_type=refresh_token'),
    )
    expect(calls.map((r) => r.query)).toEqual(['', ''])
    expect(harness.auth.actor.getSnapshot().context.generation).toBe(3)
  }

  it('refreshes through openid-client refreshTokenGrant(): 1 refresh per expiry, no reuse', async () => {
    let config: client.Configuration | undefined
    const refresh: RefreshFunction = async (session) => {
      if (!config) throw new Error('not configured yet')
      return client.refreshTokenGrant(config, spent(session.refreshToken))
    }
    h = await createHarness({ refresh })
    config = await discoverOpenIdClient(h.server)
    h.auth.login(
      await client.genericGrantRequest(config, 'password', {
        username: 'ada',
        password: TEST_PASSWORD,
      }),
    )
    h.server.resetCounters()

    await twoExpiries(h)
  })

  it('refreshes through oauth4webapi processRefreshTokenResponse(): 1 refresh per expiry, no reuse', async () => {
    let as: oauth.AuthorizationServer | undefined
    const refresh: RefreshFunction = async (session, { signal }) => {
      if (!as) throw new Error('not configured yet')
      return oauth4webapiRefresh(as, spent(session.refreshToken), signal)
    }
    h = await createHarness({ refresh })
    as = await discoverOauth4webapi(h.server)
    h.auth.login(h.server.login())

    await twoExpiries(h)
  })

  it("ends the session on openid-client's invalid_grant error (a 400 from the token endpoint)", async () => {
    let config: client.Configuration | undefined
    h = await createHarness({
      refresh: async (session) => {
        if (!config) throw new Error('not configured yet')
        return client.refreshTokenGrant(config, spent(session.refreshToken))
      },
    })
    config = await discoverOpenIdClient(h.server)
    h.auth.login(h.server.login())
    h.server.revokeSessions()

    await expect(h.http.get('/api/resource')).rejects.toBeInstanceOf(SessionExpiredError)
    expect(h.auth.actor.getSnapshot().value).toBe('expired')
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})

describe('sessionFromTokens edge cases', () => {
  const now = 1_000_000
  const lifetime = (body: unknown) => {
    const expiresAt = sessionFromTokens(body, now).expiresAt
    return expiresAt === undefined ? undefined : (expiresAt - now) / 1000
  }
  /** A JWT with `exp − iat` = 300 s and no signature: only the lifetime is read. */
  const jwt = `e30.${btoa(JSON.stringify({ iat: 100, exp: 400 })).replace(/=+$/, '')}.sig`

  /** Shaped like openid-client 6's results: `expiresIn()` is non-enumerable and counts down. */
  function withHelpers<T extends object>(body: T) {
    return Object.defineProperties(body, {
      expiresIn: { value: () => 5 },
      claims: { value: () => undefined },
    }) as T & { expiresIn(): number; claims(): undefined }
  }

  it('reads camelCase and snake_case', () => {
    // A login makes a new session id; a refresh keeps its session's.
    const expected = {
      accessToken: 'a',
      refreshToken: 'r',
      expiresAt: now + 60_000,
      obtainedAt: now,
    }
    expect(sessionFromTokens({ accessToken: 'a', refreshToken: 'r', expiresIn: 60 }, now)).toEqual({
      ...expected,
      id: expect.stringMatching(/^[0-9a-f]{24}$/),
    })
    const previous = { accessToken: 'old', id: 'signin-1' }
    expect(
      sessionFromTokens({ access_token: 'a', refresh_token: 'r', expires_in: 60 }, now, previous),
    ).toEqual({ ...expected, id: 'signin-1' })
  })

  it('prefers camelCase when a body has both spellings', () => {
    const body = { accessToken: 'camel', access_token: 'snake', expiresIn: 1, expires_in: 2 }
    expect(sessionFromTokens(body, now)).toMatchObject({
      accessToken: 'camel',
      expiresAt: now + 1000,
    })
  })

  it('skips a method under a field name and reads the other spelling (openid-client)', () => {
    // The method would say 5 s, on the wall clock, rounded down: the number is what counts.
    const body = withHelpers({ access_token: 'a', token_type: 'bearer', expires_in: 3600 })
    expect(lifetime(body)).toBe(3600)
  })

  it('falls back to the JWT lifetime when the only lifetime is a method', () => {
    expect(lifetime(withHelpers({ access_token: jwt }))).toBe(300)
    expect(lifetime(withHelpers({ access_token: 'opaque' }))).toBeUndefined()
  })

  it('does not take any function as a token', () => {
    expect(() => sessionFromTokens({ accessToken: () => 'a' }, now)).toThrow(InvalidSessionError)
    expect(sessionFromTokens({ accessToken: () => 'x', access_token: 'a' }, now).accessToken).toBe(
      'a',
    )
  })

  it('treats null fields as absent', () => {
    const previous = { accessToken: 'old', refreshToken: 'kept' }
    expect(
      sessionFromTokens(
        { accessToken: null, access_token: 'a', refresh_token: null },
        now,
        previous,
      ),
    ).toMatchObject({ accessToken: 'a', refreshToken: 'kept' })
    expect(lifetime({ access_token: jwt, expires_in: null })).toBe(300)
    expect(() => sessionFromTokens({ access_token: null }, now)).toThrow(InvalidSessionError)
  })

  it('reads expires_in given as a decimal string', () => {
    expect(lifetime({ access_token: 'a', expires_in: '3600' })).toBe(3600)
    expect(lifetime({ access_token: 'a', expires_in: '0' })).toBe(0)
    expect(lifetime({ access_token: 'a', expires_in: '59.5' })).toBe(59.5)
  })

  it.each(['1h', '1e3', ' 60', '-5', '', '0x10', 'Infinity'])(
    'refuses expires_in %j without quoting the token',
    (value) => {
      let error: unknown
      try {
        sessionFromTokens({ access_token: 'secret-token', expires_in: value }, now)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(InvalidSessionError)
      expect((error as Error).message).not.toContain('secret-token')
    },
  )

  it('accepts Bearer in any case and nonstandard token types, refuses DPoP', () => {
    for (const token_type of ['Bearer', 'bearer', 'BEARER', 'JWT']) {
      expect(sessionFromTokens({ access_token: 'a', token_type }, now).accessToken).toBe('a')
    }
    for (const body of [
      { access_token: 'secret-token', token_type: 'DPoP' },
      { accessToken: 'secret-token', tokenType: 'dpop' },
    ]) {
      expect(() => sessionFromTokens(body, now)).toThrow(/DPoP/)
      expect(() => sessionFromTokens(body, now)).not.toThrow(/secret-token/)
    }
  })

  it('reports a malformed refresh answer with the refresh code', () => {
    expect(() =>
      sessionFromTokens(
        { access_token: 'a', expires_in: 'soon' },
        now,
        null,
        'INVALID_REFRESH_RESPONSE',
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_REFRESH_RESPONSE' }))
  })
})
