import type { InternalAxiosRequestConfig } from 'axios'

/**
 * Which URLs may receive the access token: origins (`'https://api.example.com'`), patterns
 * tested against the origin, or a predicate on the full URL.
 */
export type AttachTo = ReadonlyArray<string | RegExp> | ((url: URL) => boolean)

// The same test axios uses to decide that `url` ignores `baseURL`.
const ABSOLUTE_URL = /^([a-z][a-z\d+\-.]*:)?\/\//i

function pageUrl(): string | undefined {
  return typeof location === 'undefined' ? undefined : location.href
}

/** The URL as axios joins it, before resolution against the page. */
function joinedUrl(config: InternalAxiosRequestConfig): string {
  const path = config.url ?? ''
  const base = config.baseURL
  return ABSOLUTE_URL.test(path) || !base
    ? path
    : `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}

/**
 * The default allow-list: the origin of the instance's `baseURL` when it is absolute, and
 * the page's own origin in a browser. Anything else must be listed in `attachTo`.
 */
export function defaultAttachTo(baseURL: string | undefined): AttachTo {
  const origins: string[] = []
  const page = pageUrl()
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

/** Decides whether a request may carry the token. Relative URLs outside a browser pass. */
export function createOriginCheck(attachTo: AttachTo) {
  const entries =
    typeof attachTo === 'function'
      ? []
      : attachTo.map((entry) => (typeof entry === 'string' ? new URL(entry).origin : entry))
  // With a list, a relative URL's fate depends on its baseURL only: decide once per baseURL.
  const byBase = new Map<string, boolean>()
  const check = (config: InternalAxiosRequestConfig): boolean => {
    const joined = joinedUrl(config)
    let url: URL
    try {
      url = new URL(joined, pageUrl())
    } catch {
      // Relative with nothing to resolve against stays home; an unparsable absolute URL doesn't.
      return !ABSOLUTE_URL.test(joined)
    }
    if (typeof attachTo === 'function') return attachTo(url)
    return entries.some((entry) =>
      typeof entry === 'string' ? entry === url.origin : entry.test(url.origin),
    )
  }
  if (typeof attachTo === 'function') return check
  return (config: InternalAxiosRequestConfig): boolean => {
    if (ABSOLUTE_URL.test(config.url ?? '')) return check(config)
    const base = config.baseURL ?? ''
    let allowed = byBase.get(base)
    if (allowed === undefined) {
      allowed = check(config)
      // Bounded: apps use a handful of baseURLs; anything beyond is simply not cached.
      if (byBase.size < 64) byBase.set(base, allowed)
    }
    return allowed
  }
}
