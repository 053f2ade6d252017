import axios from 'axios'
import { afterEach, beforeAll } from 'vitest'
import { createHarness, type Harness } from '../helpers.js'

/**
 * For a binding's component tests in happy-dom: registers the hooks and returns a harness
 * factory whose harnesses close after each test. happy-dom provides XMLHttpRequest, which
 * would make axios use its XHR adapter; these tests talk to the real token server through
 * Node's HTTP stack instead (the browser path runs in Chromium: tests/bindings/browser.test.ts).
 */
export function componentHarnesses(): (
  ...args: Parameters<typeof createHarness>
) => Promise<Harness> {
  const open: Harness[] = []
  beforeAll(() => {
    axios.defaults.adapter = 'http'
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((h) => h.close()))
  })
  return async (...args) => {
    const h = await createHarness(...args)
    open.push(h)
    return h
  }
}

/** Every token the test can know of: the refresh tokens issued and the current access token. */
export function knownTokens(h: Harness): string[] {
  const access = h.auth.actor.getSnapshot().context.session?.accessToken
  return [...h.issuedRefreshTokens, ...(access ? [access] : [])]
}

/**
 * How often each field of `useAuth` changes when a refresh lands after requests queued
 * behind it, on a later clock (so the expiry moves): once for what the refresh changes, never
 * for the rest. Every binding is held to it.
 */
export const CHANGES_WHEN_REFRESH_LANDS = {
  status: 1,
  isAuthenticated: 0,
  isRefreshing: 1,
  isStale: 0,
  generation: 1,
  error: 0,
  expiresAt: 1,
}

/** How much each count of `after` grew since `before`. */
export function growth(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after).map(([name, n]) => [name, n - (before[name] ?? 0)]),
  )
}
