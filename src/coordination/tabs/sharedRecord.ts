import type { Session } from '../../../machines/types.js'
import type { DpopKeyStore, StoredDpopKey } from '../../dpop/keys.js'

/**
 * The cross-tab record: the latest session any tab obtained, or the moment one logged out.
 * Kept in IndexedDB because, measured in Chromium, localStorage is not consistent across tab
 * processes even under one Web Lock; IndexedDB transactions are.
 */
export type SharedRecord = { kind: 'session'; session: Session } | { kind: 'ended'; at: number }

export interface SharedRecordStore<T = SharedRecord> {
  read(): Promise<T | undefined>
  /**
   * Writes `record` in one read-write transaction, unless `keep(current)` says the record
   * already there must stay. Resolves `false` when it was kept.
   */
  write(record: T, keep?: (current: T | undefined) => boolean): Promise<boolean>
  /** Deletes the record in one read-write transaction if `match(current)`. */
  remove(match: (current: T) => boolean): Promise<void>
  close(): void
}

const STORE = 'records'

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** An IndexedDB-backed record, or `undefined` where IndexedDB is missing. */
export function openSharedRecord<T = SharedRecord>(name: string): SharedRecordStore<T> | undefined {
  if (typeof indexedDB === 'undefined') return undefined
  let db: Promise<IDBDatabase> | undefined
  const open = () => {
    db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('auth-machine', 1)
      req.onupgradeneeded = () => req.result.createObjectStore(STORE)
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    return db
  }
  return {
    async read() {
      const tx = (await open()).transaction(STORE, 'readonly')
      return (await request(tx.objectStore(STORE).get(name))) as T | undefined
    },
    async write(record, keep) {
      const tx = (await open()).transaction(STORE, 'readwrite')
      const store = tx.objectStore(STORE)
      const current = (await request(store.get(name))) as T | undefined
      if (keep?.(current)) return false
      await request(store.put(record, name))
      return true
    },
    async remove(match) {
      const tx = (await open()).transaction(STORE, 'readwrite')
      const store = tx.objectStore(STORE)
      const current = (await request(store.get(name))) as T | undefined
      if (current !== undefined && match(current)) await request(store.delete(name))
    },
    close() {
      void db?.then((d) => d.close()).catch(() => undefined)
    },
  }
}

/**
 * The tabs' DPoP key, next to their record: a `CryptoKey` is stored as it is (structured
 * clone), so a non-extractable key stays non-extractable and every tab signs with it.
 */
export function openKeyStore(name: string): DpopKeyStore | undefined {
  const record = openSharedRecord<StoredDpopKey>(`${name}:dpop-key`)
  if (!record) return undefined
  return {
    read: () => record.read(),
    async claim(candidate) {
      let stored: StoredDpopKey | undefined
      const wrote = await record.write(candidate, (current) => {
        stored = current
        return current !== undefined
      })
      return wrote || !stored ? candidate : stored
    },
    async write(key) {
      await record.write(key)
    },
    remove: (match) => record.remove(match),
    close: () => record.close(),
  }
}
