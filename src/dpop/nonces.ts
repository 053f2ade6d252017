import { originOf } from './proof.js'

// RFC 9449 §8.1: a nonce is 1*NQCHAR (visible ASCII but `"` and `\`). Anything else, or a
// huge value, is not kept: it would go back out in every proof to that origin.
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,1024}$/

/** How many origins' nonces are remembered; the oldest goes first. */
const MAX_ORIGINS = 64

/**
 * A proof this old (ms) when the server refused it may have aged out of the server's `iat`
 * window while code after the client's held the request: it is made anew, once.
 */
export const STALE_PROOF_MS = 1_000

/** What a DPoP server's `WWW-Authenticate` said about a refused request. */
export type DpopRefusal = 'use_dpop_nonce' | 'invalid_dpop_proof'

/**
 * The DPoP error of a challenge (RFC 9449 §7.1), read from a `WWW-Authenticate` value that
 * may hold several challenges (`Bearer …, DPoP error="use_dpop_nonce"`).
 */
export function dpopRefusalOf(header: string | null | undefined): DpopRefusal | undefined {
  if (!header || !/(^|[\s,])dpop(\s|$)/i.test(header)) return undefined
  const error = /\berror\s*=\s*"?([\w-]+)"?/gi
  for (const match of header.matchAll(error)) {
    const value = match[1]?.toLowerCase()
    if (value === 'use_dpop_nonce' || value === 'invalid_dpop_proof') return value
  }
  return undefined
}

/**
 * A header, as a string, from a fetch `Headers`, an `AxiosHeaders` or a plain object (a
 * custom adapter's, an error's); `name` in lower case, as axios and fetch keep names.
 */
export function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined
  const { get } = headers as { get?: unknown }
  const value =
    typeof get === 'function'
      ? (get as (name: string) => unknown).call(headers, name)
      : (headers as Record<string, unknown>)[name]
  return typeof value === 'string' ? value : undefined
}

/** The `DPoP-Nonce` a response carries, if it is a well-formed one. */
export function nonceOf(header: string | null | undefined): string | undefined {
  return typeof header === 'string' && NONCE.test(header) ? header : undefined
}

/** The last nonce each server (origin) gave, for the proofs sent to it next. */
export function createNonces() {
  const byOrigin = new Map<string, string>()
  return {
    /** The nonce to put in a proof for `url`, if its server gave one. */
    get(url: string): string | undefined {
      const origin = originOf(url)
      return origin === undefined ? undefined : byOrigin.get(origin)
    },
    /** Remembers the `DPoP-Nonce` a response from `url` carried; `true` when it was usable. */
    learn(url: string, header: string | null | undefined): boolean {
      const nonce = nonceOf(header)
      const origin = originOf(url)
      if (nonce === undefined || origin === undefined) return false
      byOrigin.delete(origin)
      if (byOrigin.size >= MAX_ORIGINS) byOrigin.delete(byOrigin.keys().next().value as string)
      byOrigin.set(origin, nonce)
      return true
    },
  }
}

export type Nonces = ReturnType<typeof createNonces>
