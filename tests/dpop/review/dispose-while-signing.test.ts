/**
 * FINDING: signing a proof is asynchronous, and dispose() during it is not noticed: the
 * fetch transport checks `queue.isLive(epoch)` after signing, which stays true after
 * dispose() (the stopped actor never updates the queue's live epoch), so the request leaves
 * *after* dispose() with the token and its proof, and resolves with the server's answer
 * instead of DISPOSED. (Without DPoP the request is on the wire before auth.fetch returns.)
 * (axios is fine here: see holds.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, type Harness, type Transport } from '../../helpers.js'

let harness: Harness | undefined
afterEach(async () => {
  await harness?.close()
  harness = undefined
})

describe.each<Transport>(['fetch'])('dispose() while a proof is signed (%s)', (transport) => {
  it('the request rejects with DISPOSED and nothing leaves after dispose()', async () => {
    const h = await createHarness({ dpop: true }, { dpop: { nonce: 'both' } }, transport)
    harness = h
    await h.signIn()
    expect((await h.request('/api/warm-up')).status).toBe(200)
    const pending = h.request('/api/after-dispose') // its proof is being signed now
    h.auth.dispose()
    const outcome = await pending.catch((e: unknown) => e)
    expect(outcome).toMatchObject({ code: 'DISPOSED' })
    expect(h.server.requests.filter((r) => r.path === '/api/after-dispose')).toEqual([])
  })
})
