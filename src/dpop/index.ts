import type { Session } from '../../machines/types.js'
import { AuthError, DpopError, InvalidSessionError, LoggedOutError } from '../errors.js'
import { pageBases } from '../origin.js'
import type { Grant } from '../queue.js'
import { jwtClaimsOf } from '../session.js'
import { createDpopKeys, type DpopKeyStore, memoryKeyStore, type SigningKey } from './keys.js'
import { createNonces, type DpopRefusal, dpopRefusalOf, headerValue, nonceOf } from './nonces.js'
import { accessTokenHash, htuOf, originOf, signProof } from './proof.js'
import { fetchMethod, followRedirects, type Hop, seesRedirects } from './redirects.js'

/** The `dpop` option of `createAuthClient`. */
export interface DpopOptions {
  /**
   * The app's own ES256 key pair, used for every session (e.g. one imported in every process
   * of a service that shares its session through Redis). Default: a non-extractable pair made
   * with WebCrypto for each sign-in.
   */
  keyPair?: CryptoKeyPair
  /** The proof algorithm. Only `'ES256'`, the one every DPoP server accepts. */
  algorithm?: 'ES256'
}

/**
 * DPoP proofs with the session's key, for the app's own calls to a token endpoint:
 * `auth.dpop` for the sign-in, and `dpop` in the `refresh` function's context.
 */
export interface DpopHandle {
  /**
   * A `DPoP` header value for one request: `method` and `url` (its query and fragment left
   * out), a fresh `jti`, the last nonce `url`'s server gave, and `ath` when an access token
   * goes with it.
   */
  proof(method: string, url: string | URL, options?: { accessToken?: string }): Promise<string>
  /**
   * `fetch` for token endpoint calls: adds the proof, remembers the server's `DPoP-Nonce`, and
   * sends the request once more when the server answers `use_dpop_nonce`. A bare fetch, no
   * access token, no refresh: use it for the code exchange and inside `refresh`.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>
  /**
   * The key pair, for an OAuth library's own DPoP support (oauth4webapi's
   * `DPoP(client, keyPair)`, openid-client's `getDPoPHandle(config, keyPair)`). Its private key
   * cannot be exported.
   */
  keyPair(): Promise<CryptoKeyPair>
  /** The key's JWK SHA-256 thumbprint: `dpop_jkt` of an authorization request, `cnf.jkt` of its tokens. */
  thumbprint(): Promise<string>
}

/** Sends of one `dpop.fetch`: the first, and a retry for each new nonce the server asks for. */
const MAX_SENDS = 3

/** What the handle of one refresh call tells the client about the last answer it fetched. */
export interface SessionDpopHandle extends DpopHandle {
  /** The DPoP refusal of the last answer `fetch` returned, if it was one. */
  refused(): DpopRefusal | undefined
  /** The URL the last proof was made for: where a thrown error's nonce belongs. */
  lastUrl(): string | undefined
}

/**
 * The DPoP refusal of a token endpoint's answer: a 400 (or 401) `use_dpop_nonce` or
 * `invalid_dpop_proof`, from `WWW-Authenticate` or the JSON body.
 */
