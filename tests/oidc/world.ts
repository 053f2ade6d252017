/**
 * A real OpenID provider (oidc-provider 9) with DPoP-bound, rotating refresh tokens, and a
 * DPoP resource server that checks every RFC 9449 rule, both over real HTTP on 127.0.0.1.
 *
 * Integration tests sign in with {@link OidcWorld.signIn}, then drive a client against
 * {@link OidcWorld.resourceUrl} and {@link OidcWorld.tokenEndpoint}, and assert on
 * {@link OidcWorld.counters}.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  EmbeddedJWK,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from 'jose'
import * as oauth from 'oauth4webapi'

export const TEST_USER = 'test-user'
export const TEST_CLIENT_ID = 'auth-machine-test'

export interface TokenEndpointJson {
  access_token: string
  refresh_token: string
  token_type: string
  expires_in: number
  id_token?: string
  scope?: string
}

export interface OidcCounters {
  /** Refresh-token grants the token endpoint answered with tokens. */
  refreshGrants: number
  /** Refresh-token grants refused, `use_dpop_nonce` challenges not included. */
  refreshGrantsFailed: number
  /** Grants revoked (by oidc-provider, on reuse of a spent refresh token). */
  grantsRevoked: number
  /** `use_dpop_nonce` errors from the token endpoint (any grant type). */
  tokenNonceChallenges: number
  resourceOk: number
  resourceInvalidToken: number
  resourceNonceChallenges: number
  /** Proofs refused for any reason but a replay. */
  resourceProofRefused: number
  resourceReplaysRefused: number
}

/** One error answer of the token endpoint, with oidc-provider's private detail. */
export interface TokenEndpointError {
  grantType: string | undefined
  error: string | undefined
  /** oidc-provider's `error_detail` (not sent to the client), e.g. 'failed jkt verification'. */
  detail: string | undefined
}

export interface OidcWorld {
  /** http://127.0.0.1:PORT, oidc-provider over real HTTP. */
  issuer: string
  tokenEndpoint: string
  /** A public client (token_endpoint_auth_method 'none') with dpop_bound_access_tokens. */
  clientId: string
  /** The client's registered redirect URI (never fetched). */
  redirectUri: string
  /** Base URL of the resource server (no trailing slash); the access tokens' audience. */
  resourceUrl: string
  /** The provider's discovered metadata, for oauth4webapi calls. */
  authorizationServer: oauth.AuthorizationServer
  /** The client, for oauth4webapi calls (pass `[oauth.allowInsecureRequests]: true`: http). */
  client: oauth.Client
  /**
   * Runs a real authorization-code + PKCE sign-in (scope 'openid offline_access', prompt
   * consent) whose token request carries a DPoP proof made with `keyPair`, answering the
   * token endpoint's first `use_dpop_nonce` by retrying. Returns the token endpoint's JSON
   * as sent (token_type 'DPoP').
   */
  signIn(keyPair: CryptoKeyPair): Promise<TokenEndpointJson>
  /**
   * Every access token issued or seen so far is refused by the resource server with 401
   * invalid_token (as if expired); tokens issued later are fine.
   */
  expireAccessTokens(): void
  /** Resource server: new nonce; the old one is refused (use_dpop_nonce challenge). */
  rotateResourceNonce(): void
  /** The resource server's current nonce. */
  readonly resourceNonce: string
  /** Live counters (mutated in place). */
  readonly counters: Readonly<OidcCounters>
  /** A copy of the counters as they are now. */
  snapshot(): OidcCounters
  /** Every error the token endpoint answered with, oldest first (live). */
  readonly tokenErrors: readonly TokenEndpointError[]
  /** Server errors of the provider or of the sign-in interaction routes (also logged). */
  readonly serverErrors: readonly unknown[]
  close(): Promise<void>
}

export interface OidcWorldOptions {
  /** Access token lifetime in seconds (expires_in). Default 300. */
  accessTokenTtl?: number
}

