/**
 * The auth-machine client with DPoP against a real OpenID provider (oidc-provider, DPoP
 * required, nonces required, rotating refresh tokens whose reuse revokes the grant) and a
 * resource server that verifies every proof with jose. Both transports, each refreshing
 * its own way: `dpop.fetch` by hand (fetch) and oauth4webapi's DPoP handle (axios).
 */

import axios, { type InternalAxiosRequestConfig, isAxiosError } from 'axios'
import { decodeJwt } from 'jose'
import * as oauth from 'oauth4webapi'
import * as openid from 'openid-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAuthClient as createFetchClient } from '../../src/fetch.js'
import { type AuthClient, createAuthClient, type RefreshFunction } from '../../src/index.js'
import type { Transport } from '../helpers.js'
import { generateDpopKeyPair, type OidcWorld, startOidcWorld } from './world.js'

let world: OidcWorld
let clients: AuthClient[]

beforeEach(async () => {
  world = await startOidcWorld({ accessTokenTtl: 300 })
  clients = []
})
afterEach(async () => {
  for (const client of clients) client.dispose()
  expect(world.serverErrors).toEqual([])
  await world.close()
})

/** What one protected call ended with: the status, or the error's name. */
type Outcome = number | string

interface Harness {
  auth: AuthClient
  get(path: string): Promise<Outcome>
  /** The `Authorization` and `DPoP` headers of every protected request, as they left. */
  sent: Array<{ authorization: string | null; dpop: string | null; url: string }>
}

// oauth4webapi keeps the server's nonce in its handle: one handle per key, not per call.
const handles = new Map<string, oauth.DPoPHandle>()

/** `refresh` through oauth4webapi, its DPoP handle made from the session's key. */
const refreshWithOauth4webapi: RefreshFunction = async (session, { signal, dpop }) => {
  if (!dpop) throw new Error('no dpop handle in the refresh context')
  const jkt = await dpop.thumbprint()
  let handle = handles.get(jkt)
  if (!handle) {
    handle = oauth.DPoP(world.client, await dpop.keyPair())
    handles.set(jkt, handle)
  }
  const response = await oauth.refreshTokenGrantRequest(
    world.authorizationServer,
    world.client,
    oauth.None(),
    session.refreshToken as string,
    { DPoP: handle, signal, [oauth.allowInsecureRequests]: true },
  )
  return oauth.processRefreshTokenResponse(world.authorizationServer, world.client, response)
}

/** `refresh` by hand: a form POST through `dpop.fetch`, which answers nonce challenges. */
const refreshWithDpopFetch: RefreshFunction = async (session, { signal, dpop }) => {
  if (!dpop) throw new Error('no dpop handle in the refresh context')
  const response = await dpop.fetch(world.tokenEndpoint, {
    method: 'POST',
    signal,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: session.refreshToken as string,
      client_id: world.clientId,
    }),
  })
  const body = await response.json()
  if (!response.ok)
    throw Object.assign(new Error('refresh refused'), {
      status: response.status,
      response: { data: body },
    })
  return body
}

function harness(transport: Transport): Harness {
  const sent: Harness['sent'] = []
  const record = (url: string, headers: Headers) =>
    sent.push({ url, authorization: headers.get('authorization'), dpop: headers.get('dpop') })
  if (transport === 'fetch') {
    const auth = createFetchClient({
      dpop: true,
      attachTo: [world.resourceUrl],
      refresh: refreshWithDpopFetch,
      fetch: (input, init) => {
        record(String(input), new Headers(init?.headers))
        return fetch(input, init)
      },
    })
    clients.push(auth as AuthClient)
    return {
      auth: auth as AuthClient,
      sent,
      async get(path) {
        try {
          const response = await auth.fetch(`${world.resourceUrl}${path}`)
          await response.body?.cancel()
          return response.status
        } catch (error) {
          return (error as Error).name
        }
      },
    }
  }
  const http = axios.create({ baseURL: world.resourceUrl })
  // Registered before the client's interceptor, so it runs after it: the headers as they leave.
  const observer = function (this: InternalAxiosRequestConfig, data: unknown) {
    record(`${this.baseURL}${this.url}`, new Headers(this.headers.toJSON() as HeadersInit))
    return data
  }
  http.interceptors.request.use((config) => {
    // A re-sent config already has it: one observer, always behind the client's check.
    const others = [config.transformRequest ?? []].flat().filter((fn) => fn !== observer)
    config.transformRequest = [...others, observer]
    return config
  })
  const auth = createAuthClient({ dpop: true, http, refresh: refreshWithOauth4webapi })
  clients.push(auth)
  return {
    auth,
    sent,
    async get(path) {
      try {
        return (await http.get(path)).status
      } catch (error) {
        return isAxiosError(error) && error.response ? error.response.status : (error as Error).name
      }
    },
  }
}

