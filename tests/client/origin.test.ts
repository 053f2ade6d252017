import axios, { type AxiosRequestConfig, type InternalAxiosRequestConfig } from 'axios'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createAuthClient } from '../../src/index.js'
import { type AttachTo, createOriginCheck as createPolicy } from '../../src/origin.js'
import { axiosMayAttach } from '../../src/transports/axiosUrl.js'

// Invariant 5 in Node: no `location`, so relative URLs resolve only through `baseURL`, as
// axios' http adapter resolves them (`new URL(fullPath)` with no base: a relative one fails).

const API = 'http://api.example'
const config = (c: AxiosRequestConfig) => c as InternalAxiosRequestConfig
/** The axios transport's check: axios' full path, resolved as axios' adapters resolve it. */
const createOriginCheck = (attachTo: AttachTo) => axiosMayAttach(createPolicy(attachTo))
const mayAttach = (attachTo: AttachTo, c: AxiosRequestConfig) =>
  createOriginCheck(attachTo)(config(c))

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('createOriginCheck in Node', () => {
  // [url, baseURL, expected] against attachTo [API].
  const table: Array<[string, string | undefined, boolean]> = [
    ['/x', API, true],
    ['x', `${API}/v1/`, true],
    ['', API, true],
    [`${API}:80/x`, undefined, true],
    ['HTTP://API.EXAMPLE/x', undefined, true],
    [`http://evil.example@api.example/x`, undefined, true],
    [`${API}@evil.example/x`, undefined, false],
    [`${API}:8080/x`, undefined, false],
    ['https://api.example/x', undefined, false],
    ['//evil.example/x', API, false],
    ['//api.example/x', API, false], // no scheme and no page: axios' http adapter fails
    // Joined to an absolute baseURL these are paths on the API, whatever their slashes.
    ['/\\evil.example/x', API, true],
    ['\\\\evil.example/x', API, true],
    ['/\t/evil.example/x', API, true],
    ['/\n/evil.example/x', API, true],
    // Relative with nothing to resolve against: the request fails, and carries no token.
    ['/api/x', undefined, false],
    ['x', undefined, false],
    ['/\\evil.example/x', undefined, false],
    ['\\\\evil.example/x', undefined, false],
    ['/api/x', '/api', false],
    // axios refuses `http:` without `//`; such a request never leaves.
    ['http:api.example/x', undefined, false],
    ['\thttp:/api.example/x', undefined, false],
    ['/x', 'http:api.example', false],
    ['http://ëvil.example/x', undefined, false],
    ['http://xn--vil-ima.example/x', undefined, false],
    ['http://[::1]/x', undefined, false],
    ['blob:http://api.example/5f0c2c36-1b6a-4f0e-a8a5-6f1d9f0c1e11', undefined, false],
    ['data:text/plain,hello', undefined, false],
    ['javascript:alert(1)', undefined, false],
  ]
  it.each(table)('url %j with baseURL %j: token %s', (url, baseURL, expected) => {
    expect(mayAttach([API], { url, baseURL })).toBe(expected)
  })

  it('normalises listed origins: default ports, case, IPv6, IDN', () => {
    expect(mayAttach(['HTTP://API.example:80/some/path'], { url: `${API}/x` })).toBe(true)
    expect(mayAttach(['http://[::1]:8080'], { url: 'http://[0:0::1]:8080/x' })).toBe(true)
    expect(mayAttach(['http://bücher.example'], { url: 'http://xn--bcher-kva.example/x' })).toBe(
      true,
    )
    expect(mayAttach(['http://bücher.example'], { url: 'http://ëvil.example/x' })).toBe(false)
  })

  it('with allowAbsoluteUrls: false, an absolute URL needs both readings allowed', () => {
    // axios ≥ 1.8 joins it to baseURL; older axios ignores the option and sends it as is.
    const evil = { baseURL: API, url: 'http://evil.example/x', allowAbsoluteUrls: false }
    expect(mayAttach([API], evil)).toBe(false)
    expect(mayAttach([API], { ...evil, url: `${API}/x` })).toBe(true)
    // Joined to a relative baseURL (nothing to resolve against in Node) it fails.
    expect(mayAttach([API], { ...evil, baseURL: '/', url: `${API}/x` })).toBe(false)
  })

  it('resolves against http://localhost with socketPath, as the http adapter does', () => {
    expect(mayAttach(['http://localhost'], { url: '/x', socketPath: '/tmp/s.sock' })).toBe(true)
    expect(mayAttach(['http://localhost'], { url: '/x' })).toBe(false)
  })

  it('RegExp entries are tested on the origin, every time (g and y flags ignored)', () => {
    const check = createOriginCheck([/^http:\/\/[a-z]+\.example$/g])
    for (let i = 0; i < 4; i += 1) expect(check(config({ url: `${API}/x` }))).toBe(true)
    expect(check(config({ url: 'http://api.example.evil.net/x' }))).toBe(false)
    // A blob URL's origin matches the pattern, yet it is not an HTTP request.
    expect(check(config({ url: `blob:${API}/0c5f` }))).toBe(false)
  })

  it('a predicate sees the resolved URL and attaches only on exactly true', () => {
    const seen: string[] = []
    const predicate = (url: URL) => {
      seen.push(url.href)
      return url.protocol === 'blob:' || url.hostname === 'api.example'
    }
    expect(mayAttach(predicate, { baseURL: `${API}/v1`, url: 'x' })).toBe(true)
    expect(mayAttach(predicate, { url: `blob:${API}/0c5f` })).toBe(true)
    expect(mayAttach(predicate, { url: 'data:text/plain,hi' })).toBe(false)
    expect(seen).toEqual([`${API}/v1/x`, `blob:${API}/0c5f`, 'data:text/plain,hi'])
    const truthy = (() => 'yes') as unknown as (url: URL) => boolean
    expect(mayAttach(truthy, { url: `${API}/x` })).toBe(false)
    // A relative URL with nothing to resolve against never reaches the predicate.
    expect(mayAttach(() => true, { url: '/x' })).toBe(false)
  })
})

