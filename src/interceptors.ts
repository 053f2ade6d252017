import {
  AxiosHeaders,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
  isAxiosError,
} from 'axios'
import type {} from './axiosConfig.js'
import type { Grant, RequestDescription, TokenGate } from './gate.js'

/** Marks a replayed request on its config; axios copies unknown keys into the new config. */
const REPLAYED = 'authMachineReplayed'

type TrackedConfig = InternalAxiosRequestConfig & { [REPLAYED]?: true }

export interface InterceptorOptions {
  http: AxiosInstance
  gate: TokenGate
  ready: Promise<void>
  mayAttach: (config: InternalAxiosRequestConfig) => boolean
  isAuthFailure: (response: AxiosResponse) => boolean
}

function describe(config: InternalAxiosRequestConfig): RequestDescription {
  // The query string is left out: it is the app's data, and the queue is inspectable.
  const url = (config.url ?? '').split('?')[0] ?? ''
  return { method: (config.method ?? 'get').toUpperCase(), url }
}

/**
 * Installs the request and response interceptors on `http` and returns a function that
 * ejects both.
 */
export function installInterceptors(options: InterceptorOptions): () => void {
  const { http, gate, ready, mayAttach, isAuthFailure } = options
  // The generation of the token each request went out with. Keyed by the config object,
  // which axios hands unchanged from the request interceptor to the response.
  const sentWith = new WeakMap<InternalAxiosRequestConfig, number>()

  let restored = false
  void ready.then(() => {
    restored = true
  })

  const attach = (config: InternalAxiosRequestConfig, grant: Grant | null) => {
    if (!grant) return config
    const value = `Bearer ${grant.token}`
    const { headers } = config
    // A plain property write when no Authorization header exists in any spelling: set()
    // normalises names and costs more than the rest of this interceptor.
    if (headers.Authorization === undefined && headers.authorization === undefined) {
      headers.Authorization = value
    } else headers.set('Authorization', value)
    sentWith.set(config, grant.generation)
    return config
  }

  const authorizeLater = async (config: InternalAxiosRequestConfig) => {
    await ready
    return attach(config, await gate.acquire(describe(config), config.signal))
  }

  // Not async: with a usable token the config goes straight on, without extra promise hops
  // (this path is most of the library's per-request cost).
  const request = http.interceptors.request.use((config) => {
    if (config.skipAuth || !mayAttach(config)) return config
    const grant = restored ? gate.tryAcquire() : undefined
    return grant === undefined ? authorizeLater(config) : attach(config, grant)
  })

  async function replayAfterRejection<T>(
    config: TrackedConfig | undefined,
    passThrough: () => T,
  ): Promise<T | AxiosResponse> {
    const generation = config ? sentWith.get(config) : undefined
    // Only requests we authorised can prove the token wrong, and only once.
    if (!config || generation === undefined || config[REPLAYED]) return passThrough()
    await gate.rejected(describe(config), generation, config.signal)
    const headers = AxiosHeaders.from(config.headers)
    // The request interceptor sets the new token, or none if the session ended meanwhile.
    headers.delete('Authorization')
    const replay: TrackedConfig = { ...config, headers, [REPLAYED]: true }
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
  }
}
