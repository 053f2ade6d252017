import { randomBytes } from 'node:crypto'
import { verifyDpopProof } from './dpop.js'
import type { TestDpopOptions } from './types.js'

/** Where a proof is presented: a token-issuing route or a protected resource. */
export type DpopEndpoint = 'token' | 'resource'

/** What a proof is checked against, besides the server's state. */
export interface DpopRequest {
  /** Token endpoint or protected resource: decides whether a nonce is required. */
  endpoint: DpopEndpoint
  /** The `DPoP` header as received (a repeated header is refused). */
  proof: string | string[] | undefined
  /** Request method, upper case. */
  method: string
  /** The request's absolute URL on the server. */
  url: string
  /** Resource requests: the access token, whose hash `ath` must be. */
  accessToken?: string
  /** Resource requests: the thumbprint the token is bound to (`cnf.jkt`). */
  boundJkt?: string
}

/** The verdict on a proof; refusals carry a description that never holds a token. */
export type DpopVerdict =
  | { ok: true; jkt: string }
  | { ok: false; error: 'invalid_dpop_proof'; description: string; replay: boolean }
  | { ok: false; error: 'use_dpop_nonce'; description: string; nonce: string }

const NONCE_MODES: readonly unknown[] = [false, 'resource', 'token', 'both']

// Enough for any test run; the oldest ids go first once it is full.
const MAX_SEEN_JTIS = 10_000

function newNonce(): string {
  return randomBytes(16).toString('base64url')
}

/**
 * The server's DPoP state and rules: which endpoints need a nonce, the current nonce, and
 * the `jti`s already used. A `jti` is remembered once its proof is accepted, so a proof
 * turned away (for its nonce, say) does not use its id up.
 */
export class DpopPolicy {
  readonly #now: () => number
  readonly #nonceAt: TestDpopOptions['nonce']
  readonly #iatWindow: number
  readonly #seen = new Set<string>()
  #nonce: string | undefined

  /** @throws RangeError on an unknown `nonce` mode or a bad `iatWindow`. */
  constructor(options: TestDpopOptions, now: () => number) {
    const { nonce = false, iatWindow = 60 } = options
    if (!NONCE_MODES.includes(nonce)) {
      throw new RangeError(`dpop.nonce must be 'resource', 'token', 'both' or false`)
    }
    if (typeof iatWindow !== 'number' || !Number.isFinite(iatWindow) || iatWindow < 0) {
      throw new RangeError('dpop.iatWindow must be a finite number of seconds >= 0')
    }
    this.#now = now
    this.#nonceAt = nonce
    this.#iatWindow = iatWindow
    this.#nonce = nonce === false ? undefined : newNonce()
  }

  /** The nonce proofs must carry where nonces are required; `undefined` when nonces are off. */
  get nonce(): string | undefined {
    return this.#nonce
  }

  /**
   * Replaces the nonce; the previous one stops being accepted at once.
   *
   * @throws Error when nonces are off.
   */
  rotateNonce(): string {
    if (this.#nonce === undefined) {
      throw new Error('DPoP nonces are off: set the dpop.nonce option to use them')
    }
    this.#nonce = newNonce()
    return this.#nonce
  }

  /**
   * Judges a proof in this order: valid proof for this request (see `verifyDpopProof`), key
   * matching the token's binding, `jti` not seen before, then the nonce if one is required.
   * The nonce comes last so that a challenge is only ever sent for an otherwise good proof.
   */
  check(request: DpopRequest): DpopVerdict {
    const invalid = (description: string, replay = false): DpopVerdict => ({
      ok: false,
      error: 'invalid_dpop_proof',
      description,
      replay,
    })
    if (Array.isArray(request.proof)) return invalid('send exactly one DPoP header')
    const expected = {
      method: request.method,
      url: request.url,
      now: this.#now() / 1000,
      iatWindow: this.#iatWindow,
      ...(request.accessToken !== undefined && { accessToken: request.accessToken }),
    }
    const result = verifyDpopProof(request.proof, expected)
    if (!result.ok) return invalid(result.reason)
    const { jkt, jti, nonce } = result.proof
    if (request.boundJkt !== undefined && jkt !== request.boundJkt) {
      return invalid('DPoP proof key does not match the access token binding')
    }
    if (this.#seen.has(jti)) return invalid('DPoP proof jti has been used before', true)
    if (
      this.#nonce !== undefined &&
      this.#requiresNonce(request.endpoint) &&
      nonce !== this.#nonce
    ) {
      const description = nonce === undefined ? 'DPoP nonce required' : 'DPoP nonce is stale'
      return { ok: false, error: 'use_dpop_nonce', description, nonce: this.#nonce }
    }
    this.#remember(jti)
    return { ok: true, jkt }
  }

  #requiresNonce(endpoint: DpopEndpoint): boolean {
    return this.#nonceAt === 'both' || this.#nonceAt === endpoint
  }

  #remember(jti: string): void {
    this.#seen.add(jti)
    if (this.#seen.size <= MAX_SEEN_JTIS) return
    const oldest = this.#seen.values().next()
    if (!oldest.done) this.#seen.delete(oldest.value)
  }
}
