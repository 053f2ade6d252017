/**
 * DPoP proofs (RFC 9449 §4): a compact JWS, signed with the session's ES256 key, that binds
 * one request (method and URL) to the key the tokens were issued for.
 */

import { redactUrl } from '../queue.js'

const encoder = new TextEncoder()

/** base64url without padding, of bytes or of a string's UTF-8. */
export function base64url(input: Uint8Array | string): string {
  const bytes = typeof input === 'string' ? encoder.encode(input) : input
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

async function sha256(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text))))
}

/** The public half of an ES256 key, as the proof's `jwk` header carries it. */
export interface PublicJwk {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
}

/** The public JWK of `key`, with only the members RFC 7638 hashes (no `d`, ever). */
export async function publicJwkOf(key: CryptoKey): Promise<PublicJwk> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', key)
  if (kty !== 'EC' || crv !== 'P-256' || !x || !y) {
    throw new TypeError('The DPoP key must be an ECDSA P-256 key (ES256).')
  }
  return { kty, crv, x, y }
}

/** RFC 7638 JWK SHA-256 thumbprint: what a bound token's `cnf.jkt` holds. */
export function thumbprintOf(jwk: PublicJwk): Promise<string> {
  return sha256(`{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`)
}

/** `ath`: the hash of the access token a resource request carries. */
export function accessTokenHash(token: string): Promise<string> {
  return sha256(token)
}

/**
 * `htu`: the request's URL without query and fragment (RFC 9449 §4.2), as the URL parser
 * normalises it. Relative URLs resolve against `base`; `undefined` when it cannot be parsed.
 */
export function htuOf(url: string | URL, base?: string): string | undefined {
  try {
    // Parsed first: a relative URL with no base has no `htu`.
    return redactUrl(new URL(url, base).href)
  } catch {
    return undefined
  }
}

/** The origin a nonce belongs to (RFC 9449 §8: nonces are per server). */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}

/** One signing key with what every proof repeats, computed once. */
export interface ProofKey {
  privateKey: CryptoKey
  /** The encoded protected header: typ, alg and the public JWK. */
  header: string
  /** The JWK thumbprint (`cnf.jkt` of the tokens bound to this key). */
  jkt: string
}

/** Prepares `keyPair` for signing proofs. */
export async function proofKeyOf(keyPair: CryptoKeyPair): Promise<ProofKey> {
  const jwk = await publicJwkOf(keyPair.publicKey)
  return {
    privateKey: keyPair.privateKey,
    header: base64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk })),
    jkt: await thumbprintOf(jwk),
  }
}

/** What one proof asserts. */
export interface ProofClaims {
  htm: string
  htu: string
  /** Seconds since the epoch. */
  iat: number
  /** `ath`, for requests that carry an access token. */
  ath?: string | undefined
  nonce?: string | undefined
}

/** Signs one proof; every call has its own random `jti`. */
export async function signProof(key: ProofKey, claims: ProofClaims): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: claims.htm,
    htu: claims.htu,
    iat: claims.iat,
  }
  if (claims.ath !== undefined) payload.ath = claims.ath
  if (claims.nonce !== undefined) payload.nonce = claims.nonce
  const input = `${key.header}.${base64url(JSON.stringify(payload))}`
  // WebCrypto's ECDSA signature is r‖s (IEEE P1363), exactly what JWS ES256 wants.
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    encoder.encode(input),
  )
  return `${input}.${base64url(new Uint8Array(signature))}`
}
