// Starts bench/server.mjs as a child process and drives it over its control routes.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url))

/** @param {{ accessTokenTtl?: number }} options */
export async function startServer({ accessTokenTtl = 1800 } = {}) {
  const child = spawn(process.execPath, [SERVER, String(accessTokenTtl)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let buffered = ''
  const url = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`token server exited with ${code}`)))
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const line = buffered.split('\n')[0]
      if (buffered.includes('\n')) resolve(JSON.parse(line).url)
    })
  })

  async function control(name, body) {
    const response = await fetch(`${url}/__control/${name}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    if (!response.ok) throw new Error(`control ${name}: HTTP ${response.status}`)
    return response.status === 204 ? undefined : response.json()
  }

  return {
    url,
    login: () => control('login', {}),
    expireAccessTokens: () => control('expire-access-tokens', {}),
    resetCounters: () => control('reset-counters', {}),
    counters: () => control('counters'),
    /** Holds requests under `path` until `release()`; `waiting()` counts the held ones. */
    async hold(path) {
      const { id } = await control('hold', { path })
      return {
        release: () => control('release', { id }),
        async untilWaiting(count, timeoutMs = 5000) {
          const deadline = performance.now() + timeoutMs
          for (;;) {
            const status = await control('status')
            const hold = status.holds.find((h) => h.id === id)
            if ((hold?.waiting ?? 0) >= count) return
            if (performance.now() > deadline) throw new Error('held request never arrived')
            await new Promise((resolve) => setTimeout(resolve, 2))
          }
        },
      }
    },
    async close() {
      child.stdin.end()
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}
