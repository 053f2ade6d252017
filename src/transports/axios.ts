// Types only: the package runs without axios installed, and a fetch-only bundle holds none.
import type {
  AxiosInstance,
  AxiosRequestTransformer,
  AxiosResponse,
  InternalAxiosRequestConfig,
} from 'axios'
import type {} from '../axiosConfig.js'
import { dpopRefusalOf, headerValue, STALE_PROOF_MS } from '../dpop/nonces.js'
import { htuOf } from '../dpop/proof.js'
import { DpopError, LoggedOutError } from '../errors.js'
import { sameOrigin } from '../origin.js'
import {
  type AbortSource,
  type Grant,
  type HeldRequest,
  type RequestDescription,
  type RequestQueue,
  redactUrl,
} from '../queue.js'
import { axiosUrl } from './axiosUrl.js'
import type { RequestDpop } from './fetch.js'

/** Carries the one-time replay marker from `replay()` to the request interceptor. */
const REPLAY = 'authMachineReplay'

/** The session epoch a config was authorised in; copied with it, unlike the replay marker. */
const EPOCH = 'authMachineEpoch'

type TrackedConfig = InternalAxiosRequestConfig & { [REPLAY]?: number; [EPOCH]?: string }

/**
 * What a transport decided for a config on this pass, as one symbol shared by every
 * transport: copied along when an interceptor returns `{ ...config }`, never serialised,
 * and cleared by whichever transport's request interceptor sees the config next (axios'
 * merge copies symbols too), so a config re-sent through another instance or after a
 * detach carries no grant of its owner's into a pass it did not authorise.
 */
const STATE = Symbol('auth-machine request')

interface RequestState {
  /**
   * The transport that authorised this pass; only its send-time check writes the token. A
   * number: axios' merge deep-copies plain objects, so an identity would not survive it.
   */
  owner: number
  /** What the request interceptor authorised. */
  grant: Grant
  /** The token the send-time check wrote: only a request that carried it can prove it wrong. */
  sent?: Grant
  /** A replay: never replayed again. */
  replayed?: true
  /** Sent again for a DPoP nonce: not again for another one. */
  nonceRetried?: true
  /** The DPoP proof made for this pass, the method and URL it names, and when it was signed. */
  proof?: { htm: string; htu: string | undefined; value: string; signedAt: number }
  /** The session's hold on a request inside a custom adapter. */
  held?: HeldRequest
}

/**
 * The dispatches (axios' flat config objects, one per send) whose token an owner's check has
 * just written: other transports' checks in the same list leave that header alone.
 */
const writtenNow = new WeakSet<object>()

/** Numbers the clients (their queues) of this realm, for the epoch marker. */
const clientTags = new WeakMap<object, string>()
function clientTagOf(queue: object): string {
  let tag = clientTags.get(queue)
  if (tag === undefined) {
    clients += 1
    tag = String(clients)
    clientTags.set(queue, tag)
  }
  return tag
}
let clients = 0

/** Numbers replays realm-wide, so two transports' markers never collide. */
let replaysSent = 0

/** Numbers the transports of this realm (see `RequestState.owner`). */
let transports = 0

/** Marks the send-time checks, so a second client can see the instance is taken. */
const CHECK = Symbol('auth-machine check')

/** Marks the adapters and redirect hooks this library wrapped, and keeps the wrapped one. */
const HOLDS = Symbol('auth-machine adapter')

/** What the app gave, under any wrapper of ours. */
function unwrap<T>(value: T): T {
  return typeof value === 'function' && HOLDS in value
    ? (value as T & { [HOLDS]: T })[HOLDS]
    : value
}

/** Thrown into the waiting request when it is aborted: axios then raises its own error. */
const ABORTED = Symbol('auth-machine aborted')

const endedSession = () =>
  new LoggedOutError('The request was made in a session that has ended; it is not sent.')

/** Serialised axios errors (`JSON.stringify(error)`) drop these headers' values. */
const REDACT = Object.freeze(['Authorization', 'DPoP'])

