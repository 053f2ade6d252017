import axios from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, fakeAdapter, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F11 (low): the EPOCH marker ('authMachineEpoch') is a plain string key holding one client's
// epoch number, read by every client as its own. A config that went through client A and is
// sent through client B (tests/transports/axios-cross-instance does exactly this) is refused
// with LoggedOutError when the two clients' epoch counters differ, though B's session is live
// and the request was never B's.

const clients: AuthClient[] = []
afterEach(() => {
  for (const c of clients.splice(0)) c.dispose()
})

it("a config from client A's instance sent through client B's goes out with B's token", async () => {
  const fake = fakeAdapter()
  const a = axios.create({ baseURL: API, adapter: fake.adapter })
  const b = axios.create({ adapter: fake.adapter })
  const A = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  const B = createAuthClient({ refresh: async () => tokens(20), onWarning: () => undefined })
  clients.push(A, B)
  A.attach(a, { attachTo: [API] })
  B.attach(b, { attachTo: ['https://other.test'] })
  A.login(tokens(1))
  B.login(tokens(10))
  await B.logout()
  B.login(tokens(11)) // B's epoch counter moves on; A's does not
  await A.ready
  await B.ready
  const first = await a.get('/me')
  const answer = await b.request({ ...first.config, baseURL: 'https://other.test' }).then(
    () => 'sent',
    (e: Error) => `${e.name}: ${e.message}`,
  )
  expect(answer).toBe('sent')
  expect(fake.calls[1]?.authorization).toBe('Bearer access-11')
})
