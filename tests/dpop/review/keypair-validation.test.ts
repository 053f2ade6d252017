/**
 * FINDING (low): `dpopOptionsOf` checks the private key's algorithm and usages, but of the
 * public key only `type === 'public'`. A pair whose public half is another curve (or another
 * algorithm) passes the option check, and then every proof throws a TypeError from
 * `publicJwkOf` (on the sign-in and on every request) instead of the INVALID_OPTIONS the
 * option promises ("must be a WebCrypto ECDSA P-256 key pair").
 */
import { expect, it } from 'vitest'
import { createAuthClient } from '../../../src/fetch.js'
import { noRefresh } from './support.js'

it('a keyPair whose public key is not P-256 is refused at creation (INVALID_OPTIONS)', async () => {
  const p256 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const keyPair = { privateKey: p256.privateKey, publicKey: p384.publicKey }
  let created: ReturnType<typeof createAuthClient> | undefined
  try {
    expect(() => {
      created = createAuthClient({ refresh: noRefresh, dpop: { keyPair }, attachTo: [] })
    }).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
  } finally {
    created?.dispose()
  }
})
