import type { Session } from '../../../machines/types.js'

/**
 * The cross-tab record: the latest session any tab obtained, or the moment one logged out.
 * Kept in IndexedDB because, measured in Chromium, localStorage is not consistent across tab
 * processes even under one Web Lock; IndexedDB transactions are.
 */
export type SharedRecord = { kind: 'session'; session: Session } | { kind: 'ended'; at: number }

export interface SharedRecordStore {
  read(): Promise<SharedRecord | undefined>
  /**
   * Writes `record` in one read-write transaction, unless `keep(current)` says the record
   * already there must stay. Resolves `false` when it was kept.
   */
  write(
    record: SharedRecord,
    keep?: (current: SharedRecord | undefined) => boolean,
  ): Promise<boolean>
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
export function openSharedRecord(name: string): SharedRecordStore | undefined {
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
      return (await request(tx.objectStore(STORE).get(name))) as SharedRecord | undefined
    },
    async write(record, keep) {
      const tx = (await open()).transaction(STORE, 'readwrite')
      const store = tx.objectStore(STORE)
      const current = (await request(store.get(name))) as SharedRecord | undefined
      if (keep?.(current)) return false
      await request(store.put(record, name))
      return true
    },
    close() {
      void db?.then((d) => d.close()).catch(() => undefined)
    },
  }
}
