/**
 * Redirects followed by hand, where the runtime shows them (Node): fetch keeps every header
 * but `Authorization` on a redirect to another origin, so a DPoP proof would go along, and
 * on one to the same origin the proof would name the URL it left. Browsers hide redirects
 * from `redirect: 'manual'` (an opaque answer), so there fetch follows them itself.
 */

const REDIRECTS = new Set([301, 302, 303, 307, 308])

// Fetch's own limit.
const MAX_REDIRECTS = 20

/** Whether `redirect: 'manual'` shows the redirect (Node), not an opaque answer (browsers). */
export const seesRedirects =
  typeof document === 'undefined' &&
  typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node ===
    'string'

/**
 * Bodies `fetch` reads afresh on every call, so a replay sends the same bytes. A stream
 * (or an async iterable, in Node) is read once: its request cannot be replayed.
 */
export function isReplayable(body: BodyInit): boolean {
  return (
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  )
}

/** One request of a redirect chain. */
export interface Hop {
  url: string
  init: RequestInit
}

/** Headers a change to GET drops with the body, as fetch does (RFC 9110 §15.4). */
const BODY_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
]

/**
 * The request fetch would send after `response` to `hop`, with neither `Authorization` nor
 * `DPoP` (the caller signs it again if it may); `undefined` when fetch would not follow:
 * no redirect, no usable `Location`, or a body that cannot be sent twice.
 */
export function nextHop(hop: Hop, response: Response): Hop | undefined {
  if (!REDIRECTS.has(response.status)) return undefined
  let url: string
  try {
    url = new URL(response.headers.get('location') ?? '', hop.url).href
  } catch {
    return undefined
  }
  if (!/^https?:$/.test(new URL(url).protocol)) return undefined
  const method = (hop.init.method ?? 'GET').toUpperCase()
  const headers = new Headers(hop.init.headers)
  headers.delete('authorization')
  headers.delete('dpop')
  const toGet =
    (response.status === 303 && method !== 'HEAD') ||
    ((response.status === 301 || response.status === 302) && method === 'POST')
  if (toGet) {
    for (const name of BODY_HEADERS) headers.delete(name)
    return { url, init: { ...hop.init, method: 'GET', body: null, headers } }
  }
  const { body } = hop.init
  if (body !== undefined && body !== null && !isReplayable(body)) return undefined
  return { url, init: { ...hop.init, headers } }
}

/**
 * Follows the redirects of `response`, the answer to `first` (sent with
 * `redirect: 'manual'`), as fetch would. Each hop to `first`'s origin is signed again by
 * `sign` (a proof names its URL); once the chain has left that origin, no hop is signed
 * again, as fetch never sends `Authorization` back: the other origin must not choose where
 * the token goes. `send` gets each hop and whether it was signed. Past 20 hops it rejects as
 * fetch does. Resolves with the last answer and the URL it came from.
 */
export async function followRedirects(
  first: Hop,
  response: Response,
  sign: (headers: Headers, method: string, url: string) => Promise<void>,
  send: (hop: Hop, signed: boolean) => Promise<Response>,
): Promise<{ response: Response; url: string }> {
  const origin = new URL(first.url).origin
  let hop = first
  let answer = response
  let left = false
  for (let hops = 0; ; hops += 1) {
    const next = nextHop(hop, answer)
    if (!next) return { response: answer, url: hop.url }
    answer.body?.cancel().catch(() => undefined)
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed: redirect count exceeded')
    left ||= new URL(next.url).origin !== origin
    const headers = new Headers(next.init.headers)
    if (!left) await sign(headers, fetchMethod(next.init.method ?? 'GET'), next.url)
    hop = { url: next.url, init: { ...next.init, headers, redirect: 'manual' } }
    answer = await send(hop, !left)
  }
}

/**
 * The method as fetch sends it: the six standard ones in upper case, any other as written
 * (`patch` goes out as `patch`), so a proof's `htm` names what the server sees.
 */
export function fetchMethod(method: string): string {
  const upper = method.toUpperCase()
  return ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'].includes(upper) ? upper : method
}
