import axios, {
  AxiosHeaders,
  type AxiosRequestTransformer,
  type InternalAxiosRequestConfig,
  isAxiosError,
  isCancel,
} from 'axios'
import {
  type AuthClient,
  type AuthClientOptions,
  createAuthClient as createFetchClient,
} from '../../src/fetch.js'
import { createAuthClient as createAxiosClient } from '../../src/index.js'
import type { Transport } from '../helpers.js'

export type { Transport } from '../helpers.js'

/** Every transport the model and the properties run on. */
export const TRANSPORTS: readonly Transport[] = ['axios', 'fetch']

/**
 * How a protected call ended, alike on both transports: an HTTP status (axios rejects a
 * 401 with an AxiosError, fetch resolves it: both are the status here), or the error the
 * session or an abort rejected it with.
 */
export type Outcome = { status: number } | { error: unknown }

/** The client options both transports take as they are (each adds its own origin rules). */
export type SharedOptions = Omit<AuthClientOptions, 'isAuthFailure' | 'fetch' | 'attachTo'>

/** What leaves for the server, seen after the client is done with the request. */
export type SentObserver = (path: string, authorization: string | null) => void

export interface TransportClient {
  readonly transport: Transport
  /** The client; its axios-only `attach` is not used here. */
  readonly auth: AuthClient
  /** A protected GET of `path` (relative to the server). Never rejects: see {@link Outcome}. */
  get(path: string, signal: AbortSignal): Promise<Outcome>
  /**
   * Sends the last request that ended again when called, as a retry library does, at
   * another `path`: axios' `config` of the last response or error, fetch's `init` of the
   * last call that settled, with its very `headers` object. `undefined` while none ended.
   */
  resender(): ((path: string, signal: AbortSignal) => Promise<Outcome>) | undefined
  /** The path a queue entry names: fetch queues the absolute URL, axios the config's. */
  pathOf(url: string): string
  /** Whether `error` is how this transport rejects a request aborted through `signal`. */
  isAbort(error: unknown, signal: AbortSignal): boolean
}

/**
 * The client on one transport, against the token server at `serverUrl`: an axios instance
 * given as `http`, or `auth.fetch` from the fetch-only entry (`attachTo` the server). With
 * `onSent`, every request is observed as it leaves: axios runs an interceptor registered
 * before the client's after it; fetch goes through the `fetch` option.
 */
export function createTransportClient(
  transport: Transport,
  serverUrl: string,
  options: SharedOptions,
  onSent?: SentObserver,
): TransportClient {
  const pathOf = (url: string) => (url.startsWith(serverUrl) ? url.slice(serverUrl.length) : url)
  return transport === 'axios'
    ? axiosClient(serverUrl, options, onSent, pathOf)
    : fetchClient(serverUrl, options, onSent, pathOf)
}

function axiosClient(
  serverUrl: string,
  options: SharedOptions,
  onSent: SentObserver | undefined,
  pathOf: (url: string) => string,
): TransportClient {
  const http = axios.create({ baseURL: serverUrl })
  if (onSent) {
    // The token is written by the client's send-time check, which it keeps last in each
    // config's transformers. This interceptor, registered before the client's, runs after it
    // and appends an observer behind that check: it sees the headers as they leave.
    const observe: AxiosRequestTransformer = function (this: InternalAxiosRequestConfig, data) {
      const authorization = AxiosHeaders.from(this.headers).get('Authorization')
      onSent(String(this.url ?? ''), typeof authorization === 'string' ? authorization : null)
      return data
    }
    http.interceptors.request.use((config) => {
      const others = asArray(config.transformRequest).filter((fn) => fn !== observe)
      config.transformRequest = [...others, observe]
      return config
    })
  }
  const auth = createAxiosClient({ http, ...options })
  let lastConfig: InternalAxiosRequestConfig | undefined
  const outcome = (sent: Promise<{ status: number; config: InternalAxiosRequestConfig }>) =>
    sent.then(
      (response): Outcome => {
        lastConfig = response.config
        return { status: response.status }
      },
      (error: unknown): Outcome => {
        if (!isAxiosError(error)) return { error }
        if (error.config) lastConfig = error.config
        return error.response ? { status: error.response.status } : { error }
      },
    )
  return {
    transport: 'axios',
    auth,
    get: (path, signal) => outcome(http.get(path, { signal })),
    resender() {
      const config = lastConfig
      return config && ((path, signal) => outcome(http.request({ ...config, url: path, signal })))
    },
    pathOf,
    isAbort: (error) => isCancel(error),
  }
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

const platformFetch = globalThis.fetch
let fetchObserver: ((input: RequestInfo | URL, init?: RequestInit) => void) | undefined

/**
 * Observes every fetch as it leaves, through the global `fetch` the client calls when it
 * has no `fetch` option of its own: with one, the client would abort requests still in it
 * when the session ends, and the path under test would not be the platform's.
 */
function observeFetch(onSent: SentObserver, pathOf: (url: string) => string) {
  fetchObserver = (input, init) => {
    const request = input instanceof Request ? input : undefined
    const headers = new Headers(init?.headers ?? request?.headers)
    onSent(pathOf(request ? request.url : String(input)), headers.get('Authorization'))
  }
  globalThis.fetch = (input, init) => {
    fetchObserver?.(input, init)
    return platformFetch(input, init)
  }
}

function fetchClient(
  serverUrl: string,
  options: SharedOptions,
  onSent: SentObserver | undefined,
  pathOf: (url: string) => string,
): TransportClient {
  if (onSent) observeFetch(onSent, pathOf)
  const auth = createFetchClient({ attachTo: [serverUrl], ...options })
  let lastInit: RequestInit | undefined
  const outcome = async (init: RequestInit, sent: Promise<Response>): Promise<Outcome> => {
    try {
      const response = await sent
      // Read to the end, so the connection is free and the server counts the call done.
      await response.arrayBuffer()
      return { status: response.status }
    } catch (error) {
      return { error }
    } finally {
      lastInit = init
    }
  }
  const get = (path: string, init: RequestInit) =>
    outcome(init, auth.fetch(`${serverUrl}${path}`, init))
  return {
    transport: 'fetch',
    auth,
    get: (path, signal) => get(path, { headers: new Headers(), signal }),
    resender() {
      const init = lastInit
      return init && ((path, signal) => get(path, { ...init, signal }))
    },
    pathOf,
    isAbort: (error, signal) => signal.aborted && error === signal.reason,
  }
}
