import axios from 'axios'
import { afterEach, expect, it } from 'vitest'
import { waitFor } from 'xstate'
import { type AuthClient, createAuthClient } from '../../src/index.js'
import { redactUrl } from '../../src/queue.js'
import { API, deferred, fakeAdapter, tokens } from './axiosFake.js'

// redactUrl strips userinfo only when the raw string starts with `scheme://` or `//`.
// The WHATWG parser (fetch, axios' http adapter, the origin check) also accepts leading
// spaces/C0 controls, tabs and newlines anywhere, and any number of slashes (0..n) after a
// special scheme: all of these still carry the password to the parser, and the redacted
// description shows it.

const odd = [
  ' https://user:SECRET@api.test/x',
  '\thttps://user:SECRET@api.test/x',
  'ht\ttps://user:SECRET@api.test/x',
  'https:\n//user:SECRET@api.test/x',
  'https:///user:SECRET@api.test/x',
  'https:////user:SECRET@api.test/x',
  'https:user:SECRET@api.test/x', // no base (Node): absolute
  'https:/user:SECRET@api.test/x',
]

it.each(odd)('redactUrl(%j) hides the password the URL parser sees', (url) => {
  expect(new URL(url).password).toBe('SECRET')
  expect(redactUrl(url)).not.toContain('SECRET')
})

let auth: AuthClient | undefined
afterEach(() => {
  auth?.dispose()
  auth = undefined
})

it('end to end: a queued axios request never shows its password in inspection output', async () => {
  const events: string[] = []
  const refresh = deferred<ReturnType<typeof tokens>>()
  const fake = fakeAdapter()
  const http = axios.create({ adapter: fake.adapter })
  auth = createAuthClient({
    http,
    attachTo: [API],
    refresh: () => refresh.promise,
    inspect: (event) => events.push(JSON.stringify(event)),
    onWarning: () => undefined,
  })
  auth.login({ ...tokens(1), expiresIn: 0 }) // born expired: the request waits in the queue
  await auth.ready
  const sent = http.get('https:///svc:SECRET@api.test/basic').catch(() => undefined)
  await waitFor(auth.actor, (s) => s.context.queue.length >= 1)
  const queued = JSON.stringify(auth.actor.getSnapshot().context.queue)
  refresh.resolve(tokens(2))
  await sent
  expect(queued).not.toContain('SECRET')
  expect(events.join('\n')).not.toContain('SECRET')
})
