import type { AxiosInstance, AxiosResponse } from 'axios'
import {
  createClientCore,
  type AuthClient as FetchClient,
  type AuthClientOptions as FetchClientOptions,
} from './client.js'
import { type AttachTo, createOriginCheck, defaultAttachTo } from './origin.js'
import { attachAxios } from './transports/axios.js'
import { axiosMayAttach } from './transports/axiosUrl.js'

/** A response as `isAuthFailure` sees it: axios' for attached instances, fetch's for `auth.fetch`. */
export type AuthFailureResponse = AxiosResponse | Response

/** Options of {@link createAuthClient}. Durations are in milliseconds. */
export interface AuthClientOptions extends Omit<FetchClientOptions, 'isAuthFailure'> {
  /**
   * An axios instance to protect, as `auth.attach(http)` would; its `baseURL`'s origin
   * also joins the default `attachTo` of `auth.fetch`.
   */
  http?: AxiosInstance
  /**
   * Whether a response means "this token was not accepted", checked on error and success
   * responses, for backends that answer 200 with `{ code: 401 }`. May be async. An axios
   * response (`response.data`) for attached instances, a fetch `Response` for `auth.fetch`
   * (a clone: reading its body leaves the caller's intact).
   * Default: `response.status === 401`.
   */
  isAuthFailure?: (response: AuthFailureResponse) => boolean | Promise<boolean>
}

/** Options of {@link AuthClient.attach}, for one axios instance. */
export interface AttachOptions {
  /**
   * Where this instance may send the token. Default: the client's `attachTo`, or else the
   * origin of the instance's `baseURL` (and the page's origin in a browser).
   */
  attachTo?: AttachTo
  /** Overrides the client's `isAuthFailure` for this instance. */
  isAuthFailure?: (response: AxiosResponse) => boolean | Promise<boolean>
}

/** A client created by {@link createAuthClient}: `auth.fetch` and any number of axios instances. */
export interface AuthClient extends FetchClient {
  /**
   * Protects an axios instance with this client's session: its requests share the one
   * refresh with `auth.fetch` and every other attached instance. Returns `detach()`, which
   * ejects the interceptors (requests already waiting still settle). Attaching the same
   * instance twice throws.
   */
  attach(http: AxiosInstance, options?: AttachOptions): () => void
}

const isStatus401 = (response: AuthFailureResponse) => response.status === 401

/**
 * Keeps a user signed in: attaches the access token to allowed origins, refreshes it once
 * for every concurrent request of every attached client, replays what waited, and reports
 * the end of a session as typed errors. Works with `auth.fetch`, `http` (an axios
 * instance) and `auth.attach(instance)`; axios itself is never imported.
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const { http, isAuthFailure = isStatus401, ...rest } = options
  const core = createClientCore(
    { ...rest, ...(options.isAuthFailure ? { isAuthFailure } : {}) },
    { baseURL: http?.defaults.baseURL },
  )
  const attached = new WeakSet<AxiosInstance>()

  const attach = (instance: AxiosInstance, own: AttachOptions = {}) => {
    if (attached.has(instance)) {
      throw new TypeError('auth-machine: this axios instance is already attached to the client.')
    }
    const attachTo = own.attachTo ?? core.attachTo ?? defaultAttachTo(instance.defaults.baseURL)
    if (Array.isArray(attachTo) && attachTo.length === 0) {
      core.warn(
        'no origin may receive the token from this axios instance: pass `attachTo`, or give it an absolute `baseURL`.',
      )
    }
    const policy = createOriginCheck(attachTo)
    const eject = attachAxios({
      http: instance,
      queue: core.queue,
      mayAttach: axiosMayAttach(policy),
      isAuthFailure: own.isAuthFailure ?? isAuthFailure,
      dpop: core.dpop,
    })
    attached.add(instance)
    let forget: () => unknown = () => undefined
    const detach = () => {
      if (!attached.delete(instance)) return
      forget()
      eject()
    }
    forget = core.onDispose(detach)
    return detach
  }

  if (http) attach(http)
  return { ...core.client, attach }
}
