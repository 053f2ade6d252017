/**
 * review2: the redirects followed by hand (src/dpop/redirects.ts, src/transports/fetch.ts,
 * src/dpop/index.ts) and the cases they leave to the platform's fetch.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient as createFetchClient } from '../../../src/fetch.js'
import { noRefresh, tinyServer } from '../review/support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function signIn(auth: {
  dpop?: { thumbprint(): Promise<string> } | undefined
  login(t: object): void
}) {
  await auth.dpop?.thumbprint()
  auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
}

/** An API that redirects `/api/moved` to another origin, which answers 200. */
async function apiRedirectingElsewhere() {
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
  const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
  closers.push(() => auth.dispose())
  await signIn(auth)
  return { api, elsewhere, auth }
}

describe('review2: a cross-origin redirect, in the cases not followed by hand', () => {
  // followHere = dpop && seesRedirects && !request && !rest?.redirect: a Request input
  // (openapi-fetch builds one for every call) is left to undici, which keeps `DPoP`.
  it('auth.fetch(new Request(...)): the other origin gets no DPoP proof', async () => {
    const { api, elsewhere, auth } = await apiRedirectingElsewhere()
    const response = await auth.fetch(new Request(`${api.url}/api/moved`))
    expect(response.status).toBe(200)
    expect(api.seen[0]?.headers.dpop).toBeDefined()
    expect(elsewhere.seen[0]?.headers.authorization).toBeUndefined()
    expect(elsewhere.seen[0]?.headers.dpop).toBeUndefined()
  })

  // `redirect: 'follow'` is fetch's default, spelled out (ky, many wrappers): not followed
  // by hand either.
  it("auth.fetch(url, { redirect: 'follow' }): the other origin gets no DPoP proof", async () => {
    const { api, elsewhere, auth } = await apiRedirectingElsewhere()
    const response = await auth.fetch(`${api.url}/api/moved`, { redirect: 'follow' })
    expect(response.status).toBe(200)
    expect(api.seen[0]?.headers.dpop).toBeDefined()
    expect(elsewhere.seen[0]?.headers.dpop).toBeUndefined()
  })

  it('auth.dpop.fetch(new Request(...)): the other origin gets no DPoP proof', async () => {
    const elsewhere = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
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
    await auth.dpop?.fetch(
      new Request(`${tokenServer.url}/token`, { method: 'POST', body: 'grant_type=x' }),
    )
    expect(tokenServer.seen[0]?.headers.dpop).toBeDefined()
    expect(elsewhere.seen[0]).toBeDefined()
    expect(elsewhere.seen[0]?.headers.dpop).toBeUndefined()
  })
})

describe('review2: a redirect chain that leaves the API origin and comes back', () => {
  // Fetch (and undici) drop Authorization on the first cross-origin hop and never put it
  // back: the request's header list has lost it. Following by hand, every hop whose URL is
  // the API's origin is authorized afresh, so the other origin chooses which API URL (and,
  // with 307, which method and body) gets the user's token and a fresh proof.
  it('the token does not come back to the API after a hop through another origin', async () => {
    let apiUrl = ''
    const elsewhere = await tinyServer((_req, res) => {
      res.writeHead(307, { location: `${apiUrl}/api/delete-account` })
      res.end()
    })
    const api = await tinyServer((req, res) => {
      if (req.url === '/api/upload') {
        res.writeHead(307, { location: `${elsewhere.url}/bucket` })
        res.end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"deleted":true}')
    })
    apiUrl = api.url
    closers.push(
      () => elsewhere.close(),
      () => api.close(),
    )
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
    closers.push(() => auth.dispose())
    await signIn(auth)

    await auth.fetch(`${api.url}/api/upload`, { method: 'POST', body: 'data' })
    const back = api.seen.find((r) => r.url === '/api/delete-account')
    expect(back).toBeDefined()
    expect(back?.method).toBe('POST')
    expect(back?.headers.authorization).toBeUndefined()
    expect(back?.headers.dpop).toBeUndefined()
  })
})

describe('review2: what the caller sees of a redirect followed by hand', () => {
  async function sameOriginRedirect() {
    const api = await tinyServer((req, res) => {
      if (req.url === '/api/old') {
        res.writeHead(302, { location: '/api/new' })
        res.end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    })
    closers.push(() => api.close())
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
    closers.push(() => auth.dispose())
    await signIn(auth)
    return { api, auth }
  }

  it('a redirect within the API: each hop carries a proof naming its own URL', async () => {
    const { api, auth } = await sameOriginRedirect()
    const response = await auth.fetch(`${api.url}/api/old`)
    expect(response.status).toBe(200)
    expect(response.url).toBe(`${api.url}/api/new`)
    const htus = api.seen.map((r) => {
      const proof = String(r.headers.dpop ?? '')
      return JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString()).htu
    })
    expect(htus).toEqual([`${api.url}/api/old`, `${api.url}/api/new`])
  })

  it('response.url is the final URL after redirects followed by hand (response.redirected is false: README)', async () => {
    const landing = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{}')
    })
    const api = await tinyServer((_req, res) => {
      res.writeHead(302, { location: `${landing.url}/landed` })
      res.end()
    })
    closers.push(
      () => landing.close(),
      () => api.close(),
    )
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
    closers.push(() => auth.dispose())
    await auth.dpop?.thumbprint()
    auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
    const response = await auth.fetch(`${api.url}/moved`)
    expect(response.status).toBe(200)
    expect(response.url).toBe(`${landing.url}/landed`)
    expect(landing.seen[0]?.headers.authorization).toBeUndefined()
  })

  it('a redirect loop rejects as fetch does, not with the 21st redirect as an answer', async () => {
    const api = await tinyServer((_req, res) => {
      res.writeHead(302, { location: '/api/loop' })
      res.end()
    })
    closers.push(() => api.close())
    await expect(fetch(`${api.url}/api/loop`)).rejects.toThrow(TypeError)
    const auth = createFetchClient({ refresh: noRefresh, dpop: true, attachTo: [api.url] })
    closers.push(() => auth.dispose())
    await signIn(auth)
    await expect(auth.fetch(`${api.url}/api/loop`)).rejects.toThrow(TypeError)
  })
})