// ---------------------------------------------------------------------------------------
// oidc-provider, loaded lazily: it ships no type declarations (a non-literal specifier keeps
// TypeScript from looking for them), and it warns "Unsupported runtime" on Node 20 when it
// is evaluated, which is filtered out (that one line only) while it loads.

interface OidcContext {
  oidc?: { params?: Record<string, unknown>; route?: string }
}
interface OidcError {
  error?: string
  error_description?: string
  error_detail?: string
}
interface GrantModel {
  addOIDCScope(scope: string): void
  addOIDCClaims(claims: string[]): void
  addResourceScope(indicator: string, scope: string): void
  save(): Promise<string>
}
interface InteractionModel {
  uid: string
  prompt: {
    name: string
    details: {
      missingOIDCScope?: string[]
      missingOIDCClaims?: string[]
      missingResourceScopes?: Record<string, string[]>
    }
  }
  params: Record<string, unknown>
  session?: { accountId?: string }
  grantId?: string
}
interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void
  on(event: string, listener: (...args: never[]) => void): void
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionModel>
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>
  Grant: {
    new (init: { accountId: string; clientId: string }): GrantModel
    find(id: string): Promise<GrantModel | undefined>
  }
}
type ProviderConstructor = new (issuer: string, configuration: object) => ProviderInstance

let providerModule: Promise<ProviderConstructor> | undefined

function loadProvider(): Promise<ProviderConstructor> {
  providerModule ??= (async () => {
    const specifier = 'oidc-provider'
    const warn = console.warn
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('WARNING: Unsupported runtime')) return
      warn(...args)
    }
    try {
      const module = (await import(specifier)) as { default: ProviderConstructor }
      return module.default
    } finally {
      console.warn = warn
    }
  })()
  return providerModule
}

// ---------------------------------------------------------------------------------------
// A per-world in-memory adapter (oidc-provider's own one warns on every start and is shared
// by every provider of the process).

interface StoredEntry {
  payload: Record<string, unknown>
  expiresAt: number
}

function memoryAdapter() {
  const store = new Map<string, StoredEntry>()
  const grants = new Map<string, Set<string>>()
  const sessionUids = new Map<string, string>()

  return class MemoryAdapter {
    constructor(readonly model: string) {}

    key(id: string) {
      return `${this.model}:${id}`
    }

    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      const key = this.key(id)
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
      store.set(key, { payload, expiresAt })
      if (typeof payload.grantId === 'string') {
        const members = grants.get(payload.grantId) ?? new Set<string>()
        members.add(key)
        grants.set(payload.grantId, members)
      }
      if (this.model === 'Session' && typeof payload.uid === 'string') {
        sessionUids.set(payload.uid, id)
      }
    }

    async find(id: string | undefined) {
      if (id === undefined) return undefined
      const entry = store.get(this.key(id))
      if (!entry) return undefined
      if (entry.expiresAt <= Date.now()) {
        store.delete(this.key(id))
        return undefined
      }
      return entry.payload
    }

    async findByUid(uid: string) {
      return this.find(sessionUids.get(uid))
    }

    async findByUserCode() {
      return undefined
    }

    async consume(id: string) {
      const entry = store.get(this.key(id))
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000)
    }

    async destroy(id: string) {
      store.delete(this.key(id))
    }

    async revokeByGrantId(grantId: string) {
      for (const key of grants.get(grantId) ?? []) store.delete(key)
      grants.delete(grantId)
    }
  }
}

// ---------------------------------------------------------------------------------------
// HTTP plumbing

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  return { server, url: `http://127.0.0.1:${port}` }
}

function closeServer(server: Server) {
  return new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
    server.closeAllConnections()
  })
}

/** The few cookie rules oidc-provider's flow needs: name → value, removal on expiry. */
class CookieJar {
  readonly #cookies = new Map<string, string>()

