/** Shared bits of the review tests (not a test file). */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Coordinator } from '../../../src/coordination/types.js'
import { type DpopKeyStore, memoryKeyStore } from '../../../src/dpop/keys.js'

export const noRefresh = async (): Promise<never> => {
  throw new Error('no refresh expected in this test')
}

/** The claims of a compact JWS (a DPoP proof), unverified. */
export function claimsOf(jws: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'))
}

/** An unsigned JWT-shaped token with `claims` (the client only decodes it). */
export function jwt(claims: object): string {
  return `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`
}

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

/** A tiny HTTP server of our own on 127.0.0.1 that logs every request it gets. */
export async function tinyServer(
  handle: (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) => void,
): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = []
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    req.resume()
    req.on('end', () => handle(req, res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/**
 * A coordinator as an app may write one (the public `Coordinator` interface): it restores
 * the stored session, tells nobody anything, and keeps the DPoP key in `keys`, which the
 * test shares between clients (as IndexedDB is shared by the tabs of a profile).
 */
export function keyStoreCoordinator(keys: DpopKeyStore = memoryKeyStore()): Coordinator {
  return {
    open: () => ({
      restore: async (stored) => stored,
      announce: async () => undefined,
      refresh: (_current, _startedAt, _signal, refresh) => refresh(),
      close: () => undefined,
      dpopKeys: keys,
    }),
  }
}
