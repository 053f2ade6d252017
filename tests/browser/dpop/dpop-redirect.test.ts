// A redirect from an attached API to another origin, in a browser: the documented limit.
//
// Chromium drops `Authorization` when fetch/XHR follow a cross-origin redirect, but not the
// custom `DPoP` header, and a page cannot follow redirects itself (`redirect: 'manual'` gives
// an opaque answer). So the other origin may receive the proof (README, DPoP: what it does
// not protect). What holds: never the token, and the proof names the API's URL and method,
// so it is worth nothing at the other origin. (In Node the client follows redirects itself
// and sends no proof elsewhere: tests/dpop/review/redirect-proof-leak.test.ts.)
import type { IncomingHttpHeaders } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Harness, startOtherOrigin, type Transport } from './harness.js'

const h = new Harness()
beforeAll(() => h.start())
afterAll(() => h.stop())
afterEach(() => h.cleanup())

describe.each<Transport>(['fetch', 'axios'])('DPoP and redirects (%s)', (via) => {
  it('a redirect from an allowed API to another origin never carries the token; a proof that goes along names the API', async () => {
    await h.fresh(via)
    const seen: IncomingHttpHeaders[] = []
    const elsewhere = await startOtherOrigin((req, res) => {
      seen.push(req.headers)
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"landed":true}')
    })
    // An API the client may send the token to, which redirects (a moved resource, a CDN).
    const api = await startOtherOrigin((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/landing` }).end()
    })
    try {
      const tab = await h.open('memory', `&dpop=1&extra=${encodeURIComponent(api.url)}`)
      await tab.evaluate(() => window.review.login())
      // Followed or refused, as a fix decides; what matters is what reached the other origin.
      await tab.evaluate((url) => window.review.fireUrl(url), `${api.url}/moved`)
      expect(seen.length).toBeGreaterThan(0)
      for (const headers of seen) {
        expect(headers.authorization).toBeUndefined()
        const proof = headers.dpop
        if (typeof proof === 'string') {
          const claims = JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString())
          expect(claims.htu).toBe(`${api.url}/moved`)
        }
      }
    } finally {
      await elsewhere.close()
      await api.close()
    }
  })
})
