import { DpopError } from '../errors.js'
import { type ProofKey, proofKeyOf } from './proof.js'

/** A DPoP key as a {@link DpopKeyStore} keeps it. */
export interface StoredDpopKey {
  /** ES256; the private key is non-extractable when this library made it. */
  keyPair: CryptoKeyPair
  /** The sign-in (session id) its tokens are bound to; absent while a sign-in is under way. */
  sessionId?: string
}

/**
 * Where the session's DPoP key lives: memory for one client, IndexedDB for the tabs of a
 * browser profile (a `CryptoKey` is stored as it is, so a non-extractable key stays so).
 * One key at a time.
 */
export interface DpopKeyStore {
  read(): Promise<StoredDpopKey | undefined>
  /** Stores `candidate` unless a key is there already; resolves with the key stored. Atomic. */
  claim(candidate: StoredDpopKey): Promise<StoredDpopKey>
  /** Replaces the stored key. */
  write(key: StoredDpopKey): Promise<void>
  /** Deletes the stored key if `match(it)`. */
  remove(match: (key: StoredDpopKey) => boolean): Promise<void>
  /** Lets go of the storage (a database connection); the key stays stored. */
  close?(): void
}

/** A {@link DpopKeyStore} in memory: the key dies with the client. */
export function memoryKeyStore(): DpopKeyStore {
  let stored: StoredDpopKey | undefined
  return {
    read: async () => stored,
    async claim(candidate) {
      stored ??= candidate
      return stored
    },
    async write(key) {
      stored = key
    },
    async remove(match) {
      if (stored && match(stored)) stored = undefined
    },
  }
}

/** A key ready to sign, with the pair it came from. */
export interface SigningKey extends ProofKey {
  keyPair: CryptoKeyPair
}

function generateKeyPair(): Promise<CryptoKeyPair> {
  // Non-extractable: script in the page can ask it to sign, but can never take it away.
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]) as Promise<CryptoKeyPair>
}

const missingKey = () =>
  new DpopError(
    "This session's DPoP key is gone (deleted by a sign-out elsewhere, or never shared with this client): sign in again.",
    'DPOP_KEY_MISSING',
  )

/**
 * The session's DPoP key: the one an app passes (used for every session), or one made here
 * for each sign-in, bound to it by `login()` and deleted when that session ends, so the next
 * sign-in gets a new one.
 */
export function createDpopKeys(store: DpopKeyStore, fixed: CryptoKeyPair | undefined) {
  const prepared = new WeakMap<CryptoKey, Promise<ProofKey>>()
  const signing = async (keyPair: CryptoKeyPair): Promise<SigningKey> => {
    let key = prepared.get(keyPair.privateKey)
    if (!key) {
      key = proofKeyOf(keyPair)
      prepared.set(keyPair.privateKey, key)
    }
    return { ...(await key), keyPair }
  }
  // The stored key as last read or written here, with its thumbprint once known.
  let known: { stored: StoredDpopKey; jkt?: string } | undefined
  const remember = async (stored: StoredDpopKey) => {
    const key = await signing(stored.keyPair)
    known = { stored, jkt: key.jkt }
    return key
  }
  let making: Promise<SigningKey> | undefined

  return {
    /** Whether the key is the app's own (never replaced, never deleted). */
    fixed: fixed !== undefined,

    /**
     * The key a sign-in uses now: the stored one (bound or not), or a new one. Tabs that
     * ask at once end up with the same key: the store keeps the first one claimed.
     */
    signIn(): Promise<SigningKey> {
      if (fixed) return signing(fixed)
      making ??= (async () => {
        try {
          const stored =
            (await store.read()) ?? (await store.claim({ keyPair: await generateKeyPair() }))
          return await remember(stored)
        } finally {
          making = undefined
        }
      })()
      return making
    },

    /** The key bound to the session `id`; rejects with `DPOP_KEY_MISSING` when it is gone. */
    async session(id: string | undefined): Promise<SigningKey> {
      if (fixed) return signing(fixed)
      const matches = (stored: StoredDpopKey | undefined) =>
        stored !== undefined && (id === undefined || stored.sessionId === id)
      if (known && matches(known.stored)) return signing(known.stored.keyPair)
      const stored = await store.read()
      if (!stored || !matches(stored)) throw missingKey()
      return remember(stored)
    },

    /**
     * The thumbprint of the key a sign-in here used (or made), if any; `null` for an app's
     * own key, which is always the one.
     */
    currentThumbprint(): string | undefined | null {
      return fixed ? null : known?.jkt
    },

    /** Whether the session `id` has its key here (a restored session without one is unusable). */
    async has(id: string | undefined): Promise<boolean> {
      if (fixed) return true
      return this.session(id).then(
        () => true,
        () => false,
      )
    },

    /**
     * Binds the sign-in key to the session `id`. Synchronous checks first: there must be a
     * key this client signed in with. The promise settles once other tabs can read it.
     */
    bind(id: string | undefined): Promise<void> {
      if (fixed || !known || id === undefined) return Promise.resolve()
      const stored: StoredDpopKey = { keyPair: known.stored.keyPair, sessionId: id }
      known = { ...known, stored }
      return store.write(stored)
    },

    /** The session `id` ended: its key goes, unless a newer sign-in already took the store. */
    release(id: string | undefined): Promise<void> {
      if (fixed || id === undefined) return Promise.resolve()
      if (known?.stored.sessionId === id) known = undefined
      return store.remove((stored) => stored.sessionId === id)
    },
  }
}

export type DpopKeys = ReturnType<typeof createDpopKeys>
