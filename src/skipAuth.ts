/** The option `skipAuth` as a type, for wrappers that forward request options. */
export interface SkipAuthOption {
  /** Send this request without the access token and leave its 401s alone. */
  skipAuth?: boolean
}
