/**
 * The DPoP pieces on their own: proofs as a verifier (jose) reads them, challenge and nonce
 * parsing, the key's life with the session, and the options' and tokens' refusals.
 */
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { createDpopKeys, memoryKeyStore } from '../../src/dpop/keys.js'
import { createNonces, dpopRefusalOf, nonceOf } from '../../src/dpop/nonces.js'
import { accessTokenHash, htuOf, proofKeyOf, signProof } from '../../src/dpop/proof.js'
import { createAuthClient } from '../../src/fetch.js'
import { AuthError, InvalidSessionError } from '../../src/index.js'
import { redisCoordinator } from '../../src/redis.js'

const generate = (extractable = false) =>
  crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, extractable, [
    'sign',
    'verify',
  ]) as Promise<CryptoKeyPair>

const verify = (proof: string) =>
  jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })

const noRefresh = async () => {
  throw new Error('no refresh in these tests')
}

describe('proofs', () => {
  it('verify with jose: ES256, typ dpop+jwt, the public JWK only, the claims asked for', async () => {
    const pair = await generate()
    const key = await proofKeyOf(pair)
    const proof = await signProof(key, {
      htm: 'POST',
      htu: 'https://api.example/things',
      iat: 1_700_000_000,
      ath: await accessTokenHash('token-1'),
      nonce: 'n-1',
    })
    const { payload, protectedHeader } = await verify(proof)
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'dpop+jwt' })
    expect(Object.keys(protectedHeader.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    expect(payload).toEqual({
      jti: expect.stringMatching(/^[\w-]{22}$/),
      htm: 'POST',
      htu: 'https://api.example/things',
      iat: 1_700_000_000,
      ath: expect.any(String),
      nonce: 'n-1',
    })
    expect(key.jkt).toBe(await calculateJwkThumbprint(protectedHeader.jwk as never))
    // ath is base64url(SHA-256(token)).
    const { createHash } = await import('node:crypto')
    expect(payload.ath).toBe(createHash('sha256').update('token-1').digest('base64url'))
  })

  it('each proof has its own jti', async () => {
    const key = await proofKeyOf(await generate())
    const claims = { htm: 'GET', htu: 'https://api.example/', iat: 1 }
    const ids = new Set<unknown>()
    for (let i = 0; i < 50; i += 1)
      ids.add((await verify(await signProof(key, claims))).payload.jti)
    expect(ids.size).toBe(50)
  })

  it('htu leaves out query, fragment and userinfo, and resolves against a base', () => {
    expect(htuOf('https://user:pw@API.example:443/a/b?x=1#frag')).toBe('https://api.example/a/b')
    expect(htuOf('/things?q=1', 'https://app.example/page')).toBe('https://app.example/things')
    expect(htuOf('/things')).toBeUndefined()
  })
})

describe('challenges and nonces', () => {
  it('reads the DPoP error among several challenges, in any case', () => {
    expect(dpopRefusalOf('DPoP error="use_dpop_nonce", error_description="x"')).toBe(
      'use_dpop_nonce',
    )
    expect(dpopRefusalOf('Bearer realm="a", DPoP algs="ES256", error="invalid_dpop_proof"')).toBe(
      'invalid_dpop_proof',
    )
    expect(dpopRefusalOf('dpop error=use_dpop_nonce')).toBe('use_dpop_nonce')
    // Not a DPoP challenge, or another error: a token matter, left to the usual rules.
    expect(dpopRefusalOf('Bearer error="invalid_token"')).toBeUndefined()
    expect(dpopRefusalOf('DPoP error="invalid_token"')).toBeUndefined()
    expect(dpopRefusalOf(null)).toBeUndefined()
  })

  it('keeps well-formed nonces only, per origin, the newest winning', () => {
    expect(nonceOf('eyJ7S_zG.9jGi')).toBe('eyJ7S_zG.9jGi')
    for (const bad of ['', 'a b', 'a"b', 'a\\b', 'x'.repeat(1025), 'é']) {
      expect(nonceOf(bad)).toBeUndefined()
    }
    const nonces = createNonces()
    expect(nonces.learn('https://a.example/x?y', 'n1')).toBe(true)
    expect(nonces.learn('https://a.example/z', 'bad nonce')).toBe(false)
    expect(nonces.get('https://a.example/other')).toBe('n1')
    expect(nonces.get('https://b.example/x')).toBeUndefined()
    nonces.learn('https://a.example/', 'n2')
    expect(nonces.get('https://a.example/')).toBe('n2')
  })
})

