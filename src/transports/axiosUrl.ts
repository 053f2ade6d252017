import type { InternalAxiosRequestConfig } from 'axios'
import { type OriginPolicy, pageBases } from '../origin.js'

// axios' isAbsoluteURL: `scheme://` or `//` at the very start of the raw string. Nothing
// else counts, which is why `/\evil.example` is "relative" to axios but not to a browser.
const AXIOS_ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i
// axios' buildFullPath throws for `http:x` and `http:/x` (after WHATWG preprocessing).
const MALFORMED_HTTP = /^https?:(?!\/\/)/i
// The WHATWG parser removes every tab and newline before parsing (and leading C0 controls
// and spaces, skipped below by char code); axios applies both before its protocol check.
const TABS_NEWLINES = /[\t\n\r]/g

function isMalformedHttp(url: string): boolean {
  let start = 0
  while (start < url.length && url.charCodeAt(start) <= 0x20) start += 1
  return MALFORMED_HTTP.test(url.slice(start).replace(TABS_NEWLINES, ''))
}

/** axios' combineURLs; undefined where axios would throw (the request then never leaves). */
function combine(baseURL: unknown, url: unknown): string | undefined {
  if (typeof baseURL !== 'string' || isMalformedHttp(baseURL)) return undefined
  if (!url) return baseURL
  if (typeof url !== 'string') return undefined
  return `${baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`
}

/**
 * The strings axios may hand the transport for this config (its buildFullPath; `params` are
 * left out: appended after `?`, they never change the origin). Usually one. With
 * `allowAbsoluteUrls: false` and an absolute URL both readings are returned, since an axios
 * older than that option sends the absolute URL as it is. `undefined` entries stand for
 * "axios throws": no request leaves.
 */
function fullPaths(config: InternalAxiosRequestConfig): Array<string | undefined> {
  const { url, baseURL } = config
  if (typeof url === 'string' && isMalformedHttp(url)) return [undefined]
  // Transports stringify what they get: a missing url is the relative path "undefined".
  if (!baseURL) return [String(url)]
  if (typeof url !== 'string' || !AXIOS_ABSOLUTE.test(url)) return [combine(baseURL, url)]
  return config.allowAbsoluteUrls === false ? [combine(baseURL, url), url] : [url]
}

/**
 * Where axios resolves a relative URL: as the page does, and without a page (Node) nowhere
 * (its http adapter fails), unless `socketPath` is set, where it uses `http://localhost`.
 */
function resolutionBases(config: InternalAxiosRequestConfig): Array<string | undefined> {
  const bases = pageBases()
  if (bases[0] === undefined && config.socketPath) return ['http://localhost']
  return bases
}

/** Whether `config` may carry the token, from the URL axios will actually request. */
export function axiosMayAttach(policy: OriginPolicy) {
  return (config: InternalAxiosRequestConfig): boolean =>
    policy(fullPaths(config), resolutionBases(config))
}

/** The URL axios requests for `config`, as its adapter resolves it; undefined if it fails. */
export function axiosUrl(config: InternalAxiosRequestConfig): string | undefined {
  const [full] = fullPaths(config)
  if (full === undefined) return undefined
  try {
    return new URL(full, resolutionBases(config)[0]).href
  } catch {
    return undefined
  }
}
