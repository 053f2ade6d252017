import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { type ControlTarget, handleControl } from './control.js'
import { DelayRules } from './delays.js'
import { DpopPolicy } from './dpop-policy.js'
import { type FailNextRefreshOptions, FaultQueue, type RefreshFaultKind } from './faults.js'
import { type HoldHandle, HoldRegistry } from './holds.js'
import {
  applyCors,
  BodyTooLargeError,
  readBody,
  sendJson,
  sendPreflight,
  splitTarget,
} from './http.js'
import type { AccessTokenClaims } from './jwt.js'
import { isOAuthRefreshCall, OAUTH_TOKEN_PATH } from './oauth.js'
import { handleAppRoute, type RouteContext, type RoutedRequest } from './routes.js'
import { type TokenSet, TokenStore } from './tokens.js'
import type {
  LoggedRequest,
  TestAuthServer,
  TestAuthServerCounters,
  TestAuthServerOptions,
  TestLoginOptions,
} from './types.js'

// The DPoP counters exist only on DPoP servers, so other servers' counters are unchanged.
const zeroCounters = (dpop: boolean): TestAuthServerCounters => ({
  logins: 0,
  refreshCalls: 0,
  refreshSuccesses: 0,
  refreshFailures: 0,
  reuseDetections: 0,
  unauthorized: 0,
  protectedOk: 0,
  requests: 0,
  ...(dpop && { dpopNonceChallenges: 0, dpopProofsRefused: 0, dpopReplays: 0 }),
})

// A SHA-256 digest in base64url: what an RFC 7638 thumbprint looks like.
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/

/** Whether a request spends a refresh token, on the JSON route or the OAuth one. */
function isRefreshCall(path: string, query: string, body: string): boolean {
  return path === '/auth/refresh' || (path === OAUTH_TOKEN_PATH && isOAuthRefreshCall(query, body))
}

interface Waiter {
  check(): void
  fail(error: Error): void
}

class TestAuthServerImpl implements TestAuthServer {
  readonly url: string
  readonly port: number
  readonly #http: Server
  readonly #now: () => number
  readonly #store: TokenStore
  readonly #dpop: DpopPolicy | undefined
  #nonceChallenges: Array<{ pathPrefix: string; challenged(): void }> = []
  readonly #faults = new FaultQueue()
  readonly #delays = new DelayRules()
  readonly #holds = new HoldRegistry(() => this.#notify())
  readonly #sockets = new Set<Socket>()
  readonly #hung = new Set<(answer: boolean) => void>()
  readonly #waiters = new Set<Waiter>()
  readonly #log: LoggedRequest[] = []
  #counters: TestAuthServerCounters
  // Unlike `counters.protectedOk`, never reset: `n` stays unique for the server's life.
  #protectedCount = 0
  #refreshInFlight = 0
  #maxConcurrentRefreshes = 0
  #closing: Promise<void> | undefined
  readonly #routeContext: RouteContext

