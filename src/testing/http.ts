import type { IncomingMessage, ServerResponse } from 'node:http'

// Generous for JSON credentials, small enough that a runaway client cannot exhaust memory.
const MAX_BODY_BYTES = 1024 * 1024

/** Thrown by {@link readBody} when a body exceeds the size limit. */
export class BodyTooLargeError extends Error {
  /** Creates the error. */
  constructor() {
    super(`request body larger than ${MAX_BODY_BYTES} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

/** Reads the whole request body as UTF-8. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLargeError())
        req.resume()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
    // Settles the read when the client goes away mid-body (a no-op once 'end' resolved it).
    req.on('close', () => reject(new Error('request closed before its body ended')))
  })
}

/** Parses `raw` as a JSON object; anything else (empty, invalid, array, scalar) is `null`. */
export function parseJsonObject(raw: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(raw)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null
  } catch {
    return null
  }
}

/** Splits a request target into path and query (the raw text after `?`, `''` if none). */
export function splitTarget(target: string | undefined): { path: string; query: string } {
  const raw = target ?? '/'
  const at = raw.indexOf('?')
  return at === -1 ? { path: raw, query: '' } : { path: raw.slice(0, at), query: raw.slice(at + 1) }
}

/**
 * Sets the CORS headers every response carries. Echoing the origin (rather than `*`)
 * keeps the door open for credentialed requests from browser tests on another port.
 * With `dpop`, browser code may also read `DPoP-Nonce`.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, dpop = false): void {
  const origin = req.headers.origin
  res.setHeader('access-control-allow-origin', origin ?? '*')
  if (origin) res.setHeader('vary', 'Origin')
  // Without this, browser code cannot read why a token was rejected.
  const exposed = 'www-authenticate, retry-after'
  res.setHeader('access-control-expose-headers', dpop ? `${exposed}, dpop-nonce` : exposed)
}

/** Answers a CORS preflight; with `dpop`, the `DPoP` request header is allowed too. */
export function sendPreflight(res: ServerResponse, dpop = false): void {
  const allowed = 'authorization, content-type'
  res.setHeader('access-control-allow-headers', dpop ? `${allowed}, dpop` : allowed)
  res.setHeader('access-control-allow-methods', 'GET,POST,PUT,PATCH,DELETE,OPTIONS')
  res.setHeader('access-control-max-age', '600')
  sendEmpty(res, 204)
}

/** Sends `body` as JSON. Token responses must never be cached, so nothing is. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendRaw(res, status, JSON.stringify(body), {
    'content-type': 'application/json; charset=utf-8',
    ...headers,
  })
}

/** Sends a body verbatim with the given headers. */
export function sendRaw(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { 'cache-control': 'no-store', ...headers })
  res.end(body)
}

/** Sends a response without a body. */
export function sendEmpty(res: ServerResponse, status: number): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { 'cache-control': 'no-store' })
  res.end()
}