export interface AxiosTransportOptions {
  http: AxiosInstance
  queue: RequestQueue
  mayAttach: (config: InternalAxiosRequestConfig) => boolean
  isAuthFailure: (response: AxiosResponse) => boolean | Promise<boolean>
  /** With DPoP: the proof for each request, and the nonces its answers carry. */
  dpop?: RequestDpop | undefined
}

/** What a re-sent config is: a replay for a new token, a retry for a DPoP nonce, or both. */
interface Resend {
  replayed: boolean
  nonceRetried: boolean
}

function describe(config: InternalAxiosRequestConfig): RequestDescription {
  // `url` may be a URL object, which axios accepts.
  return {
    method: (config.method ?? 'get').toUpperCase(),
    url: redactUrl(String(config.url ?? '')),
  }
}

/** The URL a response finally came from, after redirects, where the adapter tells it. */
function finalUrl(response: AxiosResponse): string | undefined {
  const request = response.request as
    | { responseURL?: unknown; res?: { responseUrl?: unknown } }
    | undefined
  const url = request?.responseURL ?? request?.res?.responseUrl
  return typeof url === 'string' && url !== '' ? url : undefined
}

/**
 * The request's `signal` and legacy `cancelToken`, as one abort source for the queue. An
 * abort while waiting lets the request go on without a token, and axios' own check before
 * sending rejects it with its `CanceledError` (or the token's reason).
 */
function abortSourceOf(config: InternalAxiosRequestConfig): AbortSource | undefined {
  const { signal, cancelToken } = config
  if (!signal && !cancelToken) return undefined
  return {
    aborted: () => Boolean(signal?.aborted || cancelToken?.reason),
    onAbort(listener) {
      signal?.addEventListener?.('abort', listener)
      cancelToken?.subscribe(listener)
      return () => {
        signal?.removeEventListener?.('abort', listener)
        cancelToken?.unsubscribe(listener)
      }
    },
    error: () => ABORTED,
  }
}

/** What `Promise.reject(error)` axios' interceptors pass on: axios' own errors are marked. */
function isAxiosError(
  error: unknown,
): error is { config?: InternalAxiosRequestConfig; response?: AxiosResponse } {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { isAxiosError?: unknown }).isAxiosError === true
  )
}

/** Removes `Authorization` (and `DPoP`) in any spelling from a plain header object. */
function deleteAuthorization(headers: Record<string, unknown>, dpop = false): void {
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'authorization' || (dpop && lower === 'dpop')) delete headers[name]
  }
}

/** The method and URL a DPoP proof names for `config`, as axios will send it. */
function proofTarget(config: InternalAxiosRequestConfig): { htm: string; htu: string | undefined } {
  const url = axiosUrl(config)
  return {
    htm: (config.method ?? 'get').toUpperCase(),
    htu: url === undefined ? undefined : htuOf(url),
  }
}

function asList<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/**
 * Protects one axios instance: attaches the token to allowed origins, waits while a refresh
 * runs, reports 401s to the queue and replays once. Returns a function that ejects both
 * interceptors and the send-time check.
 */
