import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto'

// DPoP proof verification (RFC 9449 §4.3), stateless: signature, header and claims. Replay
// and nonce policy are the server's business (see dpop-policy.ts).

/** A P-256 public key as a JWK, the only kind of key the test server accepts in proofs. */
export interface EcPublicJwk {
  kty: 'EC'
  crv: 'P-256'
  /** Base64url of the 32-byte x coordinate. */
  x: string
  /** Base64url of the 32-byte y coordinate. */
  y: string
}

/** What a proof must match: the request it came with. */
export interface DpopProofExpectations {
  /** The request method, upper case (the `htm` claim). */
  method: string
  /** The request's absolute URL (the `htu` claim); query and fragment are ignored. */
  url: string
  /** The server's clock, in seconds. */
  now: number
  /** Accepted `|now − iat|`, in seconds. */
  iatWindow: number
  /** The access token presented with the proof; when given, `ath` must be its hash. */
  accessToken?: string
}

/** A proof whose signature, header and claims were verified. */
export interface VerifiedDpopProof {
  /** RFC 7638 thumbprint of the proof's public key. */
  jkt: string
  /** The proof's unique id, for replay detection. */
  jti: string
  /** The `nonce` claim, when present. */
  nonce?: string
}

/** Outcome of {@link verifyDpopProof}; `reason` is safe to send back (it never holds a token). */
export type DpopProofResult = { ok: true; proof: VerifiedDpopProof } | { ok: false; reason: string }

const BASE64URL = /^[A-Za-z0-9_-]+$/

/** Decodes base64url, or `undefined` when `value` is not canonical base64url. */
function decodeBase64url(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !BASE64URL.test(value)) return undefined
  const bytes = Buffer.from(value, 'base64url')
  // Re-encoding refuses non-canonical spellings that decode to the same bytes.
  return bytes.toString('base64url') === value ? bytes : undefined
}

function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeBase64url(segment)
  if (!bytes) return undefined
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The RFC 7638 thumbprint of a P-256 public key: SHA-256 of `{"crv","kty","x","y"}` (in that
 * order, no whitespace), base64url. This is the `jkt` a DPoP-bound token carries in
 * `cnf.jkt`; pass it to {@link TestAuthServer.login} to issue a bound session without HTTP.
 *
 * @throws TypeError when `jwk` is not an EC P-256 public key.
 */
export function jwkThumbprint(jwk: { kty?: string; crv?: string; x?: string; y?: string }): string {
  const key = ecPublicJwk(jwk)
  if (typeof key === 'string') throw new TypeError(key)
  const canonical = JSON.stringify({ crv: key.crv, kty: key.kty, x: key.x, y: key.y })
  return createHash('sha256').update(canonical).digest('base64url')
}

/** The `ath` of `accessToken`: base64url of the SHA-256 of its ASCII bytes. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url')
}

/** Checks that `value` is a P-256 public JWK; returns it trimmed to its public members, or why not. */
function ecPublicJwk(value: unknown): EcPublicJwk | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'jwk must be a JSON object'
  }
  const jwk = value as Record<string, unknown>
  if (jwk.d !== undefined) return 'jwk must not contain private key members'
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') return 'jwk must be an EC P-256 key'
  if (decodeBase64url(jwk.x)?.length !== 32 || decodeBase64url(jwk.y)?.length !== 32) {
    return 'jwk x and y must be 32-byte base64url coordinates'
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string }
}

/**
 * `scheme://host[:port]/path` of an http(s) URL: RFC 9449 §4.3 compares `htu` after
 * RFC 3986 normalisation (lower-case scheme and host, default port dropped, dot segments
 * resolved) and without query or fragment. `undefined` for anything else.
 */
export function htuKey(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  if (url.username !== '' || url.password !== '') return undefined
  return `${url.protocol}//${url.host}${url.pathname}`
}

function importKey(jwk: EcPublicJwk): KeyObject | undefined {
  try {
    return createPublicKey({ key: { ...jwk }, format: 'jwk' })
  } catch {
    return undefined
  }
}

const refuse = (reason: string): DpopProofResult => ({ ok: false, reason })

/**
 * Verifies a DPoP proof (RFC 9449 §4.3) against the request it came with: a compact JWS
 * with header `typ: 'dpop+jwt'`, `alg: 'ES256'` (nothing else: no `none`, no HMAC) and a
 * public P-256 `jwk` that verifies the signature; claims `htm`, `htu`, `iat` within the
 * window, a `jti`, and `ath` when an access token is presented. Does not look at `jti`
 * reuse or at the nonce, which need the server's state.
 */
export function verifyDpopProof(
  value: string | undefined,
  expected: DpopProofExpectations,
): DpopProofResult {
  if (value === undefined || value === '') return refuse('DPoP proof missing')
  const parts = value.split('.')
  if (parts.length !== 3) return refuse('DPoP proof must be a compact JWS')
  const [headerPart = '', payloadPart = '', signaturePart = ''] = parts
  const header = decodeJsonSegment(headerPart)
  const claims = decodeJsonSegment(payloadPart)
  if (!header || !claims) return refuse('DPoP proof must be a JWT')
  if (header.typ !== 'dpop+jwt') return refuse('DPoP proof typ must be dpop+jwt')
  if (header.alg !== 'ES256') return refuse('DPoP proof alg must be ES256')
  if (header.crit !== undefined) return refuse('DPoP proof crit is not supported')
  const jwk = ecPublicJwk(header.jwk)
  if (typeof jwk === 'string') return refuse(`DPoP proof ${jwk}`)
  const key = importKey(jwk)
  if (!key) return refuse('DPoP proof jwk is not a valid P-256 public key')
  const signature = decodeBase64url(signaturePart)
  const signingInput = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii')
  if (
    signature?.length !== 64 ||
    !verify('sha256', signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature)
  ) {
    return refuse('DPoP proof signature is invalid')
  }
  if (claims.htm !== expected.method) return refuse('DPoP proof htm does not match the method')
  const htu = htuKey(claims.htu)
  if (htu === undefined || htu !== htuKey(expected.url)) {
    return refuse('DPoP proof htu does not match the URL')
  }
  const { iat, jti, nonce } = claims
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return refuse('DPoP proof iat missing')
  if (Math.abs(expected.now - iat) > expected.iatWindow) {
    return refuse('DPoP proof iat is outside the accepted window')
  }
  if (typeof jti !== 'string' || jti === '') return refuse('DPoP proof jti missing')
  if (expected.accessToken !== undefined && claims.ath !== accessTokenHash(expected.accessToken)) {
    return refuse('DPoP proof ath does not match the access token')
  }
  if (nonce !== undefined && typeof nonce !== 'string') {
    return refuse('DPoP proof nonce must be a string')
  }
  const proof: VerifiedDpopProof = { jkt: jwkThumbprint(jwk), jti }
  if (nonce !== undefined) proof.nonce = nonce
  return { ok: true, proof }
}