async function tokenRefusalOf(response: Response): Promise<DpopRefusal | undefined> {
  if (response.status !== 400 && response.status !== 401) return undefined
  const challenged = dpopRefusalOf(response.headers.get('www-authenticate'))
  if (challenged) return challenged
  try {
    const error = ((await response.clone().json()) as { error?: unknown } | null)?.error
    return error === 'use_dpop_nonce' || error === 'invalid_dpop_proof' ? error : undefined
  } catch {
    return undefined
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined
}

/**
 * The DPoP refusal a `refresh` function threw, read from the errors of axios (`response`),
 * oauth4webapi / openid-client (`error`, `cause` challenges) and `{ error }` objects.
 */
export function dpopRefusalOfError(
  error: unknown,
): 'use_dpop_nonce' | 'invalid_dpop_proof' | undefined {
  const response = field(error, 'response')
  const codes = [
    field(error, 'error'),
    field(field(response, 'data'), 'error'),
    field(field(error, 'cause'), 'error'),
  ]
  for (const code of codes) {
    if (code === 'use_dpop_nonce' || code === 'invalid_dpop_proof') return code
  }
  const challenges = field(error, 'cause')
  if (Array.isArray(challenges)) {
    for (const challenge of challenges) {
      const code = field(field(challenge, 'parameters'), 'error')
      if (field(challenge, 'scheme') === 'dpop' && code === 'use_dpop_nonce') return code
    }
  }
  return dpopRefusalOf(headerValue(field(response, 'headers'), 'www-authenticate'))
}

/**
 * The URL and `DPoP-Nonce` of the response behind a thrown error, where it tells them;
 * `fallback` (the URL the last proof named) when it tells the nonce but not the URL.
 */
function nonceOfError(
  error: unknown,
  fallback?: string,
): { url: string; nonce: string } | undefined {
  const response = field(error, 'response')
  const nonce = nonceOf(headerValue(field(response, 'headers'), 'dpop-nonce'))
  if (!nonce) return undefined
  const request = field(response, 'request')
  const config = field(response, 'config') ?? field(error, 'config')
  const resolvedConfigUrl = (() => {
    const url = field(config, 'url')
    const base = field(config, 'baseURL')
    if (typeof url !== 'string') return undefined
    try {
      return new URL(url, typeof base === 'string' ? base : undefined).href
    } catch {
      return undefined
    }
  })()
  const urls = [
    field(response, 'url'),
    field(request, 'responseURL'),
    field(field(request, 'res'), 'responseUrl'),
    field(request, 'url'),
    resolvedConfigUrl,
    fallback,
  ]
  const url = urls.find((u): u is string => typeof u === 'string' && /^https?:/i.test(u))
  return url ? { url, nonce } : undefined
}

/**
 * Refuses a session whose access token names another key than `jkt` (`cnf.jkt`, RFC 9449
 * §6): every request with it would be refused. Opaque tokens cannot be checked.
 */
export function assertBoundTo(session: Session, jkt: string): void {
  const cnf = jwtClaimsOf(session.accessToken)?.cnf
  const bound = typeof cnf === 'object' && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined
  if (typeof bound === 'string' && bound !== jkt) {
    throw new InvalidSessionError(
      "The access token is bound to another DPoP key than this client's (cnf.jkt).",
      'INVALID_REFRESH_RESPONSE',
    )
  }
}

/** What the client and its transports use of DPoP. */
export interface Dpop {
  keys: ReturnType<typeof createDpopKeys>
  /** The `DPoP` proof for sending `grant`'s token with `method` to `url`. */
  proofFor(grant: Grant, method: string, url: string): Promise<string>
  /** Remembers the `DPoP-Nonce` of a response from `url`. */
  learn(url: string, header: string | null | undefined): void
  /** The client's wall clock, in ms (proofs' `iat`). */
  now(): number
  /** The handle for a sign-in (`auth.dpop`). */
  signIn: DpopHandle
  /**
   * The handle for refreshing `session` (the `refresh` function's `dpop`); `answered` runs
   * when its `fetch` gets a 2xx answer from the server it asked.
   */
  forSession(session: Session, answered?: () => void): SessionDpopHandle
  /** A handle signing with `key` (taken before its session ended: `revoke`). */
  forKey(key: Promise<SigningKey>): DpopHandle
  /**
   * A refresh error that is a DPoP matter, not a verdict on the refresh token: its nonce
   * is learned (under `fallback`, the URL the last proof named, when the error does not
   * tell its URL); the refresher sends the call once more and never counts it as refused.
   */
  refusal(error: unknown, fallback?: string): DpopRefusal | undefined
}

/** Validates the `dpop` option. */
export function dpopOptionsOf(option: boolean | DpopOptions | undefined): DpopOptions | undefined {
  if (option === undefined || option === false) return undefined
  if (option === true) return {}
  if (typeof option !== 'object' || option === null) {
    throw new AuthError(
      '`dpop` must be true, false or { keyPair?, algorithm? }.',
      'INVALID_OPTIONS',
    )
  }
  if (option.algorithm !== undefined && option.algorithm !== 'ES256') {
    throw new AuthError('`dpop.algorithm`: only ES256 is supported.', 'INVALID_OPTIONS')
  }
  const pair = option.keyPair
  if (pair !== undefined) {
    const es256 = (key: CryptoKey | undefined) => {
      const algorithm = key?.algorithm as EcKeyAlgorithm | undefined
      return algorithm?.name === 'ECDSA' && algorithm.namedCurve === 'P-256'
    }
    if (
      !es256(pair?.privateKey) ||
      !es256(pair.publicKey) ||
      pair.privateKey.type !== 'private' ||
      !pair.privateKey.usages.includes('sign') ||
      pair.publicKey.type !== 'public'
    ) {
      throw new AuthError(
        '`dpop.keyPair` must be a WebCrypto ECDSA P-256 key pair whose private key can sign.',
        'INVALID_OPTIONS',
      )
    }
  }
  if (typeof crypto === 'undefined' || !crypto.subtle) {
    throw new AuthError(
      'DPoP needs WebCrypto (crypto.subtle): a secure context (https or localhost) in browsers.',
      'INVALID_OPTIONS',
    )
  }
  return option
}

/** DPoP for one client: the session's key, proofs, and the nonces servers gave. */
export function createDpop(options: {
  dpop: DpopOptions
  store: DpopKeyStore | undefined
  /** Wall-clock time in ms, for `iat`. */
  now: () => number
  fetch: typeof globalThis.fetch | undefined
  /** A request of `epoch` found its session's key gone. */
  keyLost?: (epoch: number) => void
}): Dpop {
  const keys = createDpopKeys(options.store ?? memoryKeyStore(), options.dpop.keyPair)
  const nonces = createNonces()
  // `ath` of the token in use, computed once per token rather than per request.
  let hashed: { token: string; ath: Promise<string> } | undefined
  const athOf = (token: string) => {
    if (hashed?.token !== token) hashed = { token, ath: accessTokenHash(token) }
    return hashed.ath
  }
  const sign = async (key: SigningKey, method: string, url: string | URL, token?: string) => {
    const htu = htuOf(url, pageBases()[0])
    if (htu === undefined)
      throw new TypeError('A DPoP proof needs an absolute URL (or a page to resolve it against).')
    return signProof(key, {
      htm: fetchMethod(method),
      htu,
      iat: Math.floor(options.now() / 1000),
      ath: token === undefined ? undefined : await athOf(token),
      nonce: nonces.get(htu),
    })
  }

  const handle = (key: () => Promise<SigningKey>, answered?: () => void): SessionDpopHandle => {
    let refused: DpopRefusal | undefined
    let lastUrl: string | undefined
    const proof: DpopHandle['proof'] = async (method, url, extra) => {
      lastUrl = htuOf(url, pageBases()[0])
      return sign(await key(), method, url, extra?.accessToken)
    }
    const send = (input: RequestInfo | URL, init?: RequestInit) =>
      (options.fetch ?? globalThis.fetch)(input, init)
    /** One send, following redirects by hand where they can be seen (see redirects.ts). */
    const sendOnce = async (
      input: string | URL | Request,
      init: RequestInit | undefined,
    ): Promise<{ response: Response; url: string }> => {
      const request = new Request(input, init)
      request.headers.set('DPoP', await proof(request.method, request.url))
      if (!seesRedirects || request.redirect !== 'follow') {
        const response = await send(request)
        return { response, url: response.url || request.url }
      }
      const response = await send(new Request(request, { redirect: 'manual' }))
      // A Request's stream body cannot be sent twice: a 307/308 with one ends the chain.
      const first: Hop = {
        url: request.url,
        init: { method: request.method, headers: request.headers, body: init?.body ?? null },
      }
      return followRedirects(
        first,
        response,
        async (headers, method, url) => {
          headers.set('DPoP', await proof(method, url))
        },
        (hop) => send(hop.url, hop.init),
      )
    }
    return {
      proof,
      async fetch(input, init) {
        const asked = input instanceof Request ? input.url : new URL(input, pageBases()[0]).href
        // A Request's body is read once: a token request's is small, so it is read here and
        // sent afresh by every send and every redirect hop.
        const [target, options] =
          input instanceof Request
            ? [
                input.url,
                {
                  method: input.method,
                  headers: input.headers,
                  body: input.body === null ? null : await input.clone().arrayBuffer(),
                  signal: input.signal,
                  redirect: input.redirect,
                  credentials: input.credentials,
                  ...init,
                } satisfies RequestInit,
              ]
            : [input, init]
        for (let sends = 1; ; sends += 1) {
          const { response, url } = await sendOnce(target, options)
          // Only the server asked speaks for its nonce: not another origin a redirect led to.
          const here = originOf(url) === originOf(asked)
          const learned = here && nonces.learn(asked, response.headers.get('dpop-nonce'))
          if (here && response.ok) answered?.()
          refused = here ? await tokenRefusalOf(response) : undefined
          if (sends >= MAX_SENDS || refused !== 'use_dpop_nonce' || !learned) return response
          response.body?.cancel().catch(() => undefined)
        }
      },
      keyPair: async () => (await key()).keyPair,
      thumbprint: async () => (await key()).jkt,
      refused: () => refused,
      lastUrl: () => lastUrl,
    }
  }

  return {
    keys,
    async proofFor(grant, method, url) {
      let key: SigningKey
      try {
        key = await keys.session(grant.session)
      } catch (error) {
        // Gone, not merely unreadable right now: the session cannot go on anywhere.
        if (error instanceof DpopError && error.code === 'DPOP_KEY_MISSING') {
          options.keyLost?.(grant.epoch)
          throw new LoggedOutError(
            'The session ended elsewhere (its DPoP key is gone): the request is not sent; sign in again.',
          )
        }
        throw error
      }
      return sign(key, method, url, grant.token)
    },
    learn(url, header) {
      nonces.learn(url, header)
    },
    now: () => options.now(),
    signIn: handle(() => keys.signIn()),
    forSession: (session, answered) => handle(() => keys.session(session.id), answered),
    forKey: (key) => handle(() => key),
    refusal(error, fallback) {
      const refusal = dpopRefusalOfError(error)
      const learned = refusal === undefined ? undefined : nonceOfError(error, fallback)
      if (learned) nonces.learn(learned.url, learned.nonce)
      return refusal
    },
  }
}
