// Types only: the package runs without axios installed, and a fetch-only bundle holds none.
import type {
  AxiosInstance,
  AxiosRequestTransformer,
  AxiosResponse,
  InternalAxiosRequestConfig,
} from 'axios'
import type {} from '../axiosConfig.js'
import { LoggedOutError } from '../errors.js'
import type { AbortSource, Grant, RequestDescription, RequestQueue } from '../queue.js'

/** Carries the one-time replay marker from `replay()` to the request interceptor. */
const REPLAY = 'authMachineReplay'

/** The session epoch a config was authorised in; copied with it, unlike the replay marker. */
const EPOCH = 'authMachineEpoch'

/** The URL a config's origin was decided on (symbols: never serialised, never merged). */
const DECIDED_URL = Symbol('auth-machine url')
const DECIDED_BASE = Symbol('auth-machine baseURL')
type DecidedConfig = InternalAxiosRequestConfig & {
  [DECIDED_URL]?: string | undefined
  [DECIDED_BASE]?: string | undefined
}

type TrackedConfig = InternalAxiosRequestConfig & { [REPLAY]?: number; [EPOCH]?: number }

/** Thrown into the waiting request when it is aborted: axios then raises its own error. */
const ABORTED = Symbol('auth-machine aborted')

const endedSession = () =>
  new LoggedOutError('The request was made in a session that has ended; it is not sent.')

/** Serialised axios errors (`JSON.stringify(error)`) drop this header's value. */
const REDACT = Object.freeze(['Authorization'])

export interface AxiosTransportOptions {
  http: AxiosInstance
  queue: RequestQueue
  mayAttach: (config: InternalAxiosRequestConfig) => boolean
  isAuthFailure: (response: AxiosResponse) => boolean | Promise<boolean>
}

