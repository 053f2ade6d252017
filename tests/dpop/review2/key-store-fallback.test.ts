/**
 * review2: openKeyStore (src/coordination/tabs/sharedRecord.ts) falls back to a memory
 * store for good when its first IndexedDB operation fails, whatever the failure: meant for
 * a sandboxed iframe (refused from the start), it also catches a transient first failure
 * (the open blocked past the 3 s bound by another tab's upgrade or a pending
 * deleteDatabase from Clear-Site-Data, a browser busy at start-up, a one-off
 * UnknownError). From then on the tab never looks at IndexedDB again: every session of
 * another tab is "without its key" (its LOGIN dropped, see deliver.test.ts), the stored
 * session is not restored, and this tab's own key is invisible to the others.
 *
 * A tiny in-memory IndexedDB stands in for the browser's, whose first open() fails once.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { openKeyStore, openSharedRecord } from '../../../src/coordination/tabs/sharedRecord.js'
import type { DpopKeyRecord } from '../../../src/dpop/keys.js'
import { fakeIndexedDB } from './support.js'

const saved = (globalThis as { indexedDB?: unknown }).indexedDB
afterEach(() => {
  ;(globalThis as { indexedDB?: unknown }).indexedDB = saved
})

describe('review2: a first IndexedDB failure', () => {
  it('is not taken for "IndexedDB is unusable here" for the life of the tab', async () => {
    const fake = fakeIndexedDB(1)
    ;(globalThis as { indexedDB?: unknown }).indexedDB = fake.factory
    const warnings: string[] = []
    const keys = openKeyStore('app', (m) => warnings.push(m))
    if (!keys) throw new Error('no key store')

    // The first operation meets the one failure (the tab's start-up restore check): reported
    // to its caller, not taken for "IndexedDB is unusable here".
    await expect(keys.read()).rejects.toBeDefined()
    expect(warnings).toEqual([])

    // IndexedDB works again; another tab (its own connection) stores a session's key.
    const other = openSharedRecord<DpopKeyRecord>('app:dpop-key')
    const record = { sessions: { 'session-b': { jkt: 'jkt-b' } } } as unknown as DpopKeyRecord
    await other?.write(record)
    expect(fake.data.get('app:dpop-key')).toBeDefined()

    // This tab still reads memory only: session-b has no key here, ever.
    const read = await keys.read()
    expect(read?.sessions?.['session-b']).toBeDefined()
  })
})