export function attachAxios(options: AxiosTransportOptions): () => void {
  const { http, queue, mayAttach, isAuthFailure, dpop } = options
  const scheme = dpop ? 'DPoP' : 'Bearer'
  transports += 1
  const me = transports
  const clientTag = clientTagOf(queue)
  type Marked = TrackedConfig & { [STATE]?: RequestState }
  // Markers this transport handed to re-sends (numbers: axios deep-copies objects it merges).
  const replayMarkers = new Map<number, Resend>()
  // The DPoP proofs this transport wrote, so one re-sent on a pass without the token goes.
  const proofsWritten = new Set<string>()
  // The header values this transport wrote, with the session epoch of each, so it can take
  // them back from a config another interceptor re-sends (retry libraries re-send
  // `error.config` as it is), and refuse to send another session's request.
  const written = new Map<string, number>()
  let detached = false

  /** The header as this transport wrote it: a plain property read before the slow get(). */
  const authorizationOf = (config: InternalAxiosRequestConfig): unknown => {
    const { headers } = config
    return headers.Authorization ?? headers.authorization ?? headers.get?.('Authorization')
  }

  /** The session a config was authorised in: its marker, copied along, or its header. */
  const epochOf = (config: TrackedConfig): number | undefined => {
    const marked = config[EPOCH]
    if (typeof marked === 'string') {
      // `<client>:<epoch>`: another client's marker says nothing about this client's epochs.
      const [client, epoch] = marked.split(':')
      if (client === clientTag) return Number(epoch)
    }
    const value = authorizationOf(config)
    return typeof value === 'string' ? written.get(value) : undefined
  }

  /** Takes back a header this transport wrote: the config goes out without the token. */
  const forget = (config: Marked) => {
    if (config[STATE]?.owner === me) delete config[STATE]
    if (epochOf(config) !== undefined) {
      config.headers.delete('Authorization')
      // A proof goes with the token it was made for, whoever wrote it.
      if (dpop) config.headers.delete('DPoP')
    }
    forgetProof(config)
    return config
  }
  /** Takes back a `DPoP` header this transport wrote. */
  const forgetProof = (config: InternalAxiosRequestConfig) => {
    const proof = config.headers.get?.('DPoP')
    if (typeof proof === 'string' && proofsWritten.has(proof)) config.headers.delete('DPoP')
  }

  // The token is written here, at the moment of sending, and nowhere else: a request
  // transformer is the last code axios runs before its adapter, with the config as `this`.
  // Interceptors registered before ours run after it and may move the request to another
  // origin, replace the config, or hold it while the user logs out; one that drops the
  // transformers (or builds a config from scratch) sends no token at all: it fails closed.
  const checkAtSend: AxiosRequestTransformer = function (this: InternalAxiosRequestConfig, data) {
    const config = this as Marked
    const state = config[STATE]
    if (!state || state.owner !== me || detached) {
      // Not this transport's pass: a header it wrote on an earlier one goes (a config re-sent
      // as it is carries it), unless this send's owner has just written it.
      const value = authorizationOf(config)
      if (!writtenNow.has(config)) {
        if (typeof value === 'string' && written.has(value)) {
          config.headers.delete('Authorization')
          if (dpop) config.headers.delete('DPoP')
        }
        forgetProof(config)
      }
      if (state?.owner === me) delete config[STATE]
      return data
    }
    const { grant } = state
    if (!queue.isLive(grant.epoch)) throw endedSession()
    // Decided again on the config as it is now: interceptors, a wait for the token or a
    // changed page base may have moved it since the interceptor decided.
    if (!mayAttach(config)) {
      forget(config)
      return data
    }
    const value = headerOf(grant)
    const { headers } = config
    if (state.proof) {
      // The proof names the method and URL the request interceptor saw; code that ran since
      // (an interceptor registered before this client's) moved the request. Signing is
      // async, so no new proof can be made here: the request is not sent.
      const now = proofTarget(config)
      if (now.htm !== state.proof.htm || now.htu !== state.proof.htu) {
        forget(config)
        throw new DpopError(
          'The request changed method or URL after its DPoP proof was made (an axios interceptor registered before the auth client changed it): it is not sent.',
          'DPOP_PROOF_MISMATCH',
        )
      }
      headers.set('DPoP', state.proof.value)
    }
    // A plain property write when no Authorization header exists in any spelling: set()
    // normalises names and costs more than the rest of this check.
    if (headers.Authorization === undefined && headers.authorization === undefined) {
      headers.Authorization = value
    } else headers.set('Authorization', value)
    state.sent = grant
    writtenNow.add(config)
    // Made afresh on every send: a hook or wrapper copied from an earlier send (a config
    // re-sent to another URL, or through another client) belongs to that send.
    config.beforeRedirect = stripOnRedirect(config, unwrap(config.beforeRedirect))
    // A custom adapter is the app's own code between here and the network: it runs with the
    // session's signal, so an adapter that holds the request while the user logs out then
    // sends nothing with the token. axios' own adapters send at once.
    const adapter = unwrap(config.adapter)
    if (typeof adapter === 'function') config.adapter = holding(adapter, state)
    else if (Array.isArray(adapter)) {
      // axios takes the first adapter of a list that it can use: a function among them too.
      config.adapter = adapter.map((entry) => {
        const own = unwrap(entry)
        return typeof own === 'function' ? holding(own, state) : own
      })
    }
    return data
  }
  // axios' Node adapter follows redirects itself; versions before 1.2x keep `Authorization`
  // on a redirect to a subdomain. Whatever the version, it goes on a change of origin.
  const stripOnRedirect = (
    config: InternalAxiosRequestConfig,
    user: InternalAxiosRequestConfig['beforeRedirect'],
  ) => {
    type Hook = NonNullable<InternalAxiosRequestConfig['beforeRedirect']>
    const hook: Hook = (options, response, request) => {
      const { href, protocol, host, path } = options as Record<string, string | undefined>
      const target = href ?? `${protocol}//${host}${path ?? ''}`
      const requested = axiosUrl(config)
      const headers = options.headers as Record<string, unknown> | undefined
      if (headers && (requested === undefined || !sameOrigin(target, requested))) {
        deleteAuthorization(headers, dpop !== undefined)
      }
      user?.(options, response, request)
    }
    ;(hook as typeof hook & { [HOLDS]?: unknown })[HOLDS] = user
    return hook
  }
  // The header value of the current grant, made once per grant rather than per request.
  let lastGrant: Grant | undefined
  let lastValue = ''
  const headerOf = (grant: Grant): string => {
    if (grant === lastGrant) return lastValue
    lastGrant = grant
    lastValue = `${scheme} ${grant.token}`
    if (written.get(lastValue) !== grant.epoch) {
      // One entry per token, with the latest epoch it was written in (the same token may
      // come back in a later login); older ones only matter for configs being re-sent.
      written.delete(lastValue)
      if (written.size >= 256) written.delete(written.keys().next().value as string)
      written.set(lastValue, grant.epoch)
    }
    return lastValue
  }
  const holding = (
    adapter: (config: InternalAxiosRequestConfig) => Promise<AxiosResponse>,
    state: RequestState,
  ) => {
    const wrapped = async (config: InternalAxiosRequestConfig) => {
      const caller = config.signal as AbortSignal | undefined
      const held = queue.hold(state.grant.epoch, caller)
      state.held = held
      config.signal = held.signal
      try {
        return await adapter(config)
      } finally {
        held.release()
        config.signal = caller
      }
    }
    return Object.assign(wrapped, { [HOLDS]: adapter })
  }
  // Last, always: a transformer after it (axios' documented `[...defaults, fn]` extends the
  // list that already holds it) could move the request after the token was written.
  const withCheck = (transformers: InternalAxiosRequestConfig['transformRequest']) => {
    const list = asList(transformers)
    if (list.at(-1) === checkAtSend) return list
    return [...list.filter((fn) => fn !== checkAtSend), checkAtSend]
  }
  const defaultTransformers = http.defaults.transformRequest
  if (asList(defaultTransformers).some((fn) => CHECK in fn)) {
    // Two clients' interceptors on one instance would undo each other's decisions.
    throw new TypeError('auth-machine: this axios instance is attached to another auth client.')
  }
  ;(checkAtSend as AxiosRequestTransformer & { [CHECK]?: true })[CHECK] = true
  const checked = withCheck(defaultTransformers)
  http.defaults.transformRequest = checked

  const attach = (
    config: Marked,
    grant: Grant | null,
    resend: Resend | undefined,
  ): Marked | Promise<Marked> => {
    // A header of ours from an earlier send goes: only the send-time check writes one.
    if (!grant) return forget(config)
    // A request built in another session (re-sent by a retry library after a logout and a
    // new login) is never sent with the new session's token.
    const epoch = epochOf(config)
    forget(config)
    if (epoch !== undefined && epoch !== grant.epoch) throw endedSession()
    const { redact } = config
    if (!redact) config.redact = REDACT as string[]
    else {
      const missing = REDACT.filter(
        (name) => !redact.some((key) => key.toLowerCase() === name.toLowerCase()),
      )
      if (missing.length > 0) config.redact = [...redact, ...missing]
    }
    // Copied with the config on purpose: a re-send of it is known to belong to this session.
    config[EPOCH] = `${clientTag}:${grant.epoch}`
    const state: RequestState = { owner: me, grant }
    if (resend?.replayed) state.replayed = true
    if (resend?.nonceRetried) state.nonceRetried = true
    config[STATE] = state
    config.transformRequest = withCheck(config.transformRequest)
    return dpop ? withProof(config, state, dpop) : config
  }
  // Signed here, where waiting is allowed: the send-time check is synchronous.
  const withProof = async (config: Marked, state: RequestState, dpop: RequestDpop) => {
    const { htm, htu } = proofTarget(config)
    // No URL axios could send to: the request fails in axios, with no proof needed.
    if (htu === undefined) return config
    const value = await dpop.proofFor(state.grant, htm, htu)
    if (proofsWritten.size >= 256)
      proofsWritten.delete(proofsWritten.values().next().value as string)
    proofsWritten.add(value)
    state.proof = { htm, htu, value, signedAt: dpop.now() }
    return config
  }

  const authorizeLater = async (config: InternalAxiosRequestConfig, resend: Resend | undefined) => {
    try {
      const grant = await queue.acquire(describe(config), abortSourceOf(config))
      return await attach(config, grant, resend)
    } catch (error) {
      if (error === ABORTED) return forget(config)
      throw error
    }
  }

  // Not async: with a usable token the config goes straight on, without extra promise hops
  // (this path is most of the library's per-request cost).
  const request = http.interceptors.request.use((config: Marked) => {
    // axios' merge copies symbols too: what a config re-sent through `request()` carries
    // from an earlier pass is decided afresh here.
    delete config[STATE]
    const marker = config[REPLAY]
    // Only this transport's own markers are consumed (another client on the instance must
    // still find its own), and removed, so a config copied from `error.config` is no replay.
    const resend = marker === undefined ? undefined : replayMarkers.get(marker)
    if (marker !== undefined && resend) {
      replayMarkers.delete(marker)
      delete config[REPLAY]
    }
    if (config.skipAuth || !mayAttach(config)) return forget(config)
    const grant = queue.tryAcquire()
    return grant === undefined ? authorizeLater(config, resend) : attach(config, grant, resend)
  })

  /** The token a response's request carried, if this response may prove it wrong. */
  const provable = (response: AxiosResponse): Grant | undefined => {
    const config = response.config as Marked | undefined
    const state = config?.[STATE]
    const sent = state?.owner === me ? state.sent : undefined
    if (!sent || state?.replayed) return undefined
    // Detached, its 401s are the app's; disposed, the request settles with DISPOSED below.
    if (detached && !queue.isDisposed()) return undefined
    // A 401 from another origin a redirect led to never saw the token: it proves nothing.
    const url = finalUrl(response)
    if (url === undefined) return sent
    const requested = axiosUrl(response.config)
    return requested !== undefined && sameOrigin(url, requested) ? sent : undefined
  }

  /**
   * Sends `response`'s request again once the machine lets it go: a replay after a 401 for
   * its token (`rejected`), or a retry with the nonce a DPoP server asked for.
   */
  async function resend(
    response: AxiosResponse,
    grant: Grant,
    kind: 'replay' | 'nonce',
  ): Promise<AxiosResponse> {
    const config = response.config
    const state = (config as Marked)[STATE]
    const abort = abortSourceOf(config)
    try {
      if (kind === 'replay') await queue.rejected(describe(config), grant, abort)
      else await queue.nonceChallenged(describe(config), grant, abort)
    } catch (error) {
      if (error !== ABORTED) throw error
    }
    // The request interceptor authorises it again, or not if the session ended meanwhile.
    // An aborted request goes the same way: axios rejects it before it is sent.
    const headers = { ...(config.headers.toJSON?.() ?? config.headers) } as Record<string, unknown>
    deleteAuthorization(headers, dpop !== undefined)
    replaysSent += 1
    const marker = replaysSent
    replayMarkers.set(
      marker,
      kind === 'replay'
        ? { replayed: true, nonceRetried: false }
        : { replayed: state?.replayed === true, nonceRetried: true },
    )
    return http.request({ ...config, headers, [REPLAY]: marker } as TrackedConfig)
  }

  /**
   * A DPoP server's verdict on the proof, not the token: remembered nonce first, then a
   * `use_dpop_nonce` 401 (with a nonce) is sent once more. `undefined`: not a DPoP matter.
   */
  const dpopVerdict = (response: AxiosResponse, no: () => Outcome): Outcome | undefined => {
    if (!dpop) return undefined
    const config = response.config as Marked | undefined
    const state = config?.[STATE]
    if (!config || state?.owner !== me || !state.sent) return undefined
    const requested = axiosUrl(config)
    const url = finalUrl(response) ?? requested
    // Another origin a redirect led to: its nonces and its verdicts are not this server's.
    if (url === undefined || requested === undefined || !sameOrigin(url, requested)) {
      return undefined
    }
    const nonce = headerValue(response.headers, 'dpop-nonce')
    dpop.learn(url, nonce)
    if (response.status !== 401) return undefined
    // Where a browser hides `WWW-Authenticate` (a cross-origin API exposing only
    // `DPoP-Nonce`), the body's `error` tells a nonce challenge.
    const refusal =
      dpopRefusalOf(headerValue(response.headers, 'www-authenticate')) ??
      (nonce !== undefined &&
      (response.data as { error?: unknown } | null)?.error === 'use_dpop_nonce'
        ? 'use_dpop_nonce'
        : undefined)
    if (refusal === undefined) return undefined
    // A fresh nonce, or a proof that aged while code after the client's held the request
    // (one refused as soon as it was made would be refused again): sent once more.
    const fresher =
      refusal === 'use_dpop_nonce'
        ? nonce !== undefined
        : dpop.now() - (state.proof?.signedAt ?? dpop.now()) >= STALE_PROOF_MS
    if (fresher && !state.nonceRetried && !(detached && !queue.isDisposed())) {
      return resend(response, state.sent, 'nonce')
    }
    return no()
  }

  // The predicate may be async; a plain boolean answer keeps the response path synchronous.
  type Outcome = AxiosResponse | Promise<AxiosResponse>
  const verdict = (response: AxiosResponse, no: () => Outcome): Outcome => {
    const refused = dpopVerdict(response, no)
    if (refused !== undefined) return refused
    const grant = provable(response)
    if (!grant) return no()
    const yes = () => resend(response, grant, 'replay')
    const answer = isAuthFailure(response)
    if (answer === true) return yes()
    if (answer === false) return no()
    const config = response.config
    // A predicate still pending when the request is aborted or the client disposed lets the
    // response through as it is (abort) or rejects (DISPOSED): it never holds the caller.
    return queue.guard(Promise.resolve(answer), abortSourceOf(config)).then(
      (value) => (value === true ? yes() : no()),
      (error: unknown) => (error === ABORTED ? no() : Promise.reject(error)),
    )
  }
  const response = http.interceptors.response.use(
    (result) => verdict(result, () => result),
    (error: unknown) => {
      if (!isAxiosError(error)) throw error
      const held = (error.config as Marked | undefined)?.[STATE]?.held
      // Aborted by the session, not by the caller: the session's error, not a CanceledError.
      if (held?.signal.aborted && !(error.config?.signal as AbortSignal | undefined)?.aborted) {
        throw held.signal.reason
      }
      if (!error.response) throw error
      return verdict(error.response, () => {
        throw error
      })
    },
  )

  return () => {
    detached = true
    http.interceptors.request.eject(request)
    http.interceptors.response.eject(response)
    const current = http.defaults.transformRequest
    if (current === checked) http.defaults.transformRequest = defaultTransformers
    else if (Array.isArray(current)) {
      http.defaults.transformRequest = current.filter((fn) => fn !== checkAtSend)
    }
  }
}