describe('the key and the session', () => {
  it('a key per sign-in: bound at login, deleted when its session ends, a new one after', async () => {
    const store = memoryKeyStore()
    const keys = createDpopKeys(store, undefined)
    const first = await keys.signIn()
    expect(first.keyPair.privateKey.extractable).toBe(false)
    expect((await keys.signIn()).jkt).toBe(first.jkt)
    await keys.bind('session-1')
    expect((await keys.session('session-1')).jkt).toBe(first.jkt)
    await expect(keys.session('session-2')).rejects.toMatchObject({ code: 'DPOP_KEY_MISSING' })
    expect(await store.read()).toEqual({
      sessions: { 'session-1': expect.objectContaining({ sessionId: 'session-1' }) },
    })

    // A sign-in while the session lives gets a key of its own.
    const next = await keys.signIn()
    expect(next.jkt).not.toBe(first.jkt)

    // Another session's end leaves this one's key alone.
    await keys.release('session-0')
    expect((await keys.session('session-1')).jkt).toBe(first.jkt)

    await keys.release('session-1')
    await expect(keys.session('session-1')).rejects.toMatchObject({ code: 'DPOP_KEY_MISSING' })
    // The sign-in's key is untouched by the end of the session before it.
    expect((await keys.signIn()).jkt).toBe(next.jkt)
  })

  it("an app's own key is used for every session and never deleted", async () => {
    const pair = await generate()
    const keys = createDpopKeys(memoryKeyStore(), pair)
    const jkt = (await keys.signIn()).jkt
    await keys.bind('s1')
    await keys.release('s1')
    expect((await keys.session('s2')).jkt).toBe(jkt)
    expect(keys.currentThumbprint()).toBe(jkt)
  })

  it('concurrent sign-ins make one key', async () => {
    const keys = createDpopKeys(memoryKeyStore(), undefined)
    const all = await Promise.all([keys.signIn(), keys.signIn(), keys.signIn()])
    expect(new Set(all.map((k) => k.jkt)).size).toBe(1)
  })
})

describe('options and tokens', () => {
  it('refuses a key pair that cannot make ES256 proofs, and other algorithms', async () => {
    const rsa = (await crypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      false,
      ['sign', 'verify'],
    )) as CryptoKeyPair
    const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair
    for (const keyPair of [rsa, p384, { privateKey: 'x', publicKey: 'y' } as never]) {
      expect(() => createAuthClient({ refresh: noRefresh, dpop: { keyPair } })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      )
    }
    expect(() =>
      createAuthClient({ refresh: noRefresh, dpop: { algorithm: 'RS256' as never } }),
    ).toThrow(/only ES256/)
    expect(() => createAuthClient({ refresh: noRefresh, dpop: 'yes' as never })).toThrow(AuthError)
  })

  it('refuses a generated key with a coordinator that shares the session between processes', () => {
    // Nothing connects before `auth.ready`'s restore; the client refuses at creation.
    const coordinator = redisCoordinator({ url: 'redis://127.0.0.1:1', key: 'dpop-refused' })
    expect(() => createAuthClient({ refresh: noRefresh, coordinator, dpop: true })).toThrow(
      /keyPair/,
    )
  })

  it('login refuses Bearer tokens, tokens without a key used here, and tokens bound to another key', async () => {
    const auth = createAuthClient({ refresh: noRefresh, dpop: true, attachTo: [] })
    try {
      // No sign-in went through `auth.dpop`: the token cannot be bound to this client's key.
      expect(() => auth.login({ access_token: 'a', token_type: 'DPoP' })).toThrow(
        InvalidSessionError,
      )
      const jkt = await auth.dpop?.thumbprint()
      expect(() => auth.login({ access_token: 'a', token_type: 'Bearer' })).toThrow(
        /issued a Bearer token/,
      )
      const jwt = (claims: object) =>
        `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`
      expect(() =>
        auth.login({ access_token: jwt({ cnf: { jkt: 'someone-else' } }), token_type: 'DPoP' }),
      ).toThrow(/another DPoP key/)
      expect(auth.actor.getSnapshot().value).toBe('loggedOut')
      auth.login({ access_token: jwt({ cnf: { jkt } }), token_type: 'DPoP' })
      expect(auth.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    } finally {
      auth.dispose()
    }
  })

  it('a proof never names the key pair it does not own: the private key stays inside', async () => {
    const auth = createAuthClient({ refresh: noRefresh, dpop: true, attachTo: [] })
    try {
      const proof = (await auth.dpop?.proof('GET', 'https://api.example/')) as string
      expect(decodeProtectedHeader(proof).jwk).not.toHaveProperty('d')
      const pair = (await auth.dpop?.keyPair()) as CryptoKeyPair
      expect(pair.privateKey.extractable).toBe(false)
      await expect(crypto.subtle.exportKey('jwk', pair.privateKey)).rejects.toThrow()
    } finally {
      auth.dispose()
    }
  })
})
