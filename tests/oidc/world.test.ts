/**
 * The OIDC world on its own, without the auth-machine client: a real sign-in, hand-made DPoP
 * proofs against the resource server, refreshes with oauth4webapi.
 */
import { createHash, randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, decodeJwt, exportJWK, SignJWT } from 'jose'
import * as oauth from 'oauth4webapi'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import {
  generateDpopKeyPair,
  type OidcWorld,
  startOidcWorld,
  TEST_USER,
  type TokenEndpointJson,
} from './world.js'

const ACCESS_TOKEN_TTL = 120

let world: OidcWorld

beforeEach(async () => {
  world = await startOidcWorld({ accessTokenTtl: ACCESS_TOKEN_TTL })
})

afterEach(async () => {
  expect(world.serverErrors).toEqual([])
  await world.close()
})

interface ProofClaims {
  htm?: string
  htu?: string
  accessToken?: string
  nonce?: string
  iat?: number
  jti?: string
}

/** A DPoP proof made by hand (jose), for the resource server. */
async function proof(keyPair: CryptoKeyPair, claims: ProofClaims = {}): Promise<string> {
  const {
    htm = 'GET',
    htu = `${world.resourceUrl}/api/me`,
    accessToken,
    nonce,
    iat = Math.floor(Date.now() / 1000),
    jti = randomUUID(),
  } = claims
  return new SignJWT({
    htm,
    htu,
    jti,
    ...(nonce === undefined ? {} : { nonce }),
    ...(accessToken === undefined
      ? {}
      : { ath: createHash('sha256').update(accessToken).digest('base64url') }),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .setIssuedAt(iat)
    .sign(keyPair.privateKey)
}

function callResource(
  accessToken: string,
  dpopProof: string,
  { path = '/api/me', method = 'GET', scheme = 'DPoP' } = {},
) {
  return fetch(`${world.resourceUrl}${path}`, {
    method,
    headers: { authorization: `${scheme} ${accessToken}`, dpop: dpopProof },
  })
}

/** A fresh proof with the resource server's current nonce, then the call. */
async function callWithNonce(keyPair: CryptoKeyPair, accessToken: string) {
  const dpopProof = await proof(keyPair, { accessToken, nonce: world.resourceNonce })
  return { dpopProof, response: await callResource(accessToken, dpopProof) }
}

async function refresh(dpop: oauth.DPoPHandle, refreshToken: string): Promise<TokenEndpointJson> {
  for (let attempt = 1; ; attempt++) {
    const response = await oauth.refreshTokenGrantRequest(
      world.authorizationServer,
      world.client,
      oauth.None(),
      refreshToken,
      { DPoP: dpop, [oauth.allowInsecureRequests]: true },
    )
    const json = (await response.clone().json()) as TokenEndpointJson
    try {
      await oauth.processRefreshTokenResponse(world.authorizationServer, world.client, response)
      return json
    } catch (error) {
      if (attempt === 1 && oauth.isDPoPNonceError(error)) continue
      throw error
    }
  }
}

async function refreshError(dpop: oauth.DPoPHandle, refreshToken: string) {
  const error = await refresh(dpop, refreshToken).then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(error).toBeInstanceOf(oauth.ResponseBodyError)
  const { error: code, error_description, status } = error as oauth.ResponseBodyError
  return { code, error_description, status }
}

describe('sign-in', () => {
  test('authorization code + PKCE with a DPoP proof yields DPoP-bound JWT tokens', async () => {
    const keyPair = await generateDpopKeyPair()
    expect(keyPair.privateKey.extractable).toBe(false)

    const tokens = await world.signIn(keyPair)

    expect(tokens.token_type).toBe('DPoP')
    expect(tokens.expires_in).toBe(ACCESS_TOKEN_TTL)
    expect(tokens.refresh_token).toMatch(/^[\w-]{20,}$/)
    const claims = decodeJwt(tokens.access_token)
    expect(claims).toMatchObject({
      iss: world.issuer,
      aud: world.resourceUrl,
      sub: TEST_USER,
      client_id: world.clientId,
      cnf: { jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)) },
    })
    expect(claims.exp).toBe((claims.iat ?? 0) + ACCESS_TOKEN_TTL)
    expect(world.tokenEndpoint).toBe(`${world.issuer}/token`)
    // The provider requires a nonce: the first token request was challenged, then retried.
    expect(world.snapshot()).toMatchObject({ tokenNonceChallenges: 1, refreshGrants: 0 })
  })
})

