import { dpopRefusalOf, STALE_PROOF_MS } from '../dpop/nonces.js'
import {
  fetchMethod,
  followRedirects,
  type Hop,
  isReplayable,
  seesRedirects,
} from '../dpop/redirects.js'
import { LoggedOutError } from '../errors.js'
import { type OriginPolicy, pageBases, sameOrigin } from '../origin.js'
import {
  type AbortSource,
  type Grant,
  type RequestDescription,
  type RequestQueue,
  redactUrl,
} from '../queue.js'
import type { SkipAuthOption } from '../skipAuth.js'

/**
 * `RequestInit` plus `skipAuth`, which is taken out before the request reaches `fetch`. A
 * `Request` input with an own `skipAuth: true` property (as openapi-fetch builds) counts too.
 */
export type AuthRequestInit = RequestInit & SkipAuthOption

/** The signature of `auth.fetch`: the platform's `fetch`, with the session. */
export type AuthFetch = (input: RequestInfo | URL, init?: AuthRequestInit) => Promise<Response>

export interface FetchTransportOptions {
  queue: RequestQueue
  policy: OriginPolicy
  isAuthFailure: ((response: Response) => boolean | Promise<boolean>) | undefined
  fetch: typeof globalThis.fetch | undefined
  /** Called once, on the first request, when no origin may receive the token at all. */
  unconfigured?: () => void
  /** With DPoP: the proof for each request, and the nonces its answers carry. */
  dpop?: RequestDpop | undefined
}

/** What a transport needs of DPoP. */
export interface RequestDpop {
  /** The `DPoP` header for sending `grant`'s token with `method` to `url` (absolute). */
  proofFor(grant: Grant, method: string, url: string): Promise<string>
  /** Remembers the `DPoP-Nonce` of a response from `url`. */
  learn(url: string, header: string | null | undefined): void
  /** The client's wall clock, in ms: how old a proof is. */
  now(): number
}

const endedSession = () =>
  new LoggedOutError('The request was made in a session that has ended; it is not replayed.')

// The platform's own getter, which reads the URL fetch will use from the Request's internal
// slot: a subclass or a look-alike object cannot show one URL here and send to another.
const requestUrl =
  typeof Request === 'undefined'
    ? undefined
    : Object.getOwnPropertyDescriptor(Request.prototype, 'url')?.get

/** The URL of a genuine Request (any subclass, any realm the getter accepts), else undefined. */
function urlOfRequest(input: object): string | undefined {
  try {
    const url = requestUrl?.call(input)
    return typeof url === 'string' ? url : undefined
  } catch {
    return undefined
  }
}

function abortSourceOf(signal: AbortSignal | null | undefined): AbortSource | undefined {
  if (!signal) return undefined
  return {
    aborted: () => signal.aborted,
    onAbort(listener) {
      signal.addEventListener('abort', listener)
      return () => signal.removeEventListener('abort', listener)
    },
    error: () => signal.reason,
  }
}

/**
 * The DPoP refusal of a 401: from `WWW-Authenticate`, or, where a browser hides that header
 * (a cross-origin API that exposes only `DPoP-Nonce`), from the body's `error`.
 */
async function refusalOf(response: Response) {
  if (response.status !== 401) return undefined
  const challenged = dpopRefusalOf(response.headers.get('www-authenticate'))
  if (challenged !== undefined || response.headers.get('dpop-nonce') === null) return challenged
  try {
    const body: unknown = await response.clone().json()
    return (body as { error?: unknown } | null)?.error === 'use_dpop_nonce'
      ? ('use_dpop_nonce' as const)
      : undefined
  } catch {
    return undefined
  }
}

/** `url` resolved as fetch resolves it (against the page, in browsers). */
function resolved(url: string): string {
  try {
    return new URL(url, pageBases()[0]).href
  } catch {
    return url
  }
}

/** Releases a body nobody will read (a first 401, a copy or a view), and its connection. */
function discard(message: Body | undefined): void {
  message?.body?.cancel().catch(() => undefined)
}

// What fetch reads from an init, inherited members included (an init may be a Request, or
// made with Object.create): a spread alone would keep only own properties.
const INIT_KEYS = [
  'method',
  'headers',
  'body',
  'signal',
  'redirect',
  'credentials',
  'mode',
  'cache',
  'referrer',
  'referrerPolicy',
  'integrity',
  'keepalive',
  'window',
  'duplex',
  'priority',
] as const