async function signIn(auth: AuthClient): Promise<void> {
  if (!auth.dpop) throw new Error('auth.dpop is missing')
  auth.login(await world.signIn(await auth.dpop.keyPair()))
}

const counts = (outcomes: Outcome[]) =>
  outcomes.reduce<Record<string, number>>((all, o) => {
    all[String(o)] = (all[String(o)] ?? 0) + 1
    return all
  }, {})

describe.each<Transport>(['fetch', 'axios'])(
  'DPoP against oidc-provider, through %s',
  (transport) => {
    it('a burst of 50 on an expired token: 1 refresh, 50 ok, nonce challenges answered without a refresh, 0 grants revoked', async () => {
      const { auth, get, sent } = harness(transport)
      await signIn(auth)

      // The first request meets the resource server's nonce challenge and is sent again.
      expect(await get('/api/first')).toBe(200)
      expect(world.snapshot()).toMatchObject({
        resourceNonceChallenges: 1,
        resourceOk: 1,
        refreshGrants: 0,
      })

      world.expireAccessTokens()
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, (_, i) => get(`/api/burst/${i}`)),
      )
      expect(counts(outcomes)).toEqual({ 200: 50 })
      expect(world.snapshot()).toMatchObject({
        refreshGrants: 1,
        refreshGrantsFailed: 0,
        grantsRevoked: 0,
        resourceOk: 51,
        resourceInvalidToken: 50,
        resourceProofRefused: 0,
        resourceReplaysRefused: 0,
      })

      // A new resource nonce: every request in flight is challenged, none refreshes.
      world.rotateResourceNonce()
      const challenged = await Promise.all(Array.from({ length: 10 }, (_, i) => get(`/api/n/${i}`)))
      expect(counts(challenged)).toEqual({ 200: 10 })
      const after = world.snapshot()
      expect(after.refreshGrants).toBe(1)
      expect(after.resourceNonceChallenges).toBeGreaterThanOrEqual(2)
      expect(after.grantsRevoked).toBe(0)
      expect(auth.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })

      // Every protected request carried a DPoP token and a proof; none a Bearer token.
      expect(sent.filter((r) => r.url.startsWith(world.resourceUrl)).length).toBeGreaterThan(60)
      for (const request of sent.filter((r) => r.url.startsWith(world.resourceUrl))) {
        expect(request.authorization).toMatch(/^DPoP \S+$/)
        expect(request.dpop).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
      }
      // Each proof is used once: no two requests share one.
      const proofs = sent.filter((r) => r.url.startsWith(world.resourceUrl)).map((r) => r.dpop)
      expect(new Set(proofs).size).toBe(proofs.length)
      // The token endpoint's nonce challenge cost no failed refresh (counted as a challenge).
      expect(world.snapshot().tokenNonceChallenges).toBeGreaterThanOrEqual(1)
      console.log(
        `oidc-provider (${transport}): ${JSON.stringify(world.snapshot())}, token endpoint nonce challenges ${world.snapshot().tokenNonceChallenges}`,
      )
    })

    it('an attacker who copies a request (token and proof) is refused: the proof was used, and a proof of their own key does not match the token', async () => {
      const { auth, get, sent } = harness(transport)
      await signIn(auth)
      expect(await get('/api/mine')).toBe(200)
      const stolen = sent.filter((r) => r.url.startsWith(world.resourceUrl)).at(-1)
      if (!stolen?.authorization || !stolen.dpop) throw new Error('nothing was sent')

      const replayed = await fetch(stolen.url, {
        headers: { authorization: stolen.authorization, dpop: stolen.dpop },
      })
      expect(replayed.status).toBe(401)
      expect(replayed.headers.get('www-authenticate')).toMatch(/invalid_dpop_proof/)
      expect(world.snapshot().resourceReplaysRefused).toBe(1)

      // The same token with a fresh proof from the attacker's own key.
      const thief = await generateDpopKeyPair()
      const thiefClient = createFetchClient({
        dpop: { keyPair: thief },
        attachTo: [world.resourceUrl],
        refresh: async () => {
          throw new Error('no refresh')
        },
      })
      clients.push(thiefClient as AuthClient)
      thiefClient.login({
        access_token: stolen.authorization.slice('DPoP '.length),
        token_type: 'DPoP',
        expires_in: 300,
      })
      const forged = await thiefClient.fetch(stolen.url)
      expect(forged.status).toBe(401)
      // Refused for its proof (key mismatch), never asked for a refresh by the victim's client.
      expect(world.snapshot().resourceProofRefused).toBeGreaterThanOrEqual(1)
      expect(world.snapshot().refreshGrants).toBe(0)
      expect(await get('/api/still-mine')).toBe(200)
    })

    it('a stolen refresh token is useless without the key, and does not burn the session', async () => {
      const { auth, get } = harness(transport)
      if (!auth.dpop) throw new Error('auth.dpop is missing')
      const tokens = await world.signIn(await auth.dpop.keyPair())
      auth.login(tokens)
      const thief = oauth.DPoP(world.client, await generateDpopKeyPair())
      const attempt = async () =>
        oauth.refreshTokenGrantRequest(
          world.authorizationServer,
          world.client,
          oauth.None(),
          tokens.refresh_token,
          {
            DPoP: thief,
            [oauth.allowInsecureRequests]: true,
          },
        )
      let response = await attempt()
      if ((await response.clone().json()).error === 'use_dpop_nonce') response = await attempt()
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: 'invalid_grant' })

      world.expireAccessTokens()
      expect(await get('/api/after-theft')).toBe(200)
      expect(world.snapshot()).toMatchObject({ refreshGrants: 1, grantsRevoked: 0 })
    })

    it('logout drops the key: the next sign-in gets a new one', async () => {
      const { auth, get } = harness(transport)
      if (!auth.dpop) throw new Error('auth.dpop is missing')
      // The key a session's tokens are bound to, as the provider wrote it (cnf.jkt).
      const boundTo = () => {
        const token = auth.actor.getSnapshot().context.session?.accessToken ?? ''
        return (decodeJwt(token).cnf as { jkt?: string } | undefined)?.jkt
      }
      const signInKey = await auth.dpop.thumbprint()
      await signIn(auth)
      const first = boundTo()
      expect(first).toBe(signInKey)
      expect(await get('/api/a')).toBe(200)
      await auth.logout()
      await signIn(auth)
      expect(boundTo()).not.toBe(first)
      expect(await get('/api/b')).toBe(200)
    })
  },
)

