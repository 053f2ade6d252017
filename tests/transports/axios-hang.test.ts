import { afterEach, describe, expect, it } from 'vitest'
import { createHarness, type Harness } from '../helpers.js'
import { deferred } from './support.js'

// An async isAuthFailure is the app's code: it may never answer. The request it judges still
// settles when the caller aborts or the client is disposed (invariant 12), instead of waiting
// on the predicate forever. Each test is an attack from the adversarial review that the first
// version failed (named in the test's comment); auth.fetch's twins are in
// fetch-hardening.test.ts.

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

/**
 * Signed in on an expired token, with an isAuthFailure that never answers: every request
 * comes back 401 and waits on the predicate. Resolves once the predicate has been asked.
 */
async function predicateNeverAnswers(): Promise<{ harness: Harness; asked: Promise<void> }> {
  const asked = deferred()
  const harness = await createHarness({
    isAuthFailure: () => {
      asked.resolve()
      return new Promise<boolean>(() => undefined)
    },
  })
  h = harness
  await harness.signIn()
  harness.server.expireAccessTokens()
  return { harness, asked: asked.promise }
}

describe('axios: an isAuthFailure that never answers', () => {
  it('an abort while it is pending lets the 401 through at once', async () => {
    // Attack H3: the request hung on the predicate after the abort.
    const { harness, asked } = await predicateNeverAnswers()
    const controller = new AbortController()
    const request = harness.http.get('/api/me', { signal: controller.signal })
    await asked
    controller.abort()
    await expect(request).rejects.toMatchObject({ response: { status: 401 } })
  })

  it('dispose() while it is pending rejects the request with DISPOSED', async () => {
    // Attack H4: the request hung on the predicate after dispose().
    const { harness, asked } = await predicateNeverAnswers()
    const request = harness.http.get('/api/me')
    await asked
    harness.auth.dispose()
    await expect(request).rejects.toMatchObject({ code: 'DISPOSED' })
  })
})
