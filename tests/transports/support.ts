import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { AuthClient } from '../../src/index.js'
import type { LoggedRequest, TestAuthServer, TokenSet } from '../../src/testing/index.js'

/** A promise the test settles itself: how a test holds a callback until it says so. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/** Whose token a logged request carried, as the server reads it (undefined: none, or unknown). */
export function userOf(server: TestAuthServer, request: LoggedRequest): string | undefined {
  const token = request.authorization?.split(' ')[1]
  return token ? server.verifyAccessToken(token)?.sub : undefined
}

/**
 * Logs the user out and `next` in, synchronously, the moment the running refresh lands: in
 * the same tick the waiting requests are released, before any of them is sent.
 */
export function switchUserWhenRefreshLands(client: AuthClient, next: TokenSet): void {
  let wasRefreshing = false
  const subscription = client.actor.subscribe((snapshot) => {
    if (snapshot.matches('refreshing')) wasRefreshing = true
    else if (wasRefreshing) {
      subscription.unsubscribe()
      void client.logout()
      client.login(next)
    }
  })
}

/** A server on loopback that redirects every request to `location` (302). */
export async function redirector(location: string): Promise<{
  url: string
  close(): Promise<void>
}> {
  const server = createServer((_, res) => {
    res.writeHead(302, { location }).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