describe('openid-client 6', () => {
  it("its DPoP handle, made from the session's key, refreshes: nonce answered, 1 grant, none revoked", async () => {
    const config = await openid.discovery(
      new URL(world.issuer),
      world.clientId,
      undefined,
      openid.None(),
      { execute: [openid.allowInsecureRequests] },
    )
    const handles = new Map<string, openid.DPoPHandle>()
    const auth = createFetchClient({
      dpop: true,
      attachTo: [world.resourceUrl],
      refresh: async (session, { dpop }) => {
        if (!dpop) throw new Error('no dpop handle in the refresh context')
        const jkt = await dpop.thumbprint()
        const handle = handles.get(jkt) ?? openid.getDPoPHandle(config, await dpop.keyPair())
        handles.set(jkt, handle)
        return openid.refreshTokenGrant(config, session.refreshToken as string, undefined, {
          DPoP: handle,
        })
      },
    })
    clients.push(auth as AuthClient)
    await signIn(auth as AuthClient)
    world.expireAccessTokens()
    const answers = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const response = await auth.fetch(`${world.resourceUrl}/api/o/${i}`)
        await response.body?.cancel()
        return response.status
      }),
    )
    expect(answers).toEqual(Array(10).fill(200))
    expect(world.snapshot()).toMatchObject({
      refreshGrants: 1,
      refreshGrantsFailed: 0,
      grantsRevoked: 0,
    })
    expect(world.snapshot().tokenNonceChallenges).toBeGreaterThanOrEqual(2)
  })
})