  store(response: Response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at).trim()
      const value = pair.slice(at + 1).trim()
      const expired = attributes.some((attribute) => {
        const [key = '', val = ''] = attribute.split('=').map((part) => part.trim())
        if (key.toLowerCase() === 'max-age') return Number(val) <= 0
        if (key.toLowerCase() === 'expires') return Date.parse(val) <= Date.now()
        return false
      })
      if (expired || value === '') this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url')

// ---------------------------------------------------------------------------------------

export async function startOidcWorld(options: OidcWorldOptions = {}): Promise<OidcWorld> {
  const accessTokenTtl = options.accessTokenTtl ?? 300
  const Provider = await loadProvider()

  const counters: OidcCounters = {
    refreshGrants: 0,
    refreshGrantsFailed: 0,
    grantsRevoked: 0,
    tokenNonceChallenges: 0,
    resourceOk: 0,
    resourceInvalidToken: 0,
    resourceNonceChallenges: 0,
    resourceProofRefused: 0,
    resourceReplaysRefused: 0,
  }
  const serverErrors: unknown[] = []
  const tokenErrors: TokenEndpointError[] = []
  const reportError = (error: unknown) => {
    serverErrors.push(error)
    console.error('[oidc world]', error)
  }

  // Both servers listen first: the issuer and the audience need their ports.
  let providerHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  let resourceHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const op = await listen((req, res) => providerHandler?.(req, res))
  const rs = await listen((req, res) => resourceHandler?.(req, res)).catch(async (error) => {
    await closeServer(op.server)
    throw error
  })
  try {
    const issuer = op.url
    const resourceUrl = rs.url
    const redirectUri = `${resourceUrl}/callback`

    // The provider's signing key (ID tokens and JWT access tokens).
    const { privateKey } = await generateKeyPair('ES256', { extractable: true })
    const signingJwk: JWK = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig' }
    signingJwk.kid = await calculateJwkThumbprint(signingJwk)
    const { d: _d, ...publicJwk } = signingJwk
    const providerKeys = createLocalJWKSet({ keys: [publicJwk] })

    const provider = new Provider(issuer, {
      adapter: memoryAdapter(),
      jwks: { keys: [signingJwk] },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      clients: [
        {
          client_id: TEST_CLIENT_ID,
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [redirectUri],
          dpop_bound_access_tokens: true,
          id_token_signed_response_alg: 'ES256',
        },
      ],
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      scopes: ['openid', 'offline_access'],
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resourceUrl,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'api',
            audience: resourceUrl,
            accessTokenFormat: 'jwt',
            accessTokenTTL: accessTokenTtl,
            jwt: { sign: { alg: 'ES256' } },
          }),
        },
      },
      interactions: {
        url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
      },
      issueRefreshToken: (
        _ctx: unknown,
        client: { grantTypeAllowed(type: string): boolean },
        source: { scopes: Set<string> },
      ) => client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access'),
      rotateRefreshToken: true,
      findAccount: (_ctx: unknown, sub: string) =>
        sub === TEST_USER
          ? { accountId: sub, claims: async () => ({ sub, email: 'test-user@example.test' }) }
          : undefined,
      // Explicit lifetimes: oidc-provider prints a notice for every default it falls back to.
      ttl: {
        AccessToken: accessTokenTtl,
        AuthorizationCode: 60,
        IdToken: 3600,
        RefreshToken: 24 * 3600,
        Interaction: 600,
        Session: 3600,
        Grant: 24 * 3600,
      },
    })

    // Counters from provider events.
    const grantType = (ctx: OidcContext) => ctx.oidc?.params?.grant_type
    provider.on('grant.success', (ctx: OidcContext) => {
      if (grantType(ctx) === 'refresh_token') counters.refreshGrants++
    })
    provider.on('grant.error', (ctx: OidcContext, error: OidcError) => {
      const type = grantType(ctx)
      tokenErrors.push({
        grantType: typeof type === 'string' ? type : undefined,
        error: error.error,
        detail: error.error_detail ?? error.error_description,
      })
      if (error.error === 'use_dpop_nonce') counters.tokenNonceChallenges++
      else if (grantType(ctx) === 'refresh_token') counters.refreshGrantsFailed++
    })
    provider.on('grant.revoked', () => {
      counters.grantsRevoked++
    })
    provider.on('server_error', (_ctx: unknown, error: unknown) => reportError(error))

    // Every access token ever issued, for expireAccessTokens.
    const liveJtis = new Set<string>()
    const expiredJtis = new Set<string>()
    provider.on('access_token.issued', (token: { jti: string }) => liveJtis.add(token.jti))
    provider.on('access_token.saved', (token: { jti: string }) => liveJtis.add(token.jti))

    // Minimal interactions: log the test user in, grant whatever is asked.
    const providerCallback = provider.callback()
    providerHandler = (req, res) => {
      if (!req.url?.startsWith('/interaction/')) {
        providerCallback(req, res)
        return
      }
      void (async () => {
        const interaction = await provider.interactionDetails(req, res)
        const { prompt, params } = interaction
        if (prompt.name === 'login') {
          await provider.interactionFinished(
            req,
            res,
            { login: { accountId: TEST_USER } },
            { mergeWithLastSubmission: false },
          )
          return
        }
        if (prompt.name !== 'consent') throw new Error(`unexpected prompt ${prompt.name}`)
        const accountId = interaction.session?.accountId
        if (!accountId) throw new Error('consent prompt without a logged-in account')
        const grant =
          (interaction.grantId && (await provider.Grant.find(interaction.grantId))) ||
          new provider.Grant({ accountId, clientId: String(params.client_id) })
        const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details
        if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '))
        if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims)
        for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
          grant.addResourceScope(indicator, scopes.join(' '))
        }
        const grantId = await grant.save()
        await provider.interactionFinished(
          req,
          res,
          { consent: { grantId } },
          { mergeWithLastSubmission: true },
        )
      })().catch((error: unknown) => {
        reportError(error)
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(String(error))
      })
    }

    // -------------------------------------------------------------------------------------
    // Resource server. Checks, in order, each refusal ending the request:
    //   1. `Authorization: DPoP <jwt>` (scheme in any case), the JWT verified against the
    //      provider's key (typ at+jwt, iss, aud = resourceUrl, exp), its jti not expired by
    //      expireAccessTokens, a cnf.jkt present                       → 401 invalid_token
    //   2. one `DPoP` proof: signature by its embedded jwk (typ dpop+jwt, ES256), htm, htu
    //      (query and fragment ignored), iat within ±60 s, jti, ath, jwk thumbprint = cnf.jkt
    //                                                                   → 401 invalid_dpop_proof
    //   3. the proof's jti never seen (then remembered, bounded cache)  → 401 invalid_dpop_proof
    //   4. nonce = the current resource nonce                           → 401 use_dpop_nonce
    // Every answer carries `DPoP-Nonce: <current nonce>`.

    let resourceNonce = randomBytes(16).toString('base64url')
    const seenProofJtis = new Map<string, number>()
    const maxSeenProofs = 10_000

    const rememberProof = (jti: string) => {
      seenProofJtis.set(jti, Date.now())
      if (seenProofJtis.size > maxSeenProofs) {
        const oldest = seenProofJtis.keys().next().value
        if (oldest !== undefined) seenProofJtis.delete(oldest)
      }
    }

    class Refusal extends Error {
      constructor(
        readonly kind: 'invalid_token' | 'invalid_dpop_proof' | 'replay' | 'use_dpop_nonce',
        message: string,
      ) {
        super(message)
      }
    }

    const authorize = async (req: IncomingMessage, url: URL) => {
      const authorization = req.headers.authorization ?? ''
      const match = /^dpop +([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization)
      const accessToken = match?.[1]
      if (!accessToken) throw new Refusal('invalid_token', 'missing DPoP access token')

      let token: JWTPayload
      try {
        ;({ payload: token } = await jwtVerify(accessToken, providerKeys, {
          issuer,
          audience: resourceUrl,
          typ: 'at+jwt',
          algorithms: ['ES256'],
        }))
      } catch (error) {
        throw new Refusal('invalid_token', `access token: ${(error as Error).message}`)
      }
      if (typeof token.jti !== 'string')
        throw new Refusal('invalid_token', 'access token has no jti')
      if (expiredJtis.has(token.jti)) throw new Refusal('invalid_token', 'access token expired')
      liveJtis.add(token.jti)
      const jkt = (token.cnf as { jkt?: unknown } | undefined)?.jkt
      if (typeof jkt !== 'string')
        throw new Refusal('invalid_token', 'access token is not DPoP-bound')

      const proof = req.headers.dpop
      if (typeof proof !== 'string' || proof === '' || proof.includes(',')) {
        throw new Refusal('invalid_dpop_proof', 'exactly one DPoP proof is required')
      }
      let claims: JWTPayload
      let jwk: JWK | undefined
      try {
        const verified = await jwtVerify(proof, EmbeddedJWK, {
          typ: 'dpop+jwt',
          algorithms: ['ES256'],
        })
        claims = verified.payload
        jwk = verified.protectedHeader.jwk
      } catch (error) {
        throw new Refusal('invalid_dpop_proof', `proof: ${(error as Error).message}`)
      }
      if (claims.htm !== req.method) throw new Refusal('invalid_dpop_proof', 'htm mismatch')
      const htu = typeof claims.htu === 'string' ? URL.parse(claims.htu) : null
      if (htu) {
        htu.search = ''
        htu.hash = ''
      }
      if (htu?.href !== url.href) throw new Refusal('invalid_dpop_proof', 'htu mismatch')
      const now = Math.floor(Date.now() / 1000)
      if (typeof claims.iat !== 'number' || Math.abs(now - claims.iat) > 60) {
        throw new Refusal('invalid_dpop_proof', 'iat not within 60 seconds')
      }
      if (typeof claims.jti !== 'string' || claims.jti === '') {
        throw new Refusal('invalid_dpop_proof', 'proof has no jti')
      }
      if (claims.ath !== sha256(accessToken))
        throw new Refusal('invalid_dpop_proof', 'ath mismatch')
      if (!jwk || (await calculateJwkThumbprint(jwk)) !== jkt) {
        throw new Refusal('invalid_dpop_proof', 'proof key is not the token cnf.jkt')
      }
      if (seenProofJtis.has(claims.jti)) throw new Refusal('replay', 'proof jti already used')
      rememberProof(claims.jti)
      if (claims.nonce !== resourceNonce) {
        throw new Refusal('use_dpop_nonce', 'resource server requires the current DPoP nonce')
      }
      return token
    }

    resourceHandler = (req, res) => {
      req.resume()
      const url = new URL(req.url ?? '/', resourceUrl)
      url.search = ''
      url.hash = ''
      const send = (status: number, body: unknown, challenge?: string) => {
        const headers: Record<string, string> = {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          'dpop-nonce': resourceNonce,
        }
        if (challenge) headers['www-authenticate'] = challenge
        res.writeHead(status, headers)
        res.end(JSON.stringify(body))
      }
      authorize(req, url).then(
        (token) => {
          counters.resourceOk++
          send(200, { ok: true, sub: token.sub, path: url.pathname })
        },
        (error: unknown) => {
          if (!(error instanceof Refusal)) {
            reportError(error)
            send(500, { error: 'server_error' })
            return
          }
          const code = error.kind === 'replay' ? 'invalid_dpop_proof' : error.kind
          if (error.kind === 'invalid_token') counters.resourceInvalidToken++
          else if (error.kind === 'invalid_dpop_proof') counters.resourceProofRefused++
          else if (error.kind === 'replay') counters.resourceReplaysRefused++
          else counters.resourceNonceChallenges++
          const description = error.message.replaceAll('"', "'")
          send(
            401,
            { error: code, error_description: error.message },
            `DPoP algs="ES256", error="${code}", error_description="${description}"`,
          )
        },
      )
    }

    // -------------------------------------------------------------------------------------
    // The client side of the sign-in.

    const insecure = { [oauth.allowInsecureRequests]: true } as const
    const authorizationServer = await oauth.processDiscoveryResponse(
      new URL(issuer),
      await oauth.discoveryRequest(new URL(issuer), insecure),
    )
    const client: oauth.Client = {
      client_id: TEST_CLIENT_ID,
      id_token_signed_response_alg: 'ES256',
    }
    const tokenEndpoint = authorizationServer.token_endpoint
    const authorizationEndpoint = authorizationServer.authorization_endpoint
    if (!tokenEndpoint || !authorizationEndpoint) throw new Error('incomplete provider metadata')

    const signIn = async (keyPair: CryptoKeyPair): Promise<TokenEndpointJson> => {
      const codeVerifier = oauth.generateRandomCodeVerifier()
      const state = oauth.generateRandomState()
      const authorizationUrl = new URL(authorizationEndpoint)
      authorizationUrl.search = new URLSearchParams({
        client_id: TEST_CLIENT_ID,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid offline_access',
        prompt: 'consent',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      }).toString()

      // The browser's part: follow redirects through the interactions, with cookies.
      const jar = new CookieJar()
      let location = authorizationUrl.href
      for (let hops = 0; !location.startsWith(`${redirectUri}?`); hops++) {
        if (hops === 10) throw new Error(`sign-in did not reach the redirect URI: ${location}`)
        const response = await fetch(location, {
          redirect: 'manual',
          headers: { cookie: jar.header(), accept: 'text/html' },
        })
        jar.store(response)
        const next = response.headers.get('location')
        if (response.status < 300 || response.status >= 400 || !next) {
          throw new Error(
            `sign-in stopped at ${location}: ${response.status} ${await response.text()}`,
          )
        }
        await response.body?.cancel()
        location = new URL(next, location).href
      }
      const callbackParameters = oauth.validateAuthResponse(
        authorizationServer,
        client,
        new URL(location),
        state,
      )

      // The token request, with DPoP; the first one meets the provider's nonce challenge.
      const DPoP = oauth.DPoP(client, keyPair)
      for (let attempt = 1; ; attempt++) {
        const response = await oauth.authorizationCodeGrantRequest(
          authorizationServer,
          client,
          oauth.None(),
          callbackParameters,
          redirectUri,
          codeVerifier,
          { DPoP, ...insecure },
        )
        const json = (await response.clone().json()) as TokenEndpointJson
        try {
          await oauth.processAuthorizationCodeResponse(authorizationServer, client, response, {
            requireIdToken: true,
          })
          return json
        } catch (error) {
          if (attempt === 1 && oauth.isDPoPNonceError(error)) continue
          throw error
        }
      }
    }

    let closed: Promise<void> | undefined

    return {
      issuer,
      tokenEndpoint,
      clientId: TEST_CLIENT_ID,
      redirectUri,
      resourceUrl,
      authorizationServer,
      client,
      signIn,
      expireAccessTokens() {
        for (const jti of liveJtis) expiredJtis.add(jti)
        liveJtis.clear()
      },
      rotateResourceNonce() {
        resourceNonce = randomBytes(16).toString('base64url')
      },
      get resourceNonce() {
        return resourceNonce
      },
      counters,
      snapshot: () => ({ ...counters }),
      tokenErrors,
      serverErrors,
      close() {
        closed ??= Promise.all([closeServer(op.server), closeServer(rs.server)]).then(() => {})
        return closed
      },
    }
  } catch (error) {
    await Promise.allSettled([closeServer(op.server), closeServer(rs.server)])
    throw error
  }
}

/** A fresh ES256 key pair as a browser would keep it: the private key not extractable. */
export function generateDpopKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])
}