/** A plain copy of `init` without `skipAuth`, and whether it asked to skip the token. */
function ownInit(init: AuthRequestInit | undefined): [RequestInit | undefined, boolean] {
  if (!init) return [undefined, false]
  const copy: Record<string, unknown> = { ...init }
  if (Object.getPrototypeOf(init) !== Object.prototype) {
    const source = init as Record<string, unknown>
    for (const key of INIT_KEYS) if (!(key in copy) && key in init) copy[key] = source[key]
  }
  const skip = copy.skipAuth === true
  delete copy.skipAuth
  return [copy as RequestInit, skip]
}

/**
 * `fetch` with the session. The token is decided per call from the URL fetch will request
 * (resolved as fetch resolves it); a response the server refused for its token is replayed
 * once, after the one shared refresh, with the same body.
 */
export function createAuthFetch(options: FetchTransportOptions): AuthFetch {
  const { queue, policy, isAuthFailure } = options
  let unconfigured = options.unconfigured

  // The predicate reads a clone, so the caller's body is untouched; the clone is cancelled
  // afterwards so an unread copy does not hold the body in memory. A predicate still
  // pending when the request is aborted or the client disposed never holds the caller.
  const failed = isAuthFailure
    ? async (response: Response, abort: AbortSource | undefined) => {
        const view = response.clone()
        try {
          return (await queue.guard(Promise.resolve(isAuthFailure(view)), abort)) === true
        } finally {
          discard(view)
        }
      }
    : (response: Response) => response.status === 401

  return async function authFetch(input, init) {
    const send = options.fetch ?? globalThis.fetch
    // Decided once: a Request's URL from its slot, anything else stringified as fetch does
    // (once: a `toString` that answers differently the second time gets no say), and that
    // very string is what is sent.
    const requestURL = typeof input === 'string' ? undefined : urlOfRequest(input)
    const request = requestURL === undefined ? undefined : (input as Request)
    const url = requestURL ?? (typeof input === 'string' ? input : String(input))
    const target = request ?? url
    const [rest, skip] = ownInit(init)
    // openapi-fetch puts options it does not know on the Request it builds, not in an init.
    if (skip || (request && (request as SkipAuthOption).skipAuth === true)) {
      return send(target, rest)
    }
    if (unconfigured) {
      unconfigured()
      unconfigured = undefined
    }
    if (!policy([url], pageBases())) return send(target, rest)

    const signal = rest?.signal ?? request?.signal
    const abort = abortSourceOf(signal)
    // Built only for a request that waits: the common case never needs it.
    const describe = (): RequestDescription => ({
      method: (rest?.method ?? request?.method ?? 'GET').toUpperCase(),
      url: redactUrl(url),
    })
    let grant = queue.tryAcquire()
    if (grant === undefined) grant = await queue.acquire(describe(), abort)
    if (!grant) return send(target, rest)

    // What a replay sends: the init's own body, or a copy of the Request's taken before the
    // first call reads it. A body fetch can read only once makes the request unreplayable.
    const body = rest?.body
    const ownBody = body !== undefined && body !== null
    const copy =
      !ownBody && request && request.body !== null && !request.bodyUsed
        ? request.clone()
        : undefined
    const replayable = ownBody ? isReplayable(body) : true

    const { dpop } = options
    // The method and URL as fetch sends them: what the proof's `htm` and `htu` name.
    const method = dpop ? fetchMethod(rest?.method ?? request?.method ?? 'GET') : ''
    const absolute = dpop ? resolved(url) : url
    // With DPoP, redirects are followed here where they can be seen (Node): each hop to this
    // origin gets a proof of its own, and no hop elsewhere gets one.
    const followHere =
      dpop !== undefined &&
      seesRedirects &&
      (rest?.redirect ?? request?.redirect ?? 'follow') === 'follow'

    const authorize = async (headers: Headers, token: Grant, htm: string, htu: string) => {
      if (!dpop) return headers.set('Authorization', `Bearer ${token.token}`)
      headers.set('Authorization', `DPoP ${token.token}`)
      headers.set('DPoP', await dpop.proofFor(token, htm, htu))
      // Signing waited: the session may have ended meanwhile, or the client been disposed.
      if (!queue.isLive(token.epoch)) throw queue.disposedError() ?? endedSession()
    }
    // With a `fetch` option, the app's own code stands between this line and the network:
    // the session's signal goes along, so a wrapper that holds the request (a rate limiter,
    // a CSRF step) while the user logs out then sends nothing with the token. The platform's
    // fetch sends at once, and a request already sent is left to finish.
    const sendOnce = async (to: Request | string, init: RequestInit, token?: Grant) => {
      if (!options.fetch || !token) return send(to, init)
      const held = queue.hold(token.epoch, signal)
      try {
        return await send(to, { ...init, signal: held.signal })
      } finally {
        held.release()
      }
    }
    // When the last proof was signed, on the client's clock.
    let signedAt = 0
    /** Sends with the token; `url` is where the answer came from when redirects were followed here. */
    const sendWithToken = async (
      to: Request | string,
      token: Grant,
    ): Promise<{ response: Response; url?: string }> => {
      const headers = new Headers(rest?.headers ?? request?.headers)
      await authorize(headers, token, method, absolute)
      signedAt = dpop?.now() ?? 0
      if (!followHere) return { response: await sendOnce(to, { ...rest, headers }, token) }
      const response = await sendOnce(to, { ...rest, headers, redirect: 'manual' }, token)
      // What the hops after it are made from: a Request's stream body cannot be sent twice,
      // so a 307/308 of one ends the chain there.
      const first: Hop = {
        url: absolute,
        init: { ...rest, method, headers, body: rest?.body ?? request?.body ?? null },
      }
      return followRedirects(
        first,
        response,
        (hopHeaders, htm, htu) => authorize(hopHeaders, token, htm, htu),
        (hop, signed) => sendOnce(hop.url, hop.init, signed ? token : undefined),
      )
    }
    // A Request body is read by each send: each send after the first takes the spare copy,
    // leaving a copy of it for the next.
    let spare = copy
    const nextTarget = () => {
      const to = spare ?? target
      spare = spare?.clone()
      return to
    }
    let sent = await sendWithToken(target, grant)
    let { response } = sent
    let replayed = false
    let nonceRetried = false
    for (;;) {
      // A 401 from another origin a redirect led to never saw the token: it proves nothing.
      const reached =
        sent.url !== undefined
          ? sameOrigin(sent.url, absolute)
          : !response.redirected || sameOrigin(response.url, url, pageBases()[0])
      const refusal = dpop && reached ? await refusalOf(response) : undefined
      if (dpop && reached) dpop.learn(absolute, response.headers.get('dpop-nonce'))
      if (refusal !== undefined) {
        // The server wants a fresh nonce, or refused a proof that aged while the app's code
        // held the request: the token was not judged, so this is never a refresh. It goes
        // once more with a new proof, if the machine says its session is still the one. A
        // proof refused as soon as it was made (a clock far off) would be refused again.
        const fresher =
          refusal === 'use_dpop_nonce'
            ? response.headers.get('dpop-nonce') !== null
            : (dpop?.now() ?? 0) - signedAt >= STALE_PROOF_MS
        const retry = fresher && response.status === 401 && !nonceRetried && replayable
        if (!retry) break
        nonceRetried = true
        discard(response)
        await queue.nonceChallenged(describe(), grant, abort)
      } else {
        if (replayed || !reached || !(await failed(response, abort))) break
        if (!replayable) {
          // The refresh still happens, for the caller's own retry and every later request.
          queue.rejected(describe(), grant).catch(() => undefined)
          return response
        }
        replayed = true
        // A replay may meet a nonce challenge of its own.
        nonceRetried = false
        discard(response)
        await queue.rejected(describe(), grant, abort)
      }
      let next = queue.tryAcquire()
      if (next === undefined) next = await queue.acquire(describe(), abort)
      // Never replayed under another session: a logout (and maybe a new login) came between.
      if (!next || next.epoch !== grant.epoch) throw endedSession()
      grant = next
      sent = await sendWithToken(nextTarget(), grant)
      response = sent.response
    }
    discard(spare)
    return response
  }
}