  constructor(http: Server, now: () => number, store: TokenStore, dpop: DpopPolicy | undefined) {
    this.#http = http
    this.#now = now
    this.#store = store
    this.#dpop = dpop
    this.#counters = zeroCounters(dpop !== undefined)
    this.port = (http.address() as AddressInfo).port
    this.url = `http://127.0.0.1:${this.port}`
    this.#routeContext = {
      issuer: this.url,
      store,
      dpop,
      tokenType: dpop ? 'DPoP' : 'Bearer',
      count: (counter) => {
        this.#counters[counter] = (this.#counters[counter] ?? 0) + 1
        this.#notify()
      },
      login: (username, jkt) => this.login(username, jkt === undefined ? {} : { jkt }),
      takeFault: () => this.#faults.take(),
      hang: () =>
        this.#closing
          ? Promise.resolve(false)
          : new Promise<boolean>((resume) => this.#hung.add(resume)),
      nextProtectedCount: () => ++this.#protectedCount,
      takeNonceChallenge: (path) => {
        const index = this.#nonceChallenges.findIndex((c) => path.startsWith(c.pathPrefix))
        const [challenge] = index < 0 ? [] : this.#nonceChallenges.splice(index, 1)
        if (!challenge || !this.#dpop) return undefined
        const nonce = this.#dpop.rotateNonce()
        challenge.challenged()
        return nonce
      },
    }
    http.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
    http.on('request', (req, res) => this.#serve(req, res))
  }

  get counters(): Readonly<TestAuthServerCounters> {
    return { ...this.#counters }
  }

  get requests(): readonly LoggedRequest[] {
    return [...this.#log]
  }

  get refreshInFlight(): number {
    return this.#refreshInFlight
  }

  get maxConcurrentRefreshes(): number {
    return this.#maxConcurrentRefreshes
  }

  get dpopNonce(): string | undefined {
    return this.#dpop?.nonce
  }

  rotateDpopNonce(): string {
    if (!this.#dpop) throw new Error('DPoP is off: set the dpop option to use nonces')
    const nonce = this.#dpop.rotateNonce()
    this.#notify()
    return nonce
  }

  login(username = 'user', { jkt }: TestLoginOptions = {}): TokenSet {
    if (this.#dpop && jkt === undefined) {
      throw new Error(
        'this server has the dpop option: bind the session with login(username, { jkt }), ' +
          'jkt being the RFC 7638 thumbprint of the client key (see jwkThumbprint)',
      )
    }
    if (!this.#dpop && jkt !== undefined) {
      throw new Error('login({ jkt }) binds a session to a DPoP key: set the dpop option first')
    }
    if (jkt !== undefined && (typeof jkt !== 'string' || !THUMBPRINT.test(jkt))) {
      throw new Error('jkt must be an RFC 7638 SHA-256 thumbprint: 43 base64url characters')
    }
    const tokens = this.#store.login(username, jkt)
    this.#counters.logins++
    this.#notify()
    return tokens
  }

  verifyAccessToken(token: string): AccessTokenClaims | null {
    return this.#store.verifyAccessToken(token)
  }

  expireAccessTokens(): void {
    this.#store.expireAccessTokens()
    this.#notify()
  }

  revokeSessions(): void {
    this.#store.revokeAll()
    this.#notify()
  }

  failNextRefresh(
    kind: RefreshFaultKind,
    { times = 1, afterRefresh = false }: FailNextRefreshOptions = {},
  ): void {
    this.#faults.add(kind, times, afterRefresh)
    this.#notify()
  }

  clearFaults(): void {
    this.#faults.clear()
    this.#notify()
  }

  releaseHung(): void {
    this.#answerHung(true)
  }

  challengeDpopNonce(pathPrefix: string): HoldHandle {
    if (!this.#dpop?.nonce) throw new Error('DPoP nonces are off: set dpop.nonce to challenge')
    let hold: HoldHandle | undefined
    let cancelled = false
    const challenge = {
      pathPrefix,
      challenged: () => {
        // Held from the moment of the challenge: the request coming back cannot slip by.
        if (!cancelled) hold = this.hold(pathPrefix)
      },
    }
    this.#nonceChallenges.push(challenge)
    return {
      release: () => {
        cancelled = true
        this.#nonceChallenges = this.#nonceChallenges.filter((c) => c !== challenge)
        hold?.release()
      },
      waiting: () => hold?.waiting() ?? 0,
      untilWaiting: (n) => this.waitFor(() => (hold?.waiting() ?? 0) >= n),
    }
  }

  hold(pathPrefix: string): HoldHandle {
    const hold = this.#holds.create(pathPrefix)
    return {
      release: hold.release,
      waiting: hold.waiting,
      untilWaiting: (n) => this.waitFor(() => hold.waiting() >= n),
    }
  }

  delay(pathPrefix: string, ms: number): void {
    this.#delays.set(pathPrefix, ms)
  }

  clearDelays(): void {
    this.#delays.clear()
  }

  resetCounters(): void {
    this.#counters = zeroCounters(this.#dpop !== undefined)
    this.#maxConcurrentRefreshes = this.#refreshInFlight
    this.#notify()
  }

  waitFor(predicate: (server: TestAuthServer) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closing) return reject(new Error('test auth server is closed'))
      const waiter: Waiter = {
        check: () => {
          let met: boolean
          try {
            met = predicate(this)
          } catch (error) {
            this.#waiters.delete(waiter)
            return reject(error)
          }
          if (met) {
            this.#waiters.delete(waiter)
            resolve()
          }
        },
        fail: (error) => {
          this.#waiters.delete(waiter)
          reject(error)
        },
      }
      this.#waiters.add(waiter)
      waiter.check()
    })
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()))
    // Parked handlers are woken first and see the server closing, so none of them is left
    // pending and none writes to a socket that is about to go.
    this.#holds.close()
    this.#answerHung(false)
    this.#delays.wakeAll()
    for (const socket of this.#sockets) socket.destroy()
    const error = new Error('test auth server closed before the awaited condition was met')
    for (const waiter of [...this.#waiters]) waiter.fail(error)
    await closed
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter.check()
  }

  #answerHung(answer: boolean): void {
    const hung = [...this.#hung]
    this.#hung.clear()
    for (const resume of hung) resume(answer)
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy()
      sendJson(res, 500, { error: 'server_error', error_description: String(error) })
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const { path, query } = splitTarget(req.url)
    let countedRefresh = false
    // In flight until answered or hung up on: the question tests ask is how many refreshes
    // the client has outstanding, and an abandoned one is no longer outstanding for it,
    // even though the server still processes it.
    res.once('close', () => {
      if (countedRefresh) this.#refreshInFlight--
      this.#notify()
    })
    applyCors(req, res, this.#dpop !== undefined)
    let body: string
    try {
      body = await readBody(req)
    } catch (error) {
      if (error instanceof BodyTooLargeError) return sendJson(res, 413, { error: 'too_large' })
      return void res.destroy()
    }
    if (path.startsWith('/__control/')) {
      return handleControl(this.#controlTarget, method, path, body, res)
    }
    this.#record(req, method, path, query, body)
    if (method === 'POST' && isRefreshCall(path, query, body)) {
      this.#counters.refreshCalls++
      // A client that hung up while its body was being read is no longer waiting for it.
      if (!res.destroyed) {
        countedRefresh = true
        this.#refreshInFlight++
        this.#maxConcurrentRefreshes = Math.max(this.#maxConcurrentRefreshes, this.#refreshInFlight)
      }
    }
    this.#notify()
    await this.#answer({ req, res, method, path, query, body })
  }

  async #answer(request: RoutedRequest): Promise<void> {
    const { method, path, res } = request
    if (method === 'OPTIONS') {
      this.#labelNonce(res)
      return sendPreflight(res, this.#dpop !== undefined)
    }
    if (!(await this.#holds.pass(path))) return
    await this.#delays.wait(path)
    if (this.#closing) return
    // Labelled as it is answered, so the nonce is the one current when the answer is decided.
    this.#labelNonce(res)
    await handleAppRoute(this.#routeContext, request)
  }

  /** With DPoP nonces on, every application response tells the current nonce. */
  #labelNonce(res: ServerResponse): void {
    const nonce = this.#dpop?.nonce
    if (nonce !== undefined) res.setHeader('dpop-nonce', nonce)
  }

  #record(req: IncomingMessage, method: string, path: string, query: string, body: string) {
    const entry: LoggedRequest = { method, path, query, at: this.#now() }
    const { authorization, dpop } = req.headers
    if (authorization !== undefined) entry.authorization = authorization
    if (typeof dpop === 'string') entry.dpop = dpop
    if (body !== '') entry.body = body
    this.#log.push(Object.freeze(entry))
    this.#counters.requests++
  }

  get #controlTarget(): ControlTarget {
    return { server: this, holds: this.#holds, faults: this.#faults, delays: this.#delays }
  }
}

/**
 * Starts a real HTTP token server on 127.0.0.1 for tests: HS256 JWT access tokens,
 * rotating refresh tokens with reuse detection, protected `/api/*` routes, fault
 * injection, holds and counters. Node only.
 *
 * Any non-empty user name logs in with the password `'secret'`.
 *
 * Routes: `POST /auth/login {username, password}`, `POST /auth/refresh {refreshToken}`,
 * `POST /auth/logout {refreshToken}`, protected `/api/*` (and the quirky
 * `/api/soft-401`, which answers 200 `{code: 401}` instead of 401), `GET /public`,
 * and the `/__control/*` routes mirroring the programmatic controls.
 *
 * For OAuth client libraries (openid-client, oauth4webapi) there is also a standard token
 * endpoint, `POST /oauth/token` (RFC 6749): form-encoded `grant_type=password` with
 * `username`, `password`, or `grant_type=refresh_token` with `refresh_token`, each with a
 * `client_id` (any value; public client, no secret). It answers snake_case
 * `{access_token, token_type: 'Bearer', expires_in, refresh_token}`; a refused grant is 400
 * `invalid_grant`. Its refresh grant shares `/auth/refresh`'s rotation, reuse detection,
 * faults, holds-by-path and refresh counters; its password grant counts as a login. Its
 * metadata (issuer = `url`, `token_endpoint`) is served at
 * `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`, so
 * discovery works; these libraries refuse plain HTTP unless told to allow it
 * (`allowInsecureRequests`).
 *
 * With the `dpop` option, tokens are DPoP-bound (RFC 9449): token routes want a `DPoP`
 * proof, protected routes `Authorization: DPoP <token>` and a proof, optionally with
 * server nonces. See {@link TestAuthServerOptions.dpop}.
 *
 * @example
 * ```ts
 * const server = await createTestAuthServer()
 * try {
 *   const { accessToken } = server.login()
 *   await fetch(`${server.url}/api/resource`, { headers: { authorization: `Bearer ${accessToken}` } })
 * } finally {
 *   await server.close()
 * }
 * ```
 */
export async function createTestAuthServer(
  options: TestAuthServerOptions = {},
): Promise<TestAuthServer> {
  const now = options.now ?? Date.now
  // Built first: a bad dpop option throws before a port is taken.
  const dpop = options.dpop ? new DpopPolicy(options.dpop, now) : undefined
  const store = new TokenStore({
    now,
    accessTokenTtl: options.accessTokenTtl ?? 1800,
    refreshTokenTtl: options.refreshTokenTtl ?? 7 * 24 * 60 * 60,
    rotateRefreshTokens: options.rotateRefreshTokens ?? true,
  })
  const http = createServer()
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(options.port ?? 0, '127.0.0.1', () => {
      http.off('error', reject)
      resolve()
    })
  })
  return new TestAuthServerImpl(http, now, store, dpop)
}
