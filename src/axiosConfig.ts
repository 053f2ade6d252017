/**
 * The per-request option this library adds to axios. Kept in a module of its own that the
 * package entry re-exports, so the augmentation reaches every user's type-checker.
 */
declare module 'axios' {
  interface AxiosRequestConfig {
    /** Send this request without the access token and leave its 401s alone. */
    skipAuth?: boolean
  }
}

export type { SkipAuthOption } from './skipAuth.js'