describe('resource server', () => {
  test('challenges for its nonce, then answers 200 to a proof carrying it', async () => {
    const keyPair = await generateDpopKeyPair()
    const { access_token } = await world.signIn(keyPair)

    const challenged = await callResource(
      access_token,
      await proof(keyPair, { accessToken: access_token }),
    )
    expect(challenged.status).toBe(401)
    expect(challenged.headers.get('www-authenticate')).toContain('error="use_dpop_nonce"')
    const nonce = challenged.headers.get('dpop-nonce')
    expect(nonce).toBe(world.resourceNonce)
    expect(world.counters.resourceNonceChallenges).toBe(1)

    const dpopProof = await proof(keyPair, { accessToken: access_token, nonce: nonce ?? '' })
    const ok = await callResource(access_token, dpopProof)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('dpop-nonce')).toBe(nonce)
    expect(await ok.json()).toEqual({ ok: true, sub: TEST_USER, path: '/api/me' })
    expect(world.counters.resourceOk).toBe(1)

    // The very same proof again: a replay.
    const replayed = await callResource(access_token, dpopProof)
    expect(replayed.status).toBe(401)
    expect(replayed.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"')
    expect(world.snapshot()).toMatchObject({
      resourceOk: 1,
      resourceReplaysRefused: 1,
      resourceProofRefused: 0,
      resourceNonceChallenges: 1,
    })
  })

  test('a rotated nonce makes the old one stale', async () => {
    const keyPair = await generateDpopKeyPair()
    const { access_token } = await world.signIn(keyPair)
    const oldNonce = world.resourceNonce

    world.rotateResourceNonce()

    expect(world.resourceNonce).not.toBe(oldNonce)
    const stale = await callResource(
      access_token,
      await proof(keyPair, { accessToken: access_token, nonce: oldNonce }),
    )
    expect(stale.status).toBe(401)
    expect(stale.headers.get('www-authenticate')).toContain('error="use_dpop_nonce"')
    expect(stale.headers.get('dpop-nonce')).toBe(world.resourceNonce)
    expect((await callWithNonce(keyPair, access_token)).response.status).toBe(200)
    expect(world.snapshot()).toMatchObject({ resourceNonceChallenges: 1, resourceOk: 1 })
  })

  test('accepts the scheme in any case, any method, and ignores the query in htu', async () => {
    const keyPair = await generateDpopKeyPair()
    const { access_token } = await world.signIn(keyPair)
    const nonce = world.resourceNonce

    const lower = await callResource(
      access_token,
      await proof(keyPair, { accessToken: access_token, nonce }),
      { scheme: 'dpop' },
    )
    expect(lower.status).toBe(200)

    const post = await callResource(
      access_token,
      await proof(keyPair, {
        accessToken: access_token,
        nonce,
        htm: 'POST',
        htu: `${world.resourceUrl}/orders/7`,
      }),
      { method: 'POST', path: '/orders/7?expand=items' },
    )
    expect(post.status).toBe(200)
    expect(await post.json()).toEqual({ ok: true, sub: TEST_USER, path: '/orders/7' })
    expect(world.counters.resourceOk).toBe(2)
  })

  test('refuses every malformed proof with invalid_dpop_proof, before asking for a nonce', async () => {
    const keyPair = await generateDpopKeyPair()
    const otherKey = await generateDpopKeyPair()
    const { access_token: accessToken } = await world.signIn(keyPair)
    const nonce = world.resourceNonce
    const now = Math.floor(Date.now() / 1000)

    const bad: Array<[string, Promise<string>]> = [
      ['wrong method', proof(keyPair, { accessToken, nonce, htm: 'POST' })],
      ['wrong URL', proof(keyPair, { accessToken, nonce, htu: `${world.resourceUrl}/other` })],
      ['no ath', proof(keyPair, { nonce })],
      ['ath of another token', proof(keyPair, { accessToken: `${accessToken}x`, nonce })],
      ['iat too old', proof(keyPair, { accessToken, nonce, iat: now - 120 })],
      ['iat in the future', proof(keyPair, { accessToken, nonce, iat: now + 120 })],
      ['key not bound to the token', proof(otherKey, { accessToken, nonce })],
      ['not a JWT', Promise.resolve('not-a-proof')],
    ]
    for (const [label, made] of bad) {
      const response = await callResource(accessToken, await made)
      expect({ label, status: response.status }).toEqual({ label, status: 401 })
      expect(response.headers.get('www-authenticate'), label).toContain(
        'DPoP algs="ES256", error="invalid_dpop_proof"',
      )
      expect(response.headers.get('dpop-nonce'), label).toBe(nonce)
    }

    const missing = await fetch(`${world.resourceUrl}/api/me`, {
      headers: { authorization: `DPoP ${accessToken}` },
    })
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"')

    expect(world.snapshot()).toMatchObject({
      resourceProofRefused: bad.length + 1,
      resourceNonceChallenges: 0,
      resourceOk: 0,
      resourceInvalidToken: 0,
    })
  })

  test('refuses a token that is not the provider’s with invalid_token', async () => {
    const keyPair = await generateDpopKeyPair()
    const { access_token } = await world.signIn(keyPair)
    const [header, payload] = access_token.split('.')
    const forged = `${header}.${payload}.${'A'.repeat(86)}`

    const response = await callResource(
      forged,
      await proof(keyPair, { accessToken: forged, nonce: world.resourceNonce }),
    )
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')

    const bearer = await callResource(
      access_token,
      await proof(keyPair, { accessToken: access_token }),
      {
        scheme: 'Bearer',
      },
    )
    expect(bearer.status).toBe(401)
    expect(bearer.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(world.counters.resourceInvalidToken).toBe(2)
  })
})

describe('expiry and refresh', () => {
  test('expireAccessTokens also covers tokens the resource server never saw', async () => {
    const keyPair = await generateDpopKeyPair()
    const unseen = await world.signIn(keyPair)

    world.expireAccessTokens()
    const later = await world.signIn(keyPair)

    const refused = (await callWithNonce(keyPair, unseen.access_token)).response
    expect(refused.status).toBe(401)
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect((await callWithNonce(keyPair, later.access_token)).response.status).toBe(200)
    expect(world.snapshot()).toMatchObject({ resourceInvalidToken: 1, resourceOk: 1 })
  })

  test('expired token → invalid_token; a DPoP refresh rotates; a spent refresh token revokes the grant', async () => {
    const keyPair = await generateDpopKeyPair()
    const dpop = oauth.DPoP(world.client, keyPair)
    const first = await world.signIn(keyPair)
    expect((await callWithNonce(keyPair, first.access_token)).response.status).toBe(200)

    world.expireAccessTokens()

    const expired = (await callWithNonce(keyPair, first.access_token)).response
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(world.counters.resourceInvalidToken).toBe(1)

    const second = await refresh(dpop, first.refresh_token)
    expect(second.token_type).toBe('DPoP')
    expect(second.expires_in).toBe(ACCESS_TOKEN_TTL)
    expect(second.access_token).not.toBe(first.access_token)
    expect(second.refresh_token).not.toBe(first.refresh_token)
    expect(decodeJwt(second.access_token).cnf).toEqual(decodeJwt(first.access_token).cnf)
    // sign-in's challenge, then this fresh DPoP handle's.
    expect(world.snapshot()).toMatchObject({ refreshGrants: 1, tokenNonceChallenges: 2 })

    // Tokens issued after expireAccessTokens are fine.
    const { dpopProof, response: renewed } = await callWithNonce(keyPair, second.access_token)
    expect(renewed.status).toBe(200)

    // Replaying a proof the resource server accepted.
    const replayed = await callResource(second.access_token, dpopProof)
    expect(replayed.status).toBe(401)
    expect(replayed.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"')
    expect(world.counters.resourceReplaysRefused).toBe(1)

    // The spent refresh token again, with the right key: reuse → the whole grant is revoked.
    expect(await refreshError(dpop, first.refresh_token)).toEqual({
      code: 'invalid_grant',
      error_description: 'grant request is invalid',
      status: 400,
    })
    expect(world.snapshot()).toMatchObject({ grantsRevoked: 1, refreshGrantsFailed: 1 })
    expect(world.tokenErrors.at(-1)).toEqual({
      grantType: 'refresh_token',
      error: 'invalid_grant',
      detail: 'refresh token already used',
    })

    // ... so the rotated one, never used, is gone too (revocation deleted the grant's tokens).
    expect((await refreshError(dpop, second.refresh_token)).code).toBe('invalid_grant')
    expect(world.tokenErrors.at(-1)?.detail).toBe('refresh token not found')
    expect(world.snapshot()).toMatchObject({
      refreshGrants: 1,
      refreshGrantsFailed: 2,
      grantsRevoked: 1,
      tokenNonceChallenges: 2,
    })
  })

  test('a refresh with another key’s proof is refused and spends nothing', async () => {
    const keyPair = await generateDpopKeyPair()
    const tokens = await world.signIn(keyPair)
    const thief = oauth.DPoP(world.client, await generateDpopKeyPair())

    expect(await refreshError(thief, tokens.refresh_token)).toEqual({
      code: 'invalid_grant',
      error_description: 'grant request is invalid',
      status: 400,
    })
    expect(world.snapshot()).toMatchObject({
      refreshGrants: 0,
      refreshGrantsFailed: 1,
      grantsRevoked: 0,
    })
    expect(world.tokenErrors.at(-1)).toEqual({
      grantType: 'refresh_token',
      error: 'invalid_grant',
      detail: 'failed jkt verification',
    })

    // The owner's key still refreshes with that very token.
    const renewed = await refresh(oauth.DPoP(world.client, keyPair), tokens.refresh_token)
    expect(renewed.refresh_token).not.toBe(tokens.refresh_token)
    expect(world.snapshot()).toMatchObject({
      refreshGrants: 1,
      refreshGrantsFailed: 1,
      grantsRevoked: 0,
      tokenNonceChallenges: 3,
    })
  })

  test('a refresh without any DPoP proof is refused', async () => {
    const tokens = await world.signIn(await generateDpopKeyPair())
    const response = await oauth.refreshTokenGrantRequest(
      world.authorizationServer,
      world.client,
      oauth.None(),
      tokens.refresh_token,
      { [oauth.allowInsecureRequests]: true },
    )
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' })
    expect(world.tokenErrors).toEqual([
      { grantType: 'authorization_code', error: 'use_dpop_nonce', detail: expect.any(String) },
      { grantType: 'refresh_token', error: 'invalid_grant', detail: 'DPoP proof JWT not provided' },
    ])
    expect(world.snapshot()).toMatchObject({ refreshGrants: 0, refreshGrantsFailed: 1 })
  })
})

test('close() stops both servers', async () => {
  const other = await startOidcWorld()
  await other.close()
  await expect(fetch(`${other.issuer}/.well-known/openid-configuration`)).rejects.toThrow()
  await expect(fetch(`${other.resourceUrl}/api/me`)).rejects.toThrow()
})
