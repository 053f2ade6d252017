import type { InternalAxiosRequestConfig } from 'axios'

/**
 * Which URLs may receive the access token: origins (`'https://api.example.com'`), patterns
 * tested against the origin, or a predicate on the full URL.
 *
 * A list only ever matches `http:` and `https:` URLs: `blob:`, `data:` and other schemes get
 * no token, even when their origin is listed. A predicate sees every URL and decides alone;
 * only a return value of exactly `true` attaches the token.
 */
export type AttachTo = ReadonlyArray<string | RegExp> | ((url: URL) => boolean)

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
 * What a relative URL resolves against. XHR and fetch resolve against the document's base
 * URL, axios' Node adapter under a DOM shim against `location.href`, and a worker against
 * its own location; where these differ, every one must allow the token. Without any (Node),
 * axios' http adapter parses with no base, so a relative URL fails, unless `socketPath` is
 * set, where it uses `http://localhost`.
 */
function resolutionBases(config: InternalAxiosRequestConfig): Array<string | undefined> {
  const page = typeof location === 'undefined' ? undefined : location.href
  const documentBase = typeof document === 'undefined' ? undefined : document.baseURI
  if (documentBase !== undefined && page !== undefined && documentBase !== page) {
    return [documentBase, page]
  }
  const base = documentBase ?? page
  if (base !== undefined) return [base]
  return [config.socketPath ? 'http://localhost' : undefined]
}

function isHttp(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:'
}

/**
 * The default allow-list: the origin of the instance's `baseURL` when it is absolute, and
 * the page's own origin in a browser. Anything else must be listed in `attachTo`.
 */
export function defaultAttachTo(baseURL: string | undefined): AttachTo {
  const origins: string[] = []
  const page = typeof location === 'undefined' ? undefined : location.href
  if (baseURL) {
    try {
      origins.push(new URL(baseURL, page).origin)
    } catch {
      // A relative baseURL without a page to resolve it against adds no origin.
    }
  }
  if (page) origins.push(new URL(page).origin)
  return origins
}

/**
 * Decides whether a request may carry the token, from the URL the transport will actually
 * request: axios' full path, resolved by the WHATWG URL parser as the browser (or Node)
 * resolves it. Every request is resolved on its own: whether a "relative" URL stays on the
 * page's origin depends on its characters (`/\host`, tabs, newlines), not only on `baseURL`.
 * A URL that cannot be resolved gets no token.
 */
export function createOriginCheck(attachTo: AttachTo) {
  const allows = typeof attachTo === 'function' ? predicateCheck(attachTo) : listCheck(attachTo)
  // A list's answer depends only on the exact strings parsed, so it is remembered per pair
  // (never per baseURL alone: that was a token sent to another origin). A predicate may
  // look at more than the origin, so it is asked every time.
  const remembered = typeof attachTo === 'function' ? undefined : new Map<string, boolean>()
  const decide = (full: string, base: string | undefined): boolean => {
    const key = remembered && `${base ?? ''}\n${full}`
    const known = key === undefined ? undefined : remembered?.get(key)
    if (known !== undefined) return known
    let allowed: boolean
    try {
      allowed = allows(new URL(full, base))
    } catch {
      // The transport fails on it too; a token has no business on a request that fails.
      allowed = false
    }
    if (key !== undefined && remembered) {
      if (remembered.size >= 512) remembered.clear()
      remembered.set(key, allowed)
    }
    return allowed
  }
  return (config: InternalAxiosRequestConfig): boolean => {
    const bases = resolutionBases(config)
    for (const full of fullPaths(config)) {
      if (full === undefined) return false
      for (const base of bases) if (!decide(full, base)) return false
    }
    return true
  }
}

function predicateCheck(predicate: (url: URL) => boolean): (url: URL) => boolean {
  // Strictly `true`: a truthy mistake (a string, a promise) must not send the token.
  return (url) => predicate(url) === true
}

function listCheck(list: ReadonlyArray<string | RegExp>): (url: URL) => boolean {
  const origins = new Set<string>()
  const patterns: RegExp[] = []
  for (const entry of list) {
    if (typeof entry === 'string') origins.add(new URL(entry).origin)
    // Without `g`/`y`: their `lastIndex` would make every other test() fail.
    else patterns.push(new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')))
  }
  return (url) => {
    // A `blob:` URL carries its creator's origin, yet its request never reaches that server.
    if (!isHttp(url)) return false
    const { origin } = url
    return origins.has(origin) || patterns.some((pattern) => pattern.test(origin))
  }
}
