// Each framework binding, bundled as an app bundles it (bench/size.mjs, as `npm run bench`
// measures it): under 1 KB min + gzip, and reading no token from the session.
import { describe, expect, it } from 'vitest'
import { measure, SIZE_ENTRIES } from '../../bench/size.mjs'

describe.each(['react', 'vue', 'svelte'])('auth-machine/%s', (id) => {
  it('is under 1 KB min + gzip, with its framework, XState and the core external', async () => {
    const entry = SIZE_ENTRIES.find((e) => e.id === id)
    expect(entry).toBeDefined()
    const { gzipped, modules, imports } = await measure(entry)
    expect(gzipped).toBeGreaterThan(300)
    expect(gzipped).toBeLessThan(1024)
    // Its own folder and the shared session view, nothing else bundled.
    for (const { path } of modules) expect(path).toMatch(new RegExp(`dist/src/(${id}|bindings)/`))
    expect(imports).toEqual(expect.arrayContaining([id === 'svelte' ? 'svelte' : id]))
  })

  it('never reads a token: no token field is named in its code', async () => {
    const { code } = await measure(SIZE_ENTRIES.find((e) => e.id === id))
    expect(code).not.toMatch(/accessToken|refreshToken|access_token|refresh_token/)
  })
})