function describe(config: InternalAxiosRequestConfig): RequestDescription {
  // The query string is left out: it is the app's data, and the queue is inspectable.
  const url = (config.url ?? '').split('?')[0] ?? ''
  return { method: (config.method ?? 'get').toUpperCase(), url }
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
  const { http, queue, mayAttach, isAuthFailure } = options
  // The grant each request went out with. Keyed by the config object, which axios hands
  // unchanged from the request interceptor to the response.
  const sentWith = new WeakMap<InternalAxiosRequestConfig, Grant>()
  // Markers this transport handed to replays (numbers: axios deep-copies objects it merges),
  // and the configs that went out as replays.
  const replayMarkers = new Set<number>()
  let replaysSent = 0
  const replays = new WeakSet<InternalAxiosRequestConfig>()
  // The header values this transport wrote, with the session epoch of each, so it can take
  // them back from a config another interceptor re-sends (retry libraries re-send
  // `error.config` as it is), and refuse to send another session's request.
  const written = new Map<string, number>()

  /** The header as this transport wrote it: a plain property read before the slow get(). */
  const authorizationOf = (config: InternalAxiosRequestConfig): unknown => {
    const { headers } = config
    return headers.Authorization ?? headers.authorization ?? headers.get?.('Authorization')
  }

  /** The session a config was authorised in: its marker, copied along, or its header. */
  const epochOf = (config: TrackedConfig): number | undefined => {
    const marked = config[EPOCH]
    if (typeof marked === 'number') return marked
    const value = authorizationOf(config)
    return typeof value === 'string' ? written.get(value) : undefined
  }

  const forget = (config: TrackedConfig) => {
    if (epochOf(config) !== undefined) config.headers.delete('Authorization')
    return config
  }

  // Decided again at the moment of sending: interceptors registered before ours run after
  // it and may move the request to another origin, build a new config, or hold it (an async
  // CSRF fetch) while the user logs out. A request transformer is the last code axios runs
  // before its adapter, with the config as `this`, whatever adapter the request uses.
  const checkAtSend: AxiosRequestTransformer = function (this: InternalAxiosRequestConfig, data) {
    const value = authorizationOf(this)
    const epoch = typeof value === 'string' ? written.get(value) : undefined
    if (epoch === undefined) return data
    if (!queue.isLive(epoch)) throw endedSession()
    // The origin is decided again only if something changed the URL since it was decided.
    const decided = this as DecidedConfig
    if (decided[DECIDED_URL] === this.url && decided[DECIDED_BASE] === this.baseURL) {
      return data
    }
    if (!mayAttach(this)) this.headers.delete('Authorization')
    return data
  }
  const withCheck = (transformers: InternalAxiosRequestConfig['transformRequest']) => {
    const list = asList(transformers)
    return list.includes(checkAtSend) ? list : [...list, checkAtSend]
  }
  // Configs built from scratch by an interceptor fall back to the instance's default.
  const defaultTransformers = http.defaults.transformRequest
  const checked = withCheck(defaultTransformers)
  http.defaults.transformRequest = checked

  const attach = (config: TrackedConfig, grant: Grant | null) => {
    if (!grant) return forget(config)
    // A request built in another session (re-sent by a retry library after a logout and a
    // new login) is never sent with the new session's token.
    const epoch = epochOf(config)
    if (epoch !== undefined && epoch !== grant.epoch) throw endedSession()
    const value = `Bearer ${grant.token}`
    if (!written.has(value)) {
      // One entry per token; older ones only matter for configs still being re-sent.
      if (written.size >= 256) written.delete(written.keys().next().value as string)
      written.set(value, grant.epoch)
    }
    const { headers } = config
    // A plain property write when no Authorization header exists in any spelling: set()
    // normalises names and costs more than the rest of this interceptor.
    if (headers.Authorization === undefined && headers.authorization === undefined) {
      headers.Authorization = value
    } else headers.set('Authorization', value)
    const { redact } = config
    if (!redact) config.redact = REDACT as string[]
    else if (!redact.some((key) => key.toLowerCase() === 'authorization')) {
      config.redact = [...redact, 'Authorization']
    }
    // Copied with the config on purpose: a re-send of it is known to belong to this session.
    config[EPOCH] = grant.epoch
    const decided = config as DecidedConfig
    decided[DECIDED_URL] = config.url
    decided[DECIDED_BASE] = config.baseURL
    const { transformRequest } = config
    if (!Array.isArray(transformRequest) || transformRequest.at(-1) !== checkAtSend) {
      config.transformRequest = withCheck(transformRequest)
    }
    sentWith.set(config, grant)
    return config
  }

  const authorizeLater = async (config: InternalAxiosRequestConfig) => {
    try {
      return attach(config, await queue.acquire(describe(config), abortSourceOf(config)))
    } catch (error) {
      if (error === ABORTED) return forget(config)
      throw error
    }
  }

  // Not async: with a usable token the config goes straight on, without extra promise hops
  // (this path is most of the library's per-request cost).
  const request = http.interceptors.request.use((config: TrackedConfig) => {
    const marker = config[REPLAY]
    if (marker !== undefined) {
      // Consumed here and removed, so a config copied from `error.config` is no replay.
      delete config[REPLAY]
      if (replayMarkers.delete(marker)) replays.add(config)
    }
    if (config.skipAuth || !mayAttach(config)) return forget(config)
    const grant = queue.tryAcquire()
    return grant === undefined ? authorizeLater(config) : attach(config, grant)
  })

  async function replayAfterRejection<T>(
    config: InternalAxiosRequestConfig | undefined,
    passThrough: () => T,
  ): Promise<T | AxiosResponse> {
    const grant = config ? sentWith.get(config) : undefined
    // Only requests we authorised can prove the token wrong, and only once.
    if (!config || !grant || replays.has(config)) return passThrough()
    try {
      await queue.rejected(describe(config), grant, abortSourceOf(config))
    } catch (error) {
      if (error !== ABORTED) throw error
    }
    // The request interceptor sets the new token, or none if the session ended meanwhile.
    // An aborted request goes the same way: axios rejects it before it is sent.
    const headers = { ...(config.headers.toJSON?.() ?? config.headers) } as Record<string, unknown>
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() === 'authorization') delete headers[name]
    }
    replaysSent += 1
    const marker = replaysSent
    replayMarkers.add(marker)
    const replay = { ...config, headers, [REPLAY]: marker } as TrackedConfig
    return http.request(replay)
  }

  // The predicate may be async; a plain boolean answer keeps the response path synchronous.
  type Outcome = AxiosResponse | Promise<AxiosResponse>
  const verdict = (response: AxiosResponse, yes: () => Outcome, no: () => Outcome): Outcome => {
    const answer = isAuthFailure(response)
    if (answer === true) return yes()
    if (answer === false) return no()
    return Promise.resolve(answer).then((value) => (value === true ? yes() : no()))
  }
  const response = http.interceptors.response.use(
    (result) =>
      verdict(
        result,
        () => replayAfterRejection(result.config, () => result),
        () => result,
      ),
    (error: unknown) => {
      if (!isAxiosError(error) || !error.response) throw error
      const fail = (): never => {
        throw error
      }
      return verdict(error.response, () => replayAfterRejection(error.config, fail), fail)
    },
  )

  return () => {
    http.interceptors.request.eject(request)
    http.interceptors.response.eject(response)
    const current = http.defaults.transformRequest
    if (current === checked) http.defaults.transformRequest = defaultTransformers
    else if (Array.isArray(current)) {
      http.defaults.transformRequest = current.filter((fn) => fn !== checkAtSend)
    }
  }
}
