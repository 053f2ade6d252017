import axios from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, fakeAdapter, tokens } from './axiosFake.js'

// Second review: a config carries its request state (copied by axios' merge) and its
// transport's send-time check into another instance, or past a detach. Only the transport
// that authorised this very send may write the token; the others take theirs back.

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

async function twoInstances() {
  const fake = fakeAdapter()
  const a = axios.create({ baseURL: API, adapter: fake.adapter })
  const b = axios.create({ adapter: fake.adapter })
  auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  auth.attach(a, { attachTo: [API] })
  auth.attach(b, { attachTo: ['https://other.test'] })
  auth.login(tokens(1))
  await auth.ready
  return { a, b, fake }
}

it('skipAuth on the second attached instance: a config from the first goes out without the token', async () => {
  const { a, b, fake } = await twoInstances()
  const first = await a.get('/me')
  expect(fake.calls[0]?.authorization).toBe('Bearer access-1')
  // e.g. a helper that re-sends a request through the "public" client without the token
  await b.request({ ...first.config, skipAuth: true })
  expect(fake.calls[1]?.authorization).toBeUndefined()
})

it("the second instance's allow-list excludes the origin: the first instance's grant writes no token", async () => {
  const { a, b, fake } = await twoInstances()
  const first = await a.get('/me')
  await b.request(first.config)
  expect(fake.calls[1]?.authorization).toBeUndefined()
})

it('after detaching the first instance, a config it sent earlier goes out without the token', async () => {
  const fake = fakeAdapter()
  const a = axios.create({ baseURL: API, adapter: fake.adapter })
  auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  const detach = auth.attach(a, { attachTo: [API] })
  auth.login(tokens(1))
  await auth.ready
  const first = await a.get('/me')
  detach()
  await a.request(first.config) // e.g. a retry/cache plugin replaying a stored config
  expect(fake.calls[1]?.authorization).toBeUndefined()
})
