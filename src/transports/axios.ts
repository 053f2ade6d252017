import {
  type AxiosAdapter,
  AxiosHeaders,
  type AxiosInstance,
  type AxiosResponse,
  CanceledError,
  getAdapter,
  type InternalAxiosRequestConfig,
  isAxiosError,
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

/** What axios uses when neither the request nor the instance names an adapter. */
const DEFAULT_ADAPTERS = ['xhr', 'http', 'fetch']

type TrackedConfig = InternalAxiosRequestConfig & { [REPLAY]?: number; [EPOCH]?: number }

/** Marks the adapters this transport wrapped, and keeps the one each wraps. */
const WRAPPED = Symbol('auth-machine adapter')

type GuardedAdapter = AxiosAdapter & { [WRAPPED]?: InternalAxiosRequestConfig['adapter'] }

const endedSession = () =>
  new LoggedOutError('The request was made in a session that has ended; it is not sent.')

/** Serialised axios errors (`JSON.stringify(error)`) drop this header's value. */
const REDACT = Object.freeze(['Authorization'])

export interface AxiosTransportOptions {
  http: AxiosInstance
  queue: RequestQueue
  mayAttach: (config: InternalAxiosRequestConfig) => boolean
  isAuthFailure: (response: AxiosResponse) => boolean
}

function describe(config: InternalAxiosRequestConfig): RequestDescription {
  // The query string is left out: it is the app's data, and the queue is inspectable.
  const url = (config.url ?? '').split('?')[0] ?? ''
  return { method: (config.method ?? 'get').toUpperCase(), url }
}

/** The request's `signal` and legacy `cancelToken`, as one abort source for the queue. */
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
    error: () => cancelToken?.reason ?? new CanceledError(),
  }
}

/**
 * Protects one axios instance: attaches the token to allowed origins, waits while a refresh
 * runs, reports 401s to the queue and replays once. Returns a function that ejects both
 * interceptors.
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
  // CSRF fetch) while the user logs out.
  const checkAtSend = (config: InternalAxiosRequestConfig) => {
    const value = authorizationOf(config)
    const epoch = typeof value === 'string' ? written.get(value) : undefined
    if (epoch === undefined) return
    if (!queue.isLive(epoch)) throw endedSession()
    // The origin is decided again only if something changed the URL since it was decided.
    const decided = config as DecidedConfig
    if (decided[DECIDED_URL] === config.url && decided[DECIDED_BASE] === config.baseURL) return
    if (!mayAttach(config)) config.headers.delete('Authorization')
  }
  const guard = (original: InternalAxiosRequestConfig['adapter']) => {
    const guarded: GuardedAdapter = (config) => {
      try {
        checkAtSend(config)
      } catch (error) {
        return Promise.reject(error)
      }
      return getAdapter(original ?? DEFAULT_ADAPTERS, config)(config)
    }
    guarded[WRAPPED] = original
    return guarded
  }
  const isGuarded = (adapter: unknown) => typeof adapter === 'function' && WRAPPED in adapter
  // Configs built from scratch by an interceptor fall back to the instance's default.
  const defaultAdapter = http.defaults.adapter
  const guarded = guard(defaultAdapter)
  http.defaults.adapter = guarded

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
    if (config.adapter !== undefined && !isGuarded(config.adapter)) {
      config.adapter = guard(config.adapter)
    }
    sentWith.set(config, grant)
    return config
  }

  const authorizeLater = async (config: InternalAxiosRequestConfig) =>
    attach(config, await queue.acquire(describe(config), abortSourceOf(config)))

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
    await queue.rejected(describe(config), grant, abortSourceOf(config))
    const headers = AxiosHeaders.from(config.headers)
    // The request interceptor sets the new token, or none if the session ended meanwhile.
    headers.delete('Authorization')
    replaysSent += 1
    const marker = replaysSent
    replayMarkers.add(marker)
    const replay: TrackedConfig = { ...config, headers, [REPLAY]: marker }
    return http.request(replay)
  }

  const response = http.interceptors.response.use(
    (result) =>
      isAuthFailure(result) ? replayAfterRejection(result.config, () => result) : result,
    (error: unknown) => {
      if (!isAxiosError(error) || !error.response || !isAuthFailure(error.response)) {
        throw error
      }
      return replayAfterRejection(error.config, () => {
        throw error
      })
    },
  )

  return () => {
    http.interceptors.request.eject(request)
    http.interceptors.response.eject(response)
    if (http.defaults.adapter === guarded) http.defaults.adapter = defaultAdapter
  }
}
