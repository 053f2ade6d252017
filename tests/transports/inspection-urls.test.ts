import { afterEach, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { createHarness, type Harness, safeStringify, signInAt } from '../helpers.js'

// The queue is inspectable (inspection events, the visualizer), so a waiting request is
// described by method and URL only, and the URL without what belongs to the app or the user:
// query, fragment (OAuth implicit-flow tokens travel there) and userinfo (a password).

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

it("inspection output never shows a waiting request URL's userinfo or fragment", async () => {
  // Attack L1: only the query string was left out of queued URLs.
  const events: string[] = []
  const harness = await createHarness({ inspect: (event) => events.push(safeStringify(event)) })
  h = harness
  const { server, auth, http } = harness
  const refresh = server.hold('/auth/refresh')
  // Born expired: both requests wait for the refresh, in the machine's queue.
  auth.login({ ...(await signInAt(server.url)), expiresIn: 0 })
  await auth.ready
  const { host } = new URL(server.url)
  const viaAxios = http.get(`http://svc:PASSWORD-IN-URL@${host}/api/basic`).catch(() => undefined)
  const viaFetch = auth
    .fetch(`${server.url}/api/callback#access_token=FRAGMENT-SECRET`)
    .catch(() => undefined)
  await waitFor(auth.actor, (snapshot) => snapshot.context.queue.length >= 2)
  refresh.release()
  await Promise.all([viaAxios, viaFetch])
  const all = events.join('\n')
  // The queued requests were shown, by their paths.
  expect(all).toContain('/api/callback')
  expect(all.includes('PASSWORD-IN-URL') || all.includes('FRAGMENT-SECRET')).toBe(false)
})
