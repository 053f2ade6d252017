import axios, { type AxiosInstance } from 'axios'
import { waitFor } from 'xstate'
import { createAuthClient as createFetchClient } from '../src/fetch.js'
import {
  type AuthClient,
  type AuthClientOptions,
  createAuthClient,
  type DpopHandle,
  type RefreshFunction,
} from '../src/index.js'
import {
  createManualClock,
  createTestAuthServer,
  type ManualClock,
  TEST_PASSWORD,
  type TestAuthServer,
  type TestAuthServerOptions,
  type TokenSet,
} from '../src/testing/index.js'

type StateValue = Parameters<ReturnType<AuthClient['actor']['getSnapshot']>['matches']>[0]

/**
 * The `refresh` option as an app writes it for the token server at `url`: a bare axios call
 * (never the protected instance), the refresh token in the JSON body.
 */
export function refreshAt(url: string): RefreshFunction {
  return async (session, { signal }) =>
    (await axios.post(`${url}/auth/refresh`, { refreshToken: session.refreshToken }, { signal }))
      .data
}

/**
 * `refresh` for a DPoP token server at `url`: `dpop.fetch` adds the proof and answers the
 * server's nonce challenges. An unreadable body is returned as text, as axios does, so it
 * is refused as a malformed answer rather than taken for a network failure.
 */
export function dpopRefreshAt(url: string): RefreshFunction {
  return async (session, { signal, dpop }) => {
    if (!dpop) throw new Error('the client has no `dpop` option')
    const response = await dpop.fetch(`${url}/auth/refresh`, {
      method: 'POST',
      signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: session.refreshToken }),
    })
    const text = await response.text()
    if (!response.ok) throw Object.assign(new Error('refresh refused'), { status: response.status })
    try {
      return JSON.parse(text)
    } catch {
      return text as never
    }
  }
}

/** The app's own login call to a DPoP token server at `url`, through `auth.dpop`. */
export async function dpopSignInAt(
  url: string,
  dpop: DpopHandle | undefined,
  username = 'ada',
): Promise<TokenSet> {
  if (!dpop) throw new Error('the client has no `dpop` option')
  const response = await dpop.fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: TEST_PASSWORD }),
  })
  if (!response.ok) throw new Error(`login refused with HTTP ${response.status}`)
  return response.json()
}

/** The app's own login call to the token server at `url`. */
export async function signInAt(url: string, username = 'ada'): Promise<TokenSet> {
  return (await axios.post(`${url}/auth/login`, { username, password: TEST_PASSWORD })).data
}

/** The HTTP client a harness protects: an axios instance, or `auth.fetch` alone. */
export type Transport = 'axios' | 'fetch'

/** A protected call's outcome, the same for both transports (an HTTP status never throws). */
export interface Answer {
  status: number
  data: unknown
}

export interface Harness {
  server: TestAuthServer
  clock: ManualClock
  /** The protected axios instance; with the fetch transport, a bare one (no token). */
  http: AxiosInstance
  /**
   * The client. With the fetch transport it comes from `auth-machine/fetch` (no `attach`;
   * `attachTo` is the server), typed as the full client for the tests' convenience.
   */
  auth: AuthClient
  transport: Transport
  /**
   * A protected call through the harness' transport (relative to the server's URL):
   * resolves with any HTTP status, rejects with the session's errors and aborts.
   */
  request(
    path: string,
    init?: { method?: string; signal?: AbortSignal; skipAuth?: boolean },
  ): Promise<Answer>
  /** Every refresh token the client received, to prove none ever leaks. */
  issuedRefreshTokens: string[]
  warnings: string[]
  /** Signs in through the server's login route, as an app would. */
  signIn(): Promise<void>
  /** Resolves when the machine's state matches `state` (e.g. 'refreshing'). */
  until(state: StateValue): Promise<void>
  close(): Promise<void>
}

/**
 * A real token server on loopback and a client talking to it, sharing one manual clock so
 * token expiry on both sides moves only when a test says so.
 */
export async function createHarness(
  clientOptions: Partial<AuthClientOptions> = {},
  serverOptions: TestAuthServerOptions = {},
  transport: Transport = 'axios',
): Promise<Harness> {
  const clock = createManualClock(Date.now())
  const server = await createTestAuthServer({ now: clock.now, ...serverOptions })
  const http = axios.create({ baseURL: server.url })
  const issuedRefreshTokens: string[] = []
  const warnings: string[] = []
  // With `dpop`, the app's calls to the token server carry proofs (`auth.dpop`, `dpop.fetch`).
  const dpop = clientOptions.dpop !== undefined && clientOptions.dpop !== false
  const create =
    transport === 'axios'
      ? (options: AuthClientOptions) => createAuthClient({ http, ...options })
      : (options: AuthClientOptions) =>
          createFetchClient({
            attachTo: [server.url],
            ...(options as Parameters<typeof createFetchClient>[0]),
          }) as AuthClient
  const auth = create({
    clock,
    onWarning: (message) => warnings.push(message),
    refresh: async (session, context) => {
      const data = await (dpop ? dpopRefreshAt : refreshAt)(server.url)(session, context)
      if (typeof data.refreshToken === 'string') issuedRefreshTokens.push(data.refreshToken)
      return data
    },
    ...clientOptions,
  })
  // Invariant 2, checked on every snapshot of every client test: the queue only exists
  // while refreshing.
  const violations: string[] = []
  auth.actor.subscribe((snapshot) => {
    if (!snapshot.matches('refreshing') && snapshot.context.queue.length > 0) {
      violations.push(
        `${JSON.stringify(snapshot.value)} with ${snapshot.context.queue.length} queued`,
      )
    }
  })
  const request: Harness['request'] =
    transport === 'axios'
      ? async (path, init = {}) => {
          const { method = 'GET', ...rest } = init
          const response = await http.request({ url: path, method, validateStatus: null, ...rest })
          return { status: response.status, data: response.data }
        }
      : async (path, init) => {
          const response = await auth.fetch(`${server.url}${path}`, init)
          const text = await response.text()
          return { status: response.status, data: text ? JSON.parse(text) : undefined }
        }
  return {
    server,
    clock,
    http,
    auth,
    transport,
    request,
    issuedRefreshTokens,
    warnings,
    async signIn() {
      const tokens = dpop ? await dpopSignInAt(server.url, auth.dpop) : await signInAt(server.url)
      issuedRefreshTokens.push(tokens.refreshToken)
      auth.login(tokens)
    },
    async until(state) {
      await waitFor(auth.actor, (snapshot) => snapshot.matches(state))
    },
    async close() {
      auth.dispose()
      await server.close()
      if (violations.length > 0)
        throw new Error(`queue outside refreshing: ${violations.join('; ')}`)
    },
  }
}

/** JSON of a value that may hold cycles and class instances (inspection events do). */
export function safeStringify(value: unknown): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item !== 'object' || item === null) return item
    if (seen.has(item)) return '[cycle]'
    seen.add(item)
    return item
  })
}

/** Settles every promise and reports how each ended, without unhandled rejections. */
export async function outcomes<T>(promises: Promise<T>[]) {
  const results = await Promise.allSettled(promises)
  return {
    fulfilled: results.filter((r) => r.status === 'fulfilled').length,
    rejected: results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : [])),
  }
}
