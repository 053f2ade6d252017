import { DpopError } from '../errors.js'
import { type ProofKey, proofKeyOf } from './proof.js'

/** A DPoP key as a {@link DpopKeyStore} keeps it. */
export interface StoredDpopKey {
  /** ES256; the private key is non-extractable when this library made it. */
  keyPair: CryptoKeyPair
  /** Its JWK thumbprint: what tells two stored keys apart. */
  jkt: string
  /** The sign-in (session id) its tokens are bound to. */
  sessionId?: string
}

/**
 * The DPoP keys of a client (or of the tabs of a profile): each session's, by session id,
 * and the one a sign-in under way uses (made for it, bound by `login()`). Two sign-ins that
 * cross (two tabs logging in at once) may share one key under two ids.
 */
export interface DpopKeyRecord {
  sessions?: Record<string, StoredDpopKey>
  pending?: StoredDpopKey
}

/** Sessions whose key is kept at most: an entry a lost logout never removed goes in time. */
const MAX_SESSIONS = 8

/**
 * Where the DPoP keys live: memory for one client, IndexedDB for the tabs of a browser
 * profile (a `CryptoKey` is stored as it is, so a non-extractable key stays so).
 */
export interface DpopKeyStore {
  read(): Promise<DpopKeyRecord | undefined>
  /**
   * Replaces the record with `change(current)` in one atomic step (one IndexedDB
   * transaction: tabs that change it at once never lose each other's change); `undefined`
   * deletes it. Resolves with what is stored.
   */
  update(
    change: (current: DpopKeyRecord | undefined) => DpopKeyRecord | undefined,
  ): Promise<DpopKeyRecord | undefined>
  /** Lets go of the storage (a database connection); the keys stay stored. */
  close?(): void
}

/** A {@link DpopKeyStore} in memory: the keys die with the client. */
export function memoryKeyStore(): DpopKeyStore {
  let stored: DpopKeyRecord | undefined
  return {
    read: async () => stored,
    async update(change) {
      stored = change(stored)
      return stored
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

/** Drops the record's empty members; an empty record is no record. */
function tidy(record: DpopKeyRecord): DpopKeyRecord | undefined {
  const tidied: DpopKeyRecord = {}
  const ids = Object.keys(record.sessions ?? {})
  if (ids.length > 0) {
    tidied.sessions = Object.fromEntries(
      ids.slice(-MAX_SESSIONS).map((id) => [id, record.sessions?.[id] as StoredDpopKey]),
    )
  }
  if (record.pending) tidied.pending = record.pending
  return tidied.sessions || tidied.pending ? tidied : undefined
}

/** The key stored for session `id` (any, for a session of an older version without one). */
function keyOf(record: DpopKeyRecord | undefined, id: string | undefined) {
  const sessions = record?.sessions ?? {}
  return id === undefined ? Object.values(sessions).at(-1) : sessions[id]
}

/**
 * The session's DPoP key: the one an app passes (used for every session), or one made for
 * each sign-in, bound to its session by `login()` and deleted when that session ends, so
 * the next sign-in gets a new one. A sign-in started while a session lives gets a key of
 * its own: ending the old session does not take the new one's key along.
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
  // The app's own key's thumbprint, known soon after creation (login checks tokens with it).
  let fixedJkt: string | undefined
  if (fixed) {
    signing(fixed).then(
      (key) => {
        fixedJkt = key.jkt
      },
      () => undefined,
    )
  }
  // What this client last read or wrote of each: the session's key, the sign-in's key.
  let session: StoredDpopKey | undefined
  let pending: StoredDpopKey | undefined
  let making: Promise<SigningKey> | undefined

  return {
    /**
     * The key a sign-in uses now: the pending one, or a new one. Tabs that ask at once end up
     * with the same key: the store keeps the first one claimed.
     */
    signIn(): Promise<SigningKey> {
      if (fixed) return signing(fixed)
      making ??= (async () => {
        try {
          const stored = (await store.read())?.pending
          if (stored) {
            pending = stored
            return await signing(stored.keyPair)
          }
          const keyPair = await generateKeyPair()
          const { jkt } = await signing(keyPair)
          const record = await store.update((current) =>
            current?.pending ? current : { ...current, pending: { keyPair, jkt } },
          )
          pending = record?.pending ?? { keyPair, jkt }
          return await signing(pending.keyPair)
        } finally {
          making = undefined
        }
      })()
      return making
    },

    /** The key bound to the session `id`; rejects with `DPOP_KEY_MISSING` when it is gone. */
    async session(id: string | undefined): Promise<SigningKey> {
      if (fixed) return signing(fixed)
      const matches = (stored: StoredDpopKey | undefined): stored is StoredDpopKey =>
        stored !== undefined && (id === undefined || stored.sessionId === id)
      if (matches(session)) return signing(session.keyPair)
      const stored = keyOf(await store.read(), id)
      if (!matches(stored)) throw missingKey()
      session = stored
      return signing(stored.keyPair)
    },

    /**
     * The thumbprint of the key a sign-in here used or made, if any; the app's own key's
     * when it gave one (`null` until it is computed).
     */
    currentThumbprint(): string | undefined | null {
      return fixed ? (fixedJkt ?? null) : pending?.jkt
    },

    /**
     * Whether the session `id` has its key here (a session without one is unusable). Rejects
     * when the store cannot be read: that says nothing either way. Caches nothing, so a
     * check for another sign-in leaves the current session's key as it is.
     */
    async has(id: string | undefined): Promise<boolean> {
      if (fixed) return true
      if (session && (id === undefined || session.sessionId === id)) return true
      return keyOf(await store.read(), id) !== undefined
    },

    /**
     * Binds the sign-in's key to the session `id`: it becomes the session's key, and the next
     * sign-in makes a new one. `replacing`, the session this login takes over here, loses
     * its key. Settles once other tabs can read it.
     */
    async bind(id: string | undefined, replacing?: string): Promise<void> {
      if (fixed || !pending || id === undefined) return
      const used = pending
      const bound: StoredDpopKey = { ...used, sessionId: id }
      session = bound
      pending = undefined
      await store.update((current) => {
        const sessions = { ...current?.sessions }
        if (replacing !== undefined) delete sessions[replacing]
        delete sessions[id]
        sessions[id] = bound
        const keep = current?.pending && current.pending.jkt !== used.jkt
        return tidy({ sessions, ...(keep ? { pending: current.pending } : {}) })
      })
    },

    /** The session `id` ended (logout, expiry): its key goes, and only its own. */
    async release(id: string | undefined): Promise<void> {
      if (fixed || id === undefined) return
      if (session?.sessionId === id) session = undefined
      await store.update((current) => {
        if (!current?.sessions?.[id]) return current
        const sessions = { ...current.sessions }
        delete sessions[id]
        return tidy({ ...current, sessions })
      })
    },
  }
}

export type DpopKeys = ReturnType<typeof createDpopKeys>
