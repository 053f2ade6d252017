/**
 * Which URLs may receive the access token: origins (`'https://api.example.com'`), patterns
 * tested against the origin, or a predicate on the full URL.
 *
 * A list only ever matches `http:` and `https:` URLs: `blob:`, `data:` and other schemes get
 * no token, even when their origin is listed. A predicate sees every URL and decides alone;
 * only a return value of exactly `true` attaches the token.
 */
export type AttachTo = ReadonlyArray<string | RegExp> | ((url: URL) => boolean)

/**
 * Decides whether a request may carry the token, from the URL strings its transport may
 * request and the bases a relative one may resolve against: every pairing must be allowed.
 * `undefined` in `urls` means "the transport fails before sending", which gets no token.
 */
export type OriginPolicy = (
  urls: ReadonlyArray<string | undefined>,
  bases: ReadonlyArray<string | undefined>,
) => boolean

/**
 * What a relative URL resolves against in this realm. XHR and fetch resolve against the
 * document's base URL, a DOM shim's Node adapter against `location.href`, and a worker
 * against its own location; where these differ, every one must allow the token. Node has
 * none: `[undefined]`, where a relative URL fails to parse (and gets no token).
 */
export function pageBases(): Array<string | undefined> {
  const page = typeof location === 'undefined' ? undefined : location.href
  const documentBase = typeof document === 'undefined' ? undefined : document.baseURI
  if (documentBase !== undefined && page !== undefined && documentBase !== page) {
    return [documentBase, page]
  }
  return [documentBase ?? page]
}

/**
 * Whether a response from `final` (after redirects) answered the request sent to `sent`:
 * fetch and axios drop `Authorization` on a redirect to another origin, so a 401 from there
 * never saw the token. `sent` may be relative (resolved against `base`).
 */
export function sameOrigin(final: string, sent: string, base?: string): boolean {
  try {
    return new URL(final).origin === new URL(sent, base).origin
  } catch {
    return false
  }
}

function isHttp(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:'
}

/**
 * The default allow-list: the origin of `baseURL` when it is absolute (an axios instance's),
 * and the page's own origin in a browser. Anything else must be listed in `attachTo`.
 */
export function defaultAttachTo(baseURL?: string): string[] {
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
 * The origin policy for `attachTo`. Every URL is resolved by the WHATWG URL parser, as the
 * browser (or Node) resolves it: whether a "relative" URL stays on the page's origin
 * depends on its characters (`/\host`, tabs, newlines), not on a prefix. A URL that cannot
 * be resolved gets no token.
 */
export function createOriginCheck(attachTo: AttachTo): OriginPolicy {
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
  return (urls, bases) => {
    for (const full of urls) {
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
