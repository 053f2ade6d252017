import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { afterAll, describe, expect, it } from 'vitest'

// The core imports no HTTP client: an app that only uses fetch bundles no axios code. Checked
// on the built package (`npm test` builds first), through esbuild's metafile of a real app.

const dist = fileURLToPath(new URL('../../dist/src/', import.meta.url))
// Inside the repository, so the app resolves `axios` and `xstate` as an installed app would.
const scratch = fileURLToPath(new URL('../../node_modules/.cache/', import.meta.url))

const made: string[] = []
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

async function inputsOf(app: string): Promise<string[]> {
  mkdirSync(scratch, { recursive: true })
  const dir = mkdtempSync(join(scratch, 'auth-machine-bundle-'))
  made.push(dir)
  const entry = join(dir, 'app.mjs')
  writeFileSync(entry, app)
  const { metafile } = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'browser',
    logLevel: 'silent',
  })
  return Object.keys(metafile.inputs)
}

const fetchApp = (from: string) => `
import { createAuthClient } from ${JSON.stringify(from)}
const auth = createAuthClient({ refresh: async () => ({ accessToken: 'a' }) })
export const load = () => auth.fetch('/api/me')
`

describe('bundles', () => {
  it('a fetch-only app on auth-machine/fetch holds neither axios nor the axios adapter', async () => {
    const inputs = await inputsOf(fetchApp(join(dist, 'fetch.js')))
    expect(inputs.some((file) => file.includes('src/client.js'))).toBe(true)
    expect(inputs.some((file) => file.includes('node_modules/xstate/'))).toBe(true)
    expect(inputs.filter((file) => /axios/i.test(file))).toEqual([])
  })

  it('a fetch-only app on the main entry holds no axios package code', async () => {
    const inputs = await inputsOf(fetchApp(join(dist, 'index.js')))
    expect(inputs.some((file) => file.includes('src/transports/axios.js'))).toBe(true)
    expect(inputs.filter((file) => file.includes('node_modules/axios'))).toEqual([])
  })

  it('an axios app bundles axios once, from its own import', async () => {
    const inputs = await inputsOf(`
import axios from 'axios'
import { createAuthClient } from ${JSON.stringify(join(dist, 'index.js'))}
export const auth = createAuthClient({ http: axios.create(), refresh: async () => ({ accessToken: 'a' }) })
`)
    expect(inputs.some((file) => file.includes('node_modules/axios/'))).toBe(true)
  })
})
