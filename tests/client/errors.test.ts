import { describe, expect, it } from 'vitest'
import {
  AuthError,
  InvalidSessionError,
  LoggedOutError,
  RefreshFailedError,
  RefreshTimeoutError,
  SessionExpiredError,
} from '../../src/index.js'
import { createHarness } from '../helpers.js'

describe('typed errors', () => {
  it.each([
    [new SessionExpiredError(), 'SessionExpiredError', 'SESSION_EXPIRED'],
    [new LoggedOutError(), 'LoggedOutError', 'LOGGED_OUT'],
    [new RefreshFailedError(), 'RefreshFailedError', 'REFRESH_FAILED'],
    [new RefreshTimeoutError(), 'RefreshTimeoutError', 'REFRESH_TIMEOUT'],
    [new InvalidSessionError('bad'), 'InvalidSessionError', 'INVALID_SESSION'],
  ])('%s has a literal name (minifiers rename classes) and a code', (error, name, code) => {
    expect(error.name).toBe(name)
    expect(error.code).toBe(code)
    expect(error).toBeInstanceOf(AuthError)
    expect(error).toBeInstanceOf(Error)
    expect(String(error)).toMatch(new RegExp(`^${name}: `))
  })

  it('a timeout is a refresh failure too', () => {
    expect(new RefreshTimeoutError()).toBeInstanceOf(RefreshFailedError)
  })

  it('inspect accepts an observer, as @statelyai/inspect hands out', async () => {
    const seen: string[] = []
    const h = await createHarness({ inspect: { next: (event) => seen.push(event.type) } })
    await h.signIn()
    await h.close()
    expect(seen).toContain('@xstate.snapshot')
  })
})
