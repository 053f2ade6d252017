import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import axios from 'axios-1.7'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { tokens } from './axiosFake.js'

// The peer range accepts axios ^1.7.0. Before axios checked redirects itself, its Node
// adapter relied on follow-redirects, which keeps Authorization on a redirect to a subdomain.
// The client strips it on any change of origin (second review; this failed before the fix).

let auth: AuthClient | undefined
let close: (() => void) | undefined
afterEach(() => {
  auth?.dispose()
  close?.()
})

it('axios 1.7: a redirect from an allowed origin to its subdomain carries no token', async () => {
  expect(axios.VERSION).toBe('1.7.9')
  const seen: Array<{ host: string | undefined; authorization: string | undefined }> = []
  const server = createServer((req, res) => {
    seen.push({ host: req.headers.host, authorization: req.headers.authorization })
    const { port } = server.address() as AddressInfo
    if (req.url === '/go') {
      res.writeHead(302, { location: `http://attacker.api.localhost:${port}/steal` }).end()
    } else res.end('{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  close = () => {
    server.closeAllConnections()
    server.close()
  }
  const api = `http://api.localhost:${(server.address() as AddressInfo).port}`
  const http = axios.create({
    baseURL: api,
    // Every *.localhost name to loopback, as DNS would resolve a real subdomain.
    lookup: (_host: string, _options: unknown, done: (e: null, a: string, f: number) => void) =>
      done(null, '127.0.0.1', 4),
  } as never)
  auth = createAuthClient({
    http: http as never,
    attachTo: [api],
    refresh: async () => tokens(2),
    onWarning: () => undefined,
  })
  auth.login(tokens(1))
  await auth.ready
  await http.get('/go')
  expect(seen.map((request) => [request.host?.split(':')[0], request.authorization])).toEqual([
    ['api.localhost', 'Bearer access-1'],
    ['attacker.api.localhost', undefined],
  ])
})
