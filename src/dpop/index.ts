import type { Session } from '../../machines/types.js'
import { AuthError } from '../errors.js'
import { pageBases } from '../origin.js'
import type { Grant } from '../queue.js'
import { createDpopKeys, type DpopKeyStore, memoryKeyStore, type SigningKey } from './keys.js'
import { createNonces, dpopRefusalOf, nonceOf } from './nonces.js'
import { accessTokenHash, htuOf, signProof } from './proof.js'

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

const RETRIED = 2

/** Whether a token endpoint's answer asks for a nonce: 400 `use_dpop_nonce`, or a 401 challenge. */
async function asksForNonce(response: Response): Promise<boolean> {
  if (response.status !== 400 && response.status !== 401) return false
  if (dpopRefusalOf(response.headers.get('www-authenticate')) === 'use_dpop_nonce') return true
  try {
    const body: unknown = await response.clone().json()
    return (body as { error?: unknown } | null)?.error === 'use_dpop_nonce'
  } catch {
    return false
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined
}

/** A header from a fetch `Headers`, an `AxiosHeaders` or a plain object. */
function headerOf(headers: unknown, name: string): string | undefined {
  const get = field(headers, 'get')
  const value =
    typeof get === 'function'
      ? (get as (name: string) => unknown).call(headers, name)
      : (field(headers, name) ?? field(headers, name.toLowerCase()))
  return typeof value === 'string' ? value : undefined
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
  return dpopRefusalOf(headerOf(field(response, 'headers'), 'www-authenticate'))
}

/** The URL and `DPoP-Nonce` of the response behind a thrown error, where it tells them. */
function nonceOfError(error: unknown): { url: string; nonce: string } | undefined {
  const response = field(error, 'response')
  const nonce = nonceOf(headerOf(field(response, 'headers'), 'dpop-nonce'))
  const request = field(response, 'request')
  const config = field(response, 'config') ?? field(error, 'config')
  const urls = [
    field(response, 'url'),
    field(request, 'responseURL'),
    field(field(request, 'res'), 'responseUrl'),
    field(config, 'url'),
  ]
  const url = urls.find((u): u is string => typeof u === 'string' && /^https?:/i.test(u))
  return nonce && url ? { url, nonce } : undefined
}

/** What the client and its transports use of DPoP. */
export interface Dpop {
  keys: ReturnType<typeof createDpopKeys>
  /** The `DPoP` proof for sending `grant`'s token with `method` to `url`. */
  proofFor(grant: Grant, method: string, url: string): Promise<string>
  /** Remembers the `DPoP-Nonce` of a response from `url`. */
  learn(url: string, header: string | null | undefined): void
  /** The handle for a sign-in (`auth.dpop`). */
  signIn: DpopHandle
  /** The handle for refreshing `session` (the `refresh` function's `dpop`). */
  forSession(session: Session): DpopHandle
  /**
   * A refresh error that is a DPoP matter, not a verdict on the refresh token: its nonce
   * is learned; the refresher sends the call once more and never counts it as refused.
   */
  refusal(error: unknown): 'use_dpop_nonce' | 'invalid_dpop_proof' | undefined
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
    const algorithm = pair?.privateKey?.algorithm as EcKeyAlgorithm | undefined
    if (
      algorithm?.name !== 'ECDSA' ||
      algorithm.namedCurve !== 'P-256' ||
      !pair.privateKey.usages.includes('sign') ||
      pair.publicKey?.type !== 'public'
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
      htm: method.toUpperCase(),
      htu,
      iat: Math.floor(options.now() / 1000),
      ath: token === undefined ? undefined : await athOf(token),
      nonce: nonces.get(htu),
    })
  }

  const handle = (key: () => Promise<SigningKey>): DpopHandle => {
    const proof: DpopHandle['proof'] = async (method, url, extra) =>
      sign(await key(), method, url, extra?.accessToken)
    return {
      proof,
      async fetch(input, init) {
        const send = options.fetch ?? globalThis.fetch
        const request = new Request(input, init)
        let response: Response | undefined
        for (let tries = 1; ; tries += 1) {
          const attempt = tries < RETRIED ? request.clone() : request
          attempt.headers.set('DPoP', await proof(attempt.method, attempt.url))
          response = await send(attempt)
          const learned = nonces.learn(attempt.url, response.headers.get('dpop-nonce'))
          if (tries >= RETRIED || !learned || !(await asksForNonce(response))) return response
          response.body?.cancel().catch(() => undefined)
        }
      },
      keyPair: async () => (await key()).keyPair,
      thumbprint: async () => (await key()).jkt,
    }
  }

  return {
    keys,
    async proofFor(grant, method, url) {
      return sign(await keys.session(grant.session), method, url, grant.token)
    },
    learn(url, header) {
      nonces.learn(url, header)
    },
    signIn: handle(() => keys.signIn()),
    forSession: (session) => handle(() => keys.session(session.id)),
    refusal(error) {
      const refusal = dpopRefusalOfError(error)
      const learned = refusal === undefined ? undefined : nonceOfError(error)
      if (learned) nonces.learn(learned.url, learned.nonce)
      return refusal
    },
  }
}
