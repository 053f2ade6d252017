import type { Session } from '../../../machines/types.js'
import { type DpopKeyRecord, type DpopKeyStore, memoryKeyStore } from '../../dpop/keys.js'
import { errorName } from '../../errors.js'

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
  /**
   * Replaces the record with `change(current)` in one read-write transaction (`undefined`
   * deletes it); resolves with what is stored.
   */
  update(change: (current: T | undefined) => T | undefined): Promise<T | undefined>
  /**
   * Whether this document may not use IndexedDB at all (opening it was refused, as in a
   * sandboxed iframe): unlike a slow or failed operation, that will not pass.
   */
  refused(): boolean
  close(): void
}

const STORE = 'records'

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** How long one IndexedDB operation may take: a database blocked by a pending delete or upgrade never answers. */
const TIMEOUT_MS = 3_000

/** The IndexedDB factory, or `undefined` where it is missing or refused (a sandboxed iframe). */
function factory(): IDBFactory | undefined {
  try {
    return typeof indexedDB === 'undefined' ? undefined : indexedDB
  } catch {
    return undefined
  }
}

/** `promise`, or a rejection once `TIMEOUT_MS` have passed. */
function bounded<T>(promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('IndexedDB did not answer in time.')), TIMEOUT_MS)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** An IndexedDB-backed record, or `undefined` where IndexedDB is missing. */
export function openSharedRecord<T = SharedRecord>(name: string): SharedRecordStore<T> | undefined {
  const idb = factory()
  if (!idb) return undefined
  let db: Promise<IDBDatabase> | undefined
  let closed = false
  let refused = false
  const open = () => {
    db ??= new Promise<IDBDatabase>((resolve, reject) => {
      let req: IDBOpenDBRequest
      try {
        req = idb.open('auth-machine', 1)
      } catch (error) {
        refused = (error as { name?: unknown } | null)?.name === 'SecurityError'
        throw error
      }
      req.onupgradeneeded = () => req.result.createObjectStore(STORE)
      req.onsuccess = () => {
        const opened = req.result
        // Another tab deletes or upgrades the database, or the browser closes it (storage
        // cleared): let go, so that neither side waits, and open afresh next time.
        opened.onversionchange = () => {
          opened.close()
          db = undefined
        }
        opened.onclose = () => {
          db = undefined
        }
        if (closed) opened.close()
        resolve(opened)
      }
      req.onerror = () => reject(req.error)
    })
    // A failed or hung opening is forgotten: the next operation tries again.
    db.catch(() => {
      db = undefined
    })
    return db
  }
  /** Runs `operation` on the database, once more on a connection that closed under it. */
  const run = async <R>(operation: (db: IDBDatabase) => Promise<R>): Promise<R> => {
    try {
      return await bounded(open().then(operation))
    } catch (error) {
      if ((error as { name?: unknown } | null)?.name !== 'InvalidStateError') {
        db = undefined
        throw error
      }
      db = undefined
      return bounded(open().then(operation))
    }
  }
  return {
    read: () =>
      run(async (d) => {
        const tx = d.transaction(STORE, 'readonly')
        return (await request(tx.objectStore(STORE).get(name))) as T | undefined
      }),
    write: (record, keep) =>
      run(async (d) => {
        const store = d.transaction(STORE, 'readwrite').objectStore(STORE)
        const current = (await request(store.get(name))) as T | undefined
        if (keep?.(current)) return false
        await request(store.put(record, name))
        return true
      }),
    update: (change) =>
      run(async (d) => {
        const store = d.transaction(STORE, 'readwrite').objectStore(STORE)
        const next = change((await request(store.get(name))) as T | undefined)
        if (next === undefined) await request(store.delete(name))
        else await request(store.put(next, name))
        return next
      }),
    refused: () => refused,
    close() {
      closed = true
      void db?.then((d) => d.close()).catch(() => undefined)
    },
  }
}

/**
 * The tabs' DPoP keys, next to their record: a `CryptoKey` is stored as it is (structured
 * clone), so a non-extractable key stays non-extractable and every tab signs with it. Where
 * IndexedDB refuses to work from the start (a sandboxed iframe), the keys stay in this tab
 * (`warn` says so once).
 */
export function openKeyStore(
  name: string,
  warn: (message: string) => void,
): DpopKeyStore | undefined {
  const record = openSharedRecord<DpopKeyRecord>(`${name}:dpop-key`)
  if (!record) return undefined
  let fallback: DpopKeyStore | undefined
  const attempt = async <R>(
    shared: () => Promise<R>,
    local: (store: DpopKeyStore) => Promise<R>,
  ): Promise<R> => {
    if (fallback) return local(fallback)
    try {
      return await shared()
    } catch (error) {
      // Only a refusal lasts; a slow or failed operation is tried again next time.
      if (!record.refused()) throw error
      warn(
        `IndexedDB is not usable here (${errorName(error)}): the DPoP key stays in this tab, and other tabs cannot sign for its session.`,
      )
      fallback = memoryKeyStore()
      return local(fallback)
    }
  }
  return {
    read: () =>
      attempt(
        () => record.read(),
        (store) => store.read(),
      ),
    update: (change) =>
      attempt(
        () => record.update(change),
        (store) => store.update(change),
      ),
    close: () => record.close(),
  }
}
