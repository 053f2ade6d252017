/**
 * FINDING (low-medium): a config that already went out (and so carries the `DPoP` header its
 * send-time check wrote) and is re-sent where this client must not authorise it keeps its
 * proof: only `Authorization` is taken back. The three re-sends the project already guards
 * for Authorization (tests/transports/axios-cross-instance.test.ts): through a second
 * instance attached to the same client, after a detach, and on the same instance once the
 * proof has left the transport's 256-entry `proofsWritten` set. `forget()` and the
 * send-time check's "not this transport's pass" branch delete `DPoP` only when this very
 * transport finds the value in `proofsWritten`; the Authorization path uses the epoch marker
 * the config carries, which works across transports and ages. Re-sent to an origin outside
 * `attachTo`, the proof (with `ath` of the session's token and the API's nonce) reaches it.
 */
import axios, { type AxiosInstance } from 'axios'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthClient } from '../../../src/index.js'
import { noRefresh, tinyServer } from './support.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function setup() {
  const ok = (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{}')
  }
  const api = await tinyServer(ok)
  const elsewhere = await tinyServer(ok)
  closers.push(
    () => api.close(),
    () => elsewhere.close(),
  )
  const a = axios.create({ baseURL: api.url })
  const b = axios.create()
  const auth = createAuthClient({ refresh: noRefresh, dpop: true, onWarning: () => undefined })
  closers.push(() => auth.dispose())
  const detachA = auth.attach(a, { attachTo: [api.url] })
  auth.attach(b, { attachTo: ['https://other.test'] })
  await auth.dpop?.thumbprint()
  auth.login({ access_token: 'opaque-dpop-token', token_type: 'DPoP', expires_in: 3600 })
  await auth.ready
  const first = await a.get('/api/first')
  expect(first.config.headers.DPoP).toBeTypeOf('string')
  return { api, elsewhere, a, b, first, detachA }
}

function expectNothingLanded(elsewhere: { seen: { headers: Record<string, unknown> }[] }) {
  const landed = elsewhere.seen[0]?.headers
  expect(landed).toBeDefined()
  expect(landed?.authorization).toBeUndefined()
  expect(landed?.dpop).toBeUndefined()
}

describe('a config re-sent to another origin carries no DPoP proof', () => {
  it('through a second instance attached to the same client', async () => {
    const { elsewhere, b, first } = await setup()
    await b.request({ ...first.config, baseURL: elsewhere.url })
    expectNothingLanded(elsewhere)
  })

  it('through the same instance after it was detached', async () => {
    const { elsewhere, a, first, detachA } = await setup()
    detachA()
    await a.request({ ...first.config, baseURL: elsewhere.url })
    expectNothingLanded(elsewhere)
  })

  it('through the same instance, after 300 other requests', async () => {
    const { elsewhere, a, first } = await setup()
    const burst = async (http: AxiosInstance) => {
      for (let i = 0; i < 300; i += 10) {
        await Promise.all(Array.from({ length: 10 }, (_, j) => http.get(`/api/n/${i + j}`)))
      }
    }
    await burst(a)
    await a.request({ ...first.config, baseURL: elsewhere.url })
    expectNothingLanded(elsewhere)
  })
})
