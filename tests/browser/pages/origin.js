// Fires URL forms through a protected axios instance; the test records what the browser
// requests. Driven through `window.lab`: open(options), fire(url), close().
import axios from 'axios'
import { createAuthClient } from '/dist/src/index.js'

let current

/** A same-origin blob URL, for the `blob:` rows of the table. */
const blobUrl = URL.createObjectURL(new Blob(['hi'], { type: 'text/plain' }))

window.lab = {
  blobUrl,
  /** A fresh instance and client: nothing decided by an earlier client can carry over. */
  open({ baseURL, attachTo }) {
    const http = axios.create(baseURL === undefined ? {} : { baseURL })
    const auth = createAuthClient({
      http,
      crossTab: false,
      ...(attachTo ? { attachTo } : {}),
      onWarning: () => undefined,
      refresh: async () => {
        throw new Error('no refresh in this test')
      },
    })
    auth.login({ accessToken: 'tok', refreshToken: 'r', expiresIn: 3600 })
    current = { http, auth }
  },
  /** One request; its config tells whether the client attached the token. */
  async fire(url) {
    const result = await current.http.get(url, { timeout: 5000 }).catch((error) => error)
    const header = result?.config?.headers?.Authorization
    return { attached: header !== undefined, ok: result?.status === 200 }
  },
  close() {
    current?.auth.dispose()
    current = undefined
  },
}
window.labReady = true
