/**
 * FINDING: a protected request that the API answers with a redirect to another origin
 * follows it with its `DPoP` proof. fetch (undici, and browsers per the Fetch spec) and
 * axios' follow-redirects drop `Authorization` on a cross-origin redirect, and the axios
 * transport's beforeRedirect hook deletes `Authorization` too (deleteAuthorization(headers)
 * without its `dpop` flag), but nobody drops `DPoP`. The other origin receives a fresh,
 * never-presented proof (its jti unused, the API only redirected), with `ath` of the token
 * and the API's nonce: with a stolen token it can be replayed at the API within the iat
 * window, which is what DPoP is meant to prevent. The commit says "Other origins get
 * neither" (token nor proof).
 *
 * `auth.dpop.fetch` (sign-in and refresh calls) has the same hole, and one more: it learns
 * the `DPoP-Nonce` of the response it finally got under the origin it *asked*
 * (`nonces.learn(attempt.url, …)`), so the other origin chooses the nonce of the next proofs
 * to the token endpoint (and, same origin, to the API).
 */
import axios from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient as createFetchClient } from '../../../src/fetch.js'
import { createAuthClient } from '../../../src/index.js'
import { claimsOf, noRefresh, tinyServer } from './support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function servers() {
  const elsewhere = await tinyServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"ok":true}')
  })
  const api = await tinyServer((_req, res) => {
    res.writeHead(307, { location: `${elsewhere.url}/landing` })
    res.end()
  })
  closers.push(
    () => elsewhere.close(),
    () => api.close(),
  )
  return { api, elsewhere }
}

/** Signs in with an opaque DPoP token after making the sign-in key (as `auth.dpop` does). */
async function signIn(auth: {
  dpop?: { thumbprint(): Promise<string> } | undefined
  login(t: object): void
}) {
  await auth.dpop?.thumbprint()
  auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
}

describe('a cross-origin redirect', () => {
  it('auth.fetch: the other origin gets neither Authorization nor the DPoP proof', async () => {
    const { api, elsewhere } = await servers()
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
    closers.push(() => auth.dispose())
    await signIn(auth)
    const response = await auth.fetch(`${api.url}/api/moved`)
    expect(response.status).toBe(200)
    expect(api.seen[0]?.headers.dpop).toBeDefined() // the API got its proof
    const landed = elsewhere.seen[0]?.headers
    expect(landed?.authorization).toBeUndefined()
    expect(landed?.dpop).toBeUndefined()
  })

  it('axios: the other origin gets neither Authorization nor the DPoP proof', async () => {
    const { api, elsewhere } = await servers()
    const http = axios.create({ baseURL: api.url })
    const auth = createAuthClient({ refresh: noRefresh, dpop: true, http })
    closers.push(() => auth.dispose())
    await signIn(auth)
    const response = await http.get('/api/moved')
    expect(response.status).toBe(200)
    expect(api.seen[0]?.headers.dpop).toBeDefined()
    const landed = elsewhere.seen[0]?.headers
    expect(landed?.authorization).toBeUndefined()
    expect(landed?.dpop).toBeUndefined()
  })
})

describe('auth.dpop.fetch and a redirect to another origin', () => {
  async function redirectingTokenServer() {
    const elsewhere = await tinyServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'dpop-nonce': 'chosen-by-elsewhere',
      })
      res.end('{}')
    })
    const tokenServer = await tinyServer((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/token` })
      res.end()
    })
    closers.push(
      () => elsewhere.close(),
      () => tokenServer.close(),
    )
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [] })
    closers.push(() => auth.dispose())
    await auth.dpop?.fetch(`${tokenServer.url}/token`, { method: 'POST', body: 'grant_type=x' })
    return { auth, elsewhere, tokenServer }
  }

  it('the other origin gets no proof', async () => {
    const { elsewhere } = await redirectingTokenServer()
    expect(elsewhere.seen[0]).toBeDefined()
    expect(elsewhere.seen[0]?.headers.dpop).toBeUndefined()
  })

  it("the other origin's DPoP-Nonce is not learned as the token endpoint's", async () => {
    const { auth, tokenServer } = await redirectingTokenServer()
    const next = (await auth.dpop?.proof('POST', `${tokenServer.url}/token`)) as string
    expect(claimsOf(next).nonce).not.toBe('chosen-by-elsewhere')
  })
})
