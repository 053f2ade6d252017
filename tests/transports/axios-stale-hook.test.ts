import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import axios from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F6: checkAtSend installs stripOnRedirect(config) only when the config's beforeRedirect is
// not already one of its hooks. A re-sent config (`{ ...response.config, url }`, a failover
// or retry helper, and the transport's own replay) carries the hook made for the EARLIER
// send, whose closure compares redirect targets with the earlier URL. After the url changes,
// a same-origin redirect on the new origin loses Authorization, its 401 is "provable", and the
// refresh token is spent; the replay carries the same stale hook and fails the same way.

let auth: AuthClient | undefined
let close: (() => Promise<void>) | undefined
afterEach(async () => {
  auth?.dispose()
  auth = undefined
  await close?.()
})

it('a config re-sent to another allowed origin keeps its token on a same-origin redirect', async () => {
  const seen: Array<[string | undefined, string | undefined]> = []
  const server = createServer((req, res) => {
    seen.push([`${req.headers.host}${req.url}`, req.headers.authorization])
    if (req.url === '/go') return res.writeHead(302, { location: '/me' }).end()
    res.writeHead(req.headers.authorization ? 200 : 401).end('{}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  close = () =>
    new Promise((r) => {
      server.closeAllConnections()
      server.close(() => r())
    })
  const port = (server.address() as AddressInfo).port
  const X = `http://127.0.0.1:${port}` // two origins, one server
  const Y = `http://localhost:${port}`
  const http = axios.create()
  let refreshes = 0
  auth = createAuthClient({
    refresh: async () => tokens(2 + refreshes++),
    attachTo: [X, Y],
    onWarning: () => undefined,
  })
  auth.attach(http)
  auth.login(tokens(1))
  await auth.ready
  const first = await http.get(`${X}/me`)
  seen.length = 0
  // e.g. a failover helper: the same request against the secondary host
  const status = await http.request({ ...first.config, url: `${Y}/go` }).then(
    (r) => r.status,
    (e) => e.response?.status,
  )
  expect({ status, refreshes, seen }).toEqual({
    status: 200,
    refreshes: 0,
    seen: [
      [`localhost:${port}/go`, 'Bearer access-1'],
      [`localhost:${port}/me`, 'Bearer access-1'],
    ],
  })
})