describe('createOriginCheck with a page (stubbed location and document)', () => {
  const page = (href: string, baseURI = href) => {
    vi.stubGlobal('location', { href })
    vi.stubGlobal('document', { baseURI })
  }

  it.each([
    ['relative first', ['/api/x', '/\\evil.example/x'], [true, false]],
    ['evil first', ['/\\evil.example/x', '/api/x'], [false, true]],
    ['tab first', ['/\t/evil.example/x', 'x', '\\\\evil.example/x'], [false, true, false]],
  ])('decides every request on its own, %s (no cache by baseURL)', (_, urls, expected) => {
    page('http://app.example/dir/page')
    for (const baseURL of [undefined, '/']) {
      const check = createOriginCheck(['http://app.example'])
      expect(urls.map((url) => check(config({ url, baseURL })))).toEqual(expected)
    }
  })

  it('resolves against the document base URL and the location, and needs both', () => {
    page('http://app.example/page', 'http://cdn.example/assets/')
    expect(mayAttach(['http://app.example'], { url: '/api/x' })).toBe(false)
    expect(mayAttach(['http://app.example', 'http://cdn.example'], { url: '/api/x' })).toBe(true)
    expect(mayAttach(['http://app.example'], { url: 'http://app.example/x' })).toBe(true)
  })
})

describe('through a real axios instance', () => {
  it('the interceptor attaches the token only where the origin check allows', async () => {
    const sent: Array<[string | undefined, unknown]> = []
    const http = axios.create({
      baseURL: API,
      // Records what axios would send, without a network.
      adapter: async (c) => {
        sent.push([c.url, c.headers.Authorization])
        return { data: null, status: 200, statusText: 'OK', headers: {}, config: c }
      },
    })
    const auth = createAuthClient({
      http,
      crossTab: false,
      onWarning: () => undefined,
      refresh: async () => {
        throw new Error('no refresh in this test')
      },
    })
    auth.login({ accessToken: 'tok', refreshToken: 'r', expiresIn: 3600 })
    for (const url of ['/x', '//evil.example/x', '/\\evil.example/x', 'http://evil.example/x']) {
      await http.get(url)
    }
    await http.get('http://evil.example/y', { allowAbsoluteUrls: false })
    auth.dispose()
    expect(sent).toEqual([
      ['/x', 'Bearer tok'],
      ['//evil.example/x', undefined],
      ['/\\evil.example/x', 'Bearer tok'],
      ['http://evil.example/x', undefined],
      ['http://evil.example/y', undefined],
    ])
  })
})
