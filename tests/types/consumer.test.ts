import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Type-checks small programs written the way a user of the published package writes them,
// in a project of their own: `auth-machine` is found through node_modules and resolved
// through package.json `exports` to the built declarations in dist/, never to src/. This is
// what catches a declaration the package forgets to ship, such as the axios augmentation
// that makes `{ skipAuth: true }` a known request option.

const repo = fileURLToPath(new URL('../../', import.meta.url))

/** What users write. Each `@ts-expect-error` must meet an error, or tsc reports it (TS2578). */
const consumer = `
import axios from 'axios'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import {
  createAuthClient,
  type RefreshFunction,
  type SkipAuthOption,
  type TokenResponse,
} from 'auth-machine'
import { createAuthClient as createFetchClient } from 'auth-machine/fetch'
import { redisCoordinator } from 'auth-machine/redis'
import { createClient } from 'redis'
import { type AuthStores, useAuth as useSvelteAuth } from 'auth-machine/svelte'
import { type AuthRefs, useAuthSelector as useVueSelector } from 'auth-machine/vue'
import type { Readable } from 'svelte/store'
import type { Ref } from 'vue'

const http = axios.create({ baseURL: '/api' })
declare const config: client.Configuration

const auth = createAuthClient({
  http,
  refresh: async (session) => client.refreshTokenGrant(config, session.refreshToken ?? ''),
})

// (a) the request option the package adds to axios
await http.get('/public', { skipAuth: true })
await http.request({ url: '/public', method: 'POST', skipAuth: false })
const forwarded: SkipAuthOption = { skipAuth: true }
await http.get('/public', forwarded)
// @ts-expect-error skipAuth is a boolean
await http.get('/public', { skipAuth: 'yes' })

// (b) token objects as servers and OAuth libraries hand them out
auth.login({ access_token: 'a', refresh_token: 'r', expires_in: 3600 })
auth.login({ access_token: 'a', token_type: 'Bearer', expires_in: '3600' })
auth.login({ accessToken: 'a', refreshToken: 'r', expiresIn: 3600 })
auth.login({ accessToken: 'a' })
declare const fromOpenIdClient: Awaited<ReturnType<typeof client.refreshTokenGrant>>
declare const fromOauth4webapi: oauth.TokenEndpointResponse
auth.login(fromOpenIdClient)
auth.login(fromOauth4webapi)
const refreshWith4webapi: RefreshFunction = async () => fromOauth4webapi
const typed: TokenResponse = { access_token: 'a' }
const rotated: string | null | undefined = typed.refreshToken ?? typed.refresh_token
// @ts-expect-error an access token is required, in one spelling or the other
auth.login({ refresh_token: 'r', expires_in: 3600 })
// @ts-expect-error the access token is a string
auth.login({ access_token: 42 })
// @ts-expect-error a lifetime is seconds: a number or a decimal string
auth.login({ access_token: 'a', expires_in: 'one hour' })
// @ts-expect-error no any: fields keep their types
auth.login({ accessToken: 'a', refreshToken: 7 })

// (c) an app's own node-redis client as the Redis coordinator's connection
const redis = createClient({ url: 'redis://127.0.0.1:6379' })
const service = createFetchClient({
  refresh: async () => ({ access_token: 'a' }),
  coordinator: redisCoordinator({ client: redis, key: 'billing-api', lockTtl: 10_000 }),
})
// @ts-expect-error the coordinator needs a key
redisCoordinator({ url: 'redis://127.0.0.1:6379' })

// (d) the Vue and Svelte bindings: typed refs and stores, read-only, with no token among them
declare const refs: AuthRefs
const status: Readonly<Ref<'loggedOut' | 'authenticated' | 'refreshing' | 'expired'>> = refs.status
// @ts-expect-error the refs are read-only: the machine owns the session
refs.generation.value = 2
// @ts-expect-error no field holds a token
refs.accessToken
const queued: Readonly<Ref<number>> = useVueSelector((snapshot) => snapshot.context.queue.length)
const stores: AuthStores = useSvelteAuth(auth)
const expiresAt: Readable<number | null> = stores.expiresAt
// @ts-expect-error no store holds a token
stores.refreshToken
// @ts-expect-error a store is read-only
stores.status.set('expired')

export { expiresAt, queued, refreshWith4webapi, rotated, service, status }
`

/** The same axios call without the package: proves the checker reports what it should. */
const withoutPackage = `
import axios from 'axios'
await axios.get('/public', { skipAuth: true })
`

let project: string

async function link(name: string): Promise<void> {
  const target = name === 'auth-machine' ? repo : join(repo, 'node_modules', name)
  await mkdir(join(project, 'node_modules'), { recursive: true })
  // Like `npm link`: the checker follows the link to the real files, so axios's types are
  // one module for both the consumer and the package, as after a deduplicated install.
  await symlink(target, join(project, 'node_modules', name), 'junction')
}

/** Type-checks `source` as `<name>.ts` in the consumer project; returns formatted errors. */
async function check(name: string, source: string, options: Record<string, unknown>) {
  const file = join(project, `${name}.ts`)
  await writeFile(file, source)
  const tsconfig = join(project, `tsconfig.${name}.json`)
  const compilerOptions = {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    ...options,
  }
  await writeFile(tsconfig, JSON.stringify({ compilerOptions, files: [file] }))
  const parsed = ts.getParsedCommandLineOfConfigFile(
    tsconfig,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'))
      },
    },
  )
  if (!parsed) throw new Error(`cannot read ${tsconfig}`)
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options })
  const shipped = program.getSourceFiles().map((f) => f.fileName)
  const errors = [...parsed.errors, ...ts.getPreEmitDiagnostics(program)].map((d) => {
    const where =
      d.file && d.start !== undefined
        ? `line ${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: `
        : ''
    return `${where}TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`
  })
  return { errors, shipped }
}

beforeAll(async () => {
  if (!existsSync(join(repo, 'dist/src/index.d.ts'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)')
  }
  project = await mkdtemp(join(tmpdir(), 'auth-machine-consumer-'))
  // An ES module project, as the package is one.
  await writeFile(join(project, 'package.json'), '{ "type": "module", "private": true }')
  for (const name of [
    'auth-machine',
    'axios',
    'openid-client',
    'oauth4webapi',
    'redis',
    'svelte',
    'vue',
  ]) {
    await link(name)
  }
})

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

describe.each([
  ['nodenext', { module: 'NodeNext', moduleResolution: 'NodeNext' }],
  ['bundler', { module: 'ESNext', moduleResolution: 'Bundler' }],
])('a consumer project with moduleResolution %s', (resolution, options) => {
  it('compiles skipAuth, OAuth token objects and the bindings, and every @ts-expect-error meets an error', async () => {
    const { errors, shipped } = await check(`consumer-${resolution}`, consumer, options)
    expect(errors).toEqual([])
    // Resolved like an installed package: from the built declarations, not the sources.
    expect(shipped).toContain(join(repo, 'dist/src/index.d.ts').replaceAll('\\', '/'))
    expect(shipped).toContain(join(repo, 'dist/src/axiosConfig.d.ts').replaceAll('\\', '/'))
    expect(shipped.some((f) => f.startsWith(join(repo, 'src').replaceAll('\\', '/')))).toBe(false)
  })

  it('rejects skipAuth when the package is not imported (the check can fail)', async () => {
    const { errors } = await check(`without-${resolution}`, withoutPackage, options)
    expect(errors).toEqual([expect.stringMatching(/^line 3: TS2353 .*'skipAuth'/)])
  })
})
